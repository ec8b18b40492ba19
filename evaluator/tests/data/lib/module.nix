{ x ? 1 }: { value = x * 10; greet = name: "hello ${name}"; }
