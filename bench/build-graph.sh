#!/usr/bin/env bash
# Times kiln against CppNix on a generated graph of trivial derivations (bench/graph.nix):
# a cold build, a no-op build, and a rebuild after changing the leaf at the bottom; for kiln
# also with content-addressed derivations whose leaf output does not change (early cutoff).
#
#   bench/build-graph.sh [N] [JOBS]      (defaults: 1000 derivations, -j 1)
#
# CppNix (Debian's nix-bin) runs in a private store without its sandbox, as configured in
# ../shared/cppnix-reference.md; kiln runs both with and without its sandbox. Where nix-build is
# missing, kiln runs alone and says so.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-1000}
jobs=${2:-1}
kiln=$PWD/target/release/kiln
[ -x "$kiln" ] || { echo "build kiln first: cargo build --release" >&2; exit 1; }
work=$(mktemp -d)
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT

now() { date +%s.%N; }
elapsed() { echo "$(now) - $1" | bc; }
row() { printf '%-34s %8.2f s  %7.2f ms/drv\n' "$1" "$2" "$(echo "$2 * 1000 / $n" | bc -l)"; }

time_kiln() { # label, extra args...
    local label=$1; shift
    local t0; t0=$(now)
    "$kiln" --store "$work/kiln-$label" build bench/graph.nix --arg n "$n" -j "$jobs" --no-link "$@" > /dev/null 2>&1
    elapsed "$t0"
}

echo "graph of $n trivial derivations, -j $jobs"
for mode in sandbox no-sandbox; do
    flag=(); [ "$mode" = no-sandbox ] && flag=(--no-sandbox)
    row "kiln ($mode) cold" "$(time_kiln "$mode" "${flag[@]}")"
    row "kiln ($mode) no-op" "$(time_kiln "$mode" "${flag[@]}")"
    row "kiln ($mode) leaf changed" "$(time_kiln "$mode" "${flag[@]}" --argstr leaf changed)"
done
time_kiln ca --arg ca true > /dev/null
row "kiln (ca) leaf rebuilt, same output" "$(time_kiln ca --arg ca true --argstr comment changed)"

if command -v nix-build > /dev/null; then
    export NIX_STORE_DIR=$work/nix/store NIX_STATE_DIR=$work/nix/var NIX_LOG_DIR=$work/nix/log NIX_CONF_DIR=$work/nix/conf
    mkdir -p "$NIX_CONF_DIR"
    printf 'substituters =\nsandbox = false\nbuild-users-group =\n' > "$NIX_CONF_DIR/nix.conf"
    time_nix() {
        local t0; t0=$(now)
        nix-build bench/graph.nix --arg n "$n" -j "$jobs" --no-out-link "$@" > /dev/null 2>&1
        elapsed "$t0"
    }
    row "CppNix cold" "$(time_nix)"
    row "CppNix no-op" "$(time_nix)"
    row "CppNix leaf changed" "$(time_nix --argstr leaf changed)"
else
    echo "nix-build is not installed (apt-get install nix-bin): kiln ran alone"
fi
