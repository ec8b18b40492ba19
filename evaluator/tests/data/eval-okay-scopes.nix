let
  x = "let";
  attrs = { x = "with"; y = "with-y"; };
  f = x: with attrs; [ x y ];
in [
  (with attrs; x)
  (f "arg")
  (with { a = 1; }; with { a = 2; }; a)
  (let a = 1; in with { a = 2; }; a)
  (rec { a = 1; b = { a = 2; c = a; }; }.b.c)
  (let inherit (attrs) y; in y)
  ({ inherit x; }.x)
]
