let
  lib = { check = x: if x > 2 then throw "too big: ${toString x}" else x; };
  wrap = f: x: f x;
  mk = n: { value = wrap (wrap lib.check) n; };
  config = { a = mk 1; b = mk 5; };
in
builtins.map (c: c.value) [ config.a config.b ]
