# Evaluation workload: function calls and integer arithmetic. Naive doubly recursive Fibonacci
# (about 2.7 million calls) and Ackermann-like nested calls; the result is a small set.
let
  n = 29;
  fib = k: if k < 2 then k else fib (k - 1) + fib (k - 2);
  # Arithmetic with several curried arguments: sum of (a * b + c) mod 7 over a grid, mod by `/`.
  mod = a: b: a - (a / b) * b;
  cell = a: b: c: mod (a * b + c) 7;
  row = a: builtins.foldl' (acc: b: acc + cell a b (a - b)) 0 (builtins.genList (x: x) 300);
in
{
  fib = fib n;
  grid = builtins.foldl' (acc: a: acc + row a) 0 (builtins.genList (x: x) 300);
}
