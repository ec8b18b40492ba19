let x = "world"; in [
  "hello ${x}"
  ''
    indented ${x}
      more
  ''
  (builtins.toJSON { a = [ 1 2.5 null true "s" ]; })
  (builtins.replaceStrings [ "o" ] [ "0" ] "foo boo")
  (builtins.substring 1 3 "abcdef")
  (toString [ 1 null true "x" ])
]
