#!/usr/bin/env bash
# Times kiln's store queries and garbage collection against CppNix on a generated store of N text
# files (bench/store.nix), half of them live (reachable from one root) and half dead:
#   (a) the closure of the live root, (b) the referrers of a path, (c) the closure size of the
#   live root, (d) garbage collection of the dead half (checked afterwards in both stores).
#
#   bench/store.sh [N] [RUNS]      (defaults: 10000 paths, 5 runs of each query, median)
#
# Garbage collection deletes, so each of its 3 runs starts from a copy of the store taken before
# the first. CppNix (Debian's nix-bin) runs in a private store as in ../shared/cppnix-reference.md,
# its files added by nix-instantiate --eval --read-write-mode. Where nix-store is missing, kiln
# runs alone and says so.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-10000}
runs=${2:-5}
gc_runs=3
m=$((n / 2)) # paths in each half
kiln=$PWD/target/release/kiln
[ -x "$kiln" ] || { echo "build kiln first: cargo build --release" >&2; exit 1; }
work=$(mktemp -d)
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
have_nix=false
command -v nix-store > /dev/null && command -v nix-instantiate > /dev/null && have_nix=true

now() { date +%s.%N; }
elapsed() { echo "$(now) - $1" | bc; }
median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
die() { echo "error: $*" >&2; exit 1; }
check() { # what, got, expected
    [ "$2" -eq "$3" ] || die "$1: $2, expected $3"
    printf '  %-46s %s\n' "$1" "$2"
}
# Runs a command (in a function so both tools go through the same path) and prints its seconds.
timed() { local t0; t0=$(now); "$@" > /dev/null 2>&1 || die "failed: $*"; elapsed "$t0"; }

K=$work/kiln
k() { "$kiln" --store "$K" "$@"; }
if $have_nix; then
    export NIX_STORE_DIR=$work/nix/store NIX_STATE_DIR=$work/nix/var NIX_LOG_DIR=$work/nix/log NIX_CONF_DIR=$work/nix/conf
    mkdir -p "$NIX_CONF_DIR"
    printf 'substituters =\nsandbox = false\nbuild-users-group =\n' > "$NIX_CONF_DIR/nix.conf"
fi

echo "store of $n paths ($m live under one root, $m dead); queries: median of $runs runs; gc: median of $gc_runs"

# Generate.
t0=$(now)
k eval bench/store.nix --arg n "$n" --strict --json > "$work/kiln.json"
gen_kiln=$(elapsed "$t0")
k_live=$(jq -r .live "$work/kiln.json"); k_dead=$(jq -r .dead "$work/kiln.json")
k_base=$(jq -r '."live-base"' "$work/kiln.json"); k_leaf=$(jq -r '."live-leaf"' "$work/kiln.json")
ln -s "$k_live" "$K/gcroots/live"
if $have_nix; then
    t0=$(now)
    nix-instantiate --eval --strict --json --read-write-mode bench/store.nix --arg n "$n" > "$work/nix.json"
    gen_nix=$(elapsed "$t0")
    n_live=$(jq -r .live "$work/nix.json"); n_dead=$(jq -r .dead "$work/nix.json")
    n_base=$(jq -r '."live-base"' "$work/nix.json"); n_leaf=$(jq -r '."live-leaf"' "$work/nix.json")
    ln -s "$n_live" "$NIX_STATE_DIR/gcroots/live"
fi

# Check what each store holds before timing anything.
echo "kiln store $K:"
k store closure "$k_live" | sort > "$work/kiln-live"
k store gc --dry-run 2> /dev/null | sort > "$work/kiln-dead"
check "paths in the live root's closure" "$(wc -l < "$work/kiln-live")" "$m"
check "paths gc would delete" "$(wc -l < "$work/kiln-dead")" "$m"
check "of them in the live closure" "$(comm -12 "$work/kiln-live" "$work/kiln-dead" | wc -l)" 0
check "paths on disk" "$(ls "$K/store" | wc -l)" "$((2 * m))"
check "referrers of the shared leaf" "$(k store referrers "$k_base" | wc -l)" "$((m - 1))"
if $have_nix; then
    echo "CppNix store $NIX_STORE_DIR:"
    nix-store --gc --print-roots 2> /dev/null | grep -q "^$NIX_STATE_DIR/gcroots/live -> $n_live\$" \
        || die "CppNix does not list the root $NIX_STATE_DIR/gcroots/live"
    nix-store -qR "$n_live" | sort > "$work/nix-live"
    nix-store --gc --print-dead 2> /dev/null | sort > "$work/nix-dead"
    check "paths in the live root's closure" "$(wc -l < "$work/nix-live")" "$m"
    check "paths gc would delete" "$(wc -l < "$work/nix-dead")" "$m"
    check "of them in the live closure" "$(comm -12 "$work/nix-live" "$work/nix-dead" | wc -l)" 0
    check "paths on disk" "$(ls "$NIX_STORE_DIR" | wc -l)" "$((2 * m))"
    check "referrers of the shared leaf" "$(nix-store -q --referrers "$n_base" | wc -l)" "$((m - 1))"
    k_size=$(k store info --json "$k_live" | jq '.[0].closureSize')
    n_size=$(nix-store -qR "$n_live" | xargs nix-store -q --size | awk '{ s += $1 } END { print s }')
    echo "closure size of the live root: kiln $k_size bytes, CppNix $n_size bytes (store paths differ in length)"
