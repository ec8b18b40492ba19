let
  xs = [ (throw "never") 2 ];
  s = { a = throw "never"; b = 1; };
in [ (builtins.length xs) s.b (builtins.elemAt xs 1) (builtins.tryEval (throw "caught")) ]
