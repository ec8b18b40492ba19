# Evaluation workload: kiln's own package set (../../pkgs). Forces the derivation path of every
# package and every test of `all` (hashing each .drv) and returns their names, which are the
# same in kiln and CppNix (the paths are not: kiln's store hashes differ). CppNix needs
# --extra-experimental-features ca-derivations, the set being content-addressed.
let
  pkgs = import ../../pkgs { };
  isDrv = x: builtins.isAttrs x && x.type or "" == "derivation";
  drvs = builtins.concatMap (x: if isDrv x then [ x ] else builtins.filter isDrv (builtins.attrValues x))
    (builtins.attrValues pkgs.all);
in
map (d: builtins.seq d.drvPath d.name) drvs
