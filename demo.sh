#!/usr/bin/env bash
# kiln's main job on the bundled package set, offline: build the in-tree demo (a C library and
# a program linked against it, from sources in pkgs/demo) in the sandbox, and say how to run it.
set -euo pipefail
cd "$(dirname "$0")"
kiln=./target/release/kiln
[ -x "$kiln" ] || kiln=./target/debug/kiln

"$kiln" build ./pkgs -A demo -o result-demo
echo
echo "built: $(readlink result-demo)"
echo "run it: ./result-demo/bin/greet yourname"
./result-demo/bin/greet kiln
