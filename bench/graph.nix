# A generated graph of trivial derivations for the build benchmarks: node i depends on nodes
# i/2 and i/3 (a DAG that is wide near the top), node 0 prints `leaf` (and has `comment` in its
# script, which changes its derivation but not its output). Works with kiln and with CppNix's
# nix-build. `ca = true` makes every derivation content-addressed (kiln only); `flat = true`
# drops the dependencies, so all n derivations are independent and ready at once.
{ n ? 1000, leaf ? "leaf", comment ? "", ca ? false, flat ? false }:
let
  node = i:
    let deps = if i == 0 || flat then [ ] else builtins.filter (j: j < i) [ (i / 2) (i / 3) ];
    in derivation ({
      name = "node-${toString i}";
      system = builtins.currentSystem;
      builder = "/bin/sh";
      args = [ "-c" "echo ${if i == 0 then leaf else toString i} ${toString (map (j: nodes.${toString j}) deps)} > $out # ${if i == 0 then comment else ""}" ];
      __impureHostDeps = [ "/bin/sh" "/lib/x86_64-linux-gnu" "/lib64" ];
    } // (if ca then { __contentAddressed = true; } else { }));
  nodes = builtins.listToAttrs (builtins.genList (i: { name = toString i; value = node i; }) n);
in
# Everything hangs from the last node's closure, plus every node so none is left out.
builtins.attrValues nodes
