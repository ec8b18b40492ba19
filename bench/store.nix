# A generated store for the store benchmarks (bench/run.sh store): n text files made with
# builtins.toFile, in two independent halves, "live" and "dead", of n/2 files each. In a half, a
# shared `base` file is named by every other file, and tree node i names nodes 2i+1, 2i+2 and
# 3i+3 when they exist (string context makes them references), so node 0 reaches the whole half
# through a graph about log2(n/2) deep. Evaluating { live, dead } (node 0 of each half) with
# --strict adds all n files. Works with kiln eval and with nix-instantiate --eval
# --read-write-mode (without that flag CppNix only computes the paths).
{ n ? 10000 }:
let
  m = n / 2; # files in a half: the base and m - 1 tree nodes
  half = tag:
    let
      base = builtins.toFile "${tag}-base" "${tag} base\n";
      kids = i: builtins.filter (j: j < m - 1) [ (2 * i + 1) (2 * i + 2) (3 * i + 3) ];
      node = i: builtins.toFile "${tag}-${toString i}"
        ("${tag} node ${toString i}\n${base}\n"
          + builtins.concatStringsSep "" (map (j: "${nodes.${toString j}}\n") (kids i)));
      nodes = builtins.listToAttrs (builtins.genList (i: { name = toString i; value = node i; }) (m - 1));
    in { root = nodes."0"; inherit base; leaf = nodes.${toString (m - 2)}; };
  live = half "live";
  dead = half "dead";
in {
  live = live.root;
  live-base = live.base;
  live-leaf = live.leaf;
  dead = dead.root;
}