fi

# The operations, each as a kiln and a CppNix function.
k_closure() { k store closure "$k_live"; }
n_closure() { nix-store -qR "$n_live"; }
k_ref_base() { k store referrers "$k_base"; }
n_ref_base() { nix-store -q --referrers "$n_base"; }
k_ref_leaf() { k store referrers "$k_leaf"; }
n_ref_leaf() { nix-store -q --referrers "$n_leaf"; }
k_size() { k store info --json "$k_live"; }
# CppNix 2.8 has no closure size without the experimental `nix path-info -S`: ask the closure,
# then the size of each path in it (two processes).
n_size() { nix-store -qR "$n_live" | xargs nix-store -q --size; }
k_gc() { k store gc; }
n_gc() { nix-store --gc; }

declare -A kt nt
labels=()
bench() { # label, kiln function, CppNix function, repetitions
    local label=$1 kf=$2 nf=$3 reps=$4 i ks=() ns=()
    for ((i = 0; i < reps; i++)); do
        ks+=("$(timed "$kf")")
        $have_nix && ns+=("$(timed "$nf")")
    done
    labels+=("$label")
    kt[$label]=$(printf '%s\n' "${ks[@]}" | median)
    $have_nix && nt[$label]=$(printf '%s\n' "${ns[@]}" | median)
    return 0
}
bench "closure of the live root ($m paths)" k_closure n_closure "$runs"
bench "referrers of the shared leaf ($((m - 1)))" k_ref_base n_ref_base "$runs"
bench "referrers of a tree leaf (1)" k_ref_leaf n_ref_leaf "$runs"
bench "closure size of the live root" k_size n_size "$runs"

# Garbage collection: each run starts from a copy of the stores as generated.
snapshot() { cp -a "$K" "$K.orig"; $have_nix && cp -a "$work/nix" "$work/nix.orig"; return 0; }
restore() { # kiln|nix
    local d=$K; [ "$1" = nix ] && d=$work/nix
    chmod -R u+w "$d"; rm -rf "$d"; cp -a "$d.orig" "$d"
}
snapshot
k_gc_fresh() { restore kiln; sync; timed k_gc; }
n_gc_fresh() { restore nix; sync; timed n_gc; }
ks=(); ns=()
for ((i = 0; i < gc_runs; i++)); do
    ks+=("$(k_gc_fresh)")
    $have_nix && ns+=("$(n_gc_fresh)")
done
gc_label="gc of the dead half ($m paths)"
labels+=("$gc_label")
kt[$gc_label]=$(printf '%s\n' "${ks[@]}" | median)
$have_nix && nt[$gc_label]=$(printf '%s\n' "${ns[@]}" | median)

# After the last collection: the live half is all valid and the dead half is gone, in both.
echo "after gc, kiln:"
check "live paths still in the closure" "$(k store closure "$k_live" | sort | comm -12 - "$work/kiln-live" | wc -l)" "$m"
check "paths gc would still delete" "$(k store gc --dry-run 2> /dev/null | wc -l)" 0
check "paths on disk" "$(ls "$K/store" | wc -l)" "$m"
check "dead paths left on disk" "$(cd "$K/store" && ls | grep -c -- '-dead-' || true)" 0
if k store info "$k_dead" > /dev/null 2>&1; then die "kiln still has $k_dead"; fi
if $have_nix; then
    echo "after gc, CppNix:"
    check "live paths no longer valid" "$(nix-store --check-validity --print-invalid $(cat "$work/nix-live") | wc -l)" 0
    check "paths gc would still delete" "$(nix-store --gc --print-dead 2> /dev/null | wc -l)" 0
    check "paths on disk" "$(ls "$NIX_STORE_DIR" | wc -l)" "$m"
    check "dead paths left on disk" "$(cd "$NIX_STORE_DIR" && ls | grep -c -- '-dead-' || true)" 0
    if nix-store --check-validity "$n_dead" 2> /dev/null; then die "CppNix still has $n_dead"; fi
fi

echo
printf 'generation (not compared): kiln %.2f s' "$gen_kiln"
$have_nix && printf ', CppNix %.2f s' "$gen_nix"
echo
printf '%-42s %9s %9s %8s\n' operation "kiln s" "CppNix s" kiln/nix
for l in "${labels[@]}"; do
    if $have_nix; then
        printf '%-42s %9.3f %9.3f %8.2f\n' "$l" "${kt[$l]}" "${nt[$l]}" "$(echo "${kt[$l]} / ${nt[$l]}" | bc -l)"
    else
        printf '%-42s %9.3f %9s %8s\n' "$l" "${kt[$l]}" - -
    fi
done
$have_nix || echo "nix-store is not installed (apt-get install nix-bin): kiln ran alone"
