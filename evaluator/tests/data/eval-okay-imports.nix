let
  m = import ./lib/module.nix { x = 4; };
  s = import ./lib/self.nix;
  scoped = builtins.scopedImport { extra = 5; } ./lib/uses-extra.nix;
in [ m.value (m.greet "kiln") s.b (import ./lib/self.nix == s) scoped ]
