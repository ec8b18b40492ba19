let
  s = { a.b = 1; a.c = 2; d = { e = 3; }; d.f = 4; };
  r = rec { x = y + 1; y = 2; inherit (s) d; };
in [ s r (s ? a.b) (s.a.z or "default") ({ inherit s; } // { t = 1; }) ]
