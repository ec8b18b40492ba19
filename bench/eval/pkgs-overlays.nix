# Evaluation workload: kiln's own package set (../../pkgs), 600 times, each with an overlay that
# changes a comment in stage 1's bzip2, so everything built with stage 1 gets a new derivation:
# forces every derivation path of `all` in each copy and returns how many it forced and the
# names of one copy (store paths differ between kiln and CppNix).
let
  copies = 600;
  isDrv = x: builtins.isAttrs x && x.type or "" == "derivation";
  drvsOf = pkgs: builtins.concatMap (x: if isDrv x then [ x ] else builtins.filter isDrv (builtins.attrValues x))
    (builtins.attrValues pkgs.all);
  copy = i: import ../../pkgs {
    overlays = [ (final: prev: {
      stage1 = prev.stage1 // {
        bzip2 = prev.stage1.bzip2.overrideAttrs (old: { postInstall = old.postInstall + "\n# copy ${toString i}\n"; });
      };
    }) ];
  };
  forced = builtins.concatMap (i: map (d: builtins.seq d.drvPath d.name) (drvsOf (copy i))) (builtins.genList (i: i) copies);
in
{
  forced = builtins.length forced;
  names = map (d: d.name) (drvsOf (copy 0));
}
