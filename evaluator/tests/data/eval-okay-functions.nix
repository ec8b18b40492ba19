let
  f = { a, b ? a * 10, ... }@all: a + b + builtins.length (builtins.attrNames all);
  g = x: y: x - y;
in [ (f { a = 1; }) (f { a = 1; b = 2; c = 3; }) (g 10 3) (builtins.functionArgs f) ]
