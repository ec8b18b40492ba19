# kiln's own small library for the package set: fixed points, overlays, callPackage, overriding
# and a few list and string helpers. Written for kiln, not taken from nixpkgs.
rec {
  # The fixed point of `f`: the value `x` with `x == f x`.
  fix = f: let x = f x; in x;

  # Applies `overlay` (`final: prev: { ... }`) on top of the package-set function `f`.
  extends = overlay: f: final: let prev = f final; in prev // overlay final prev;

  # Composes overlays left to right into one.
  composeOverlays = builtins.foldl'
    (acc: overlay: final: prev: let a = acc final prev; in a // overlay final (prev // a))
    (final: prev: { });

  # A fixed point of `f` with `extend overlay`, which returns the set with `overlay` applied.
  makeExtensible = f:
    fix (final: f final // { extend = overlay: makeExtensible (extends overlay f); });

  # Calls `f` with `args`, and gives the result `override newArgs`, which calls `f` again with
  # `args` updated by `newArgs` (a set, or a function of the old arguments).
  makeOverridable = f: args:
    let result = f args;
        update = newArgs: args // (if builtins.isFunction newArgs then newArgs args else newArgs);
    in if builtins.isAttrs result
       then result // { override = newArgs: makeOverridable f (update newArgs); }
       else result;

  # Calls a package function (or the file holding one) with the arguments it asks for taken
  # from `scope`, then `args`; the result can be overridden.
  callPackageWith = scope: fn: args:
    let f = if builtins.isFunction fn then fn else import fn;
        auto = builtins.intersectAttrs (builtins.functionArgs f) scope;
    in makeOverridable f (auto // args);

  optional = cond: x: if cond then [ x ] else [ ];
  optionals = cond: xs: if cond then xs else [ ];
  optionalString = cond: s: if cond then s else "";
  optionalAttrs = cond: set: if cond then set else { };
  concatMap = f: xs: builtins.concatLists (map f xs);
  concatStringsSep = builtins.concatStringsSep;
  filterAttrs = pred: set:
    builtins.listToAttrs (builtins.concatMap
      (name: let v = set.${name}; in if pred name v then [ { inherit name; value = v; } ] else [ ])
      (builtins.attrNames set));
  mapAttrs = builtins.mapAttrs;

  # Every output of a derivation (`out`, `dev`, ...) as a list of derivations.
  allOutputs = drv: map (o: drv.${o}) (drv.outputs or [ "out" ]);
}
