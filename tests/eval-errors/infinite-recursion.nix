let
  x = { a = y; };
  y = x.a;
in
x.a
