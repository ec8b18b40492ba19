#!/usr/bin/env bash
# kiln's benchmark suite (issue 7): evaluation, build and store workloads, each run with kiln and
# with CppNix 2.8 side by side, the two alternating. Prints per workload the median wall time and
# median peak memory (RSS) of each tool and the ratios kiln/CppNix, the geometric mean of the
# ratios per group, and how the issue's targets stand, as Markdown; also writes bench/results.md.
#
#   bench/run.sh [--quick] [--runs N] [--build-runs N] [--no-install] [GROUP...]
#
#   GROUP           eval, build or store (default: all three)
#   --quick         one run of everything, smaller graphs and stores: a smoke test in minutes
#   --runs N        runs of each evaluation and store query (default 5)
#   --build-runs N  runs of each build and garbage collection (default 3)
#   --no-install    do not try `apt-get install nix-bin` when CppNix is missing
#   KILN=PATH       the kiln binary (default: target/release/kiln, from cargo build --release)
#
# Outputs are compared before timing counts: evaluation results (whitespace normalised), the
# number of derivations written and built, the paths of store queries; a mismatch is printed
# as an error and marks the row. A workload is not run again once a run took longer than a
# limit (10 s for evaluation, 60 s for builds and store operations); the runs column says how
# many runs each median is of. CppNix evaluates with NIX_REMOTE=dummy:// and builds in
# private stores without its sandbox (../shared/cppnix-reference.md); kiln builds with
# --no-sandbox to match, and once with its sandbox for information. Where CppNix is missing,
# kiln runs alone and the output says so.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

# Options.
quick=false
runs=5
build_runs=3
install=true
groups=()
while [ $# -gt 0 ]; do
    case $1 in
        --quick) quick=true ;;
        --runs) runs=${2:?--runs needs a number}; shift ;;
        --build-runs) build_runs=${2:?--build-runs needs a number}; shift ;;
        --no-install) install=false ;;
        eval | build | store) groups+=("$1") ;;
        -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "bench/run.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done
[ ${#groups[@]} -gt 0 ] || groups=(eval build store)
if $quick; then runs=1; build_runs=1; fi
eval_limit=10 # seconds: a workload whose first run takes longer is not repeated
build_limit=60
# Sizes: full, or --quick.
if $quick; then
    graph_sizes=(100 500); flat_n=100; wide_n=4; wide_loops=100000; store_n=4000
else
    graph_sizes=(1000 5000); flat_n=1000; wide_n=12; wide_loops=350000; store_n=10000
fi
small_store_n=2000 # its live half is the 1,000-path closure the query targets are about
jobs=1             # -j of the graph builds (the parallel rows use -j1 and -j2)

kiln=${KILN:-$root/target/release/kiln}
[ -x "$kiln" ] || { echo "no kiln at $kiln: cargo build --release, or set KILN=/path/to/kiln" >&2; exit 1; }
kiln=$(cd "$(dirname "$kiln")" && pwd)/$(basename "$kiln")
[ -x /usr/bin/time ] || { echo "bench/run.sh needs GNU time at /usr/bin/time (apt-get install time)" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/kiln-bench.XXXXXX")
rmtree() { chmod -R u+w "$@" 2> /dev/null || true; rm -rf "$@"; }
trap 'rmtree "$work"' EXIT
log() { echo "$*" >&2; }

# CppNix: found, else installed (Debian's nix-bin), else kiln runs alone.
nix_tools() { command -v nix-instantiate && command -v nix-build && command -v nix-store; }
if ! nix_tools > /dev/null && $install && [ "$(id -u)" = 0 ] && command -v apt-get > /dev/null; then
    log "CppNix is missing: apt-get install nix-bin"
    apt-get install -y nix-bin > /dev/null 2>&1 || { apt-get update > /dev/null 2>&1 && apt-get install -y nix-bin > /dev/null 2>&1; } || true
fi
have_nix=false
nix_version="not installed: kiln ran alone"
if nix_tools > /dev/null; then
    have_nix=true
    nix_version=$(nix-instantiate --version | awk '{ print $NF }')
fi
unset NIX_REMOTE NIX_PATH
# A private CppNix store under $1: configuration without binary caches or sandbox.
nix_store_new() {
    mkdir -p "$1/conf"
    printf 'substituters =\nsandbox = false\nbuild-users-group =\nexperimental-features = ca-derivations\n' > "$1/conf/nix.conf"
}
# The environment of CppNix commands on the private store at $1, as `env VAR=...` words in NE.
NE=()
nix_env() { NE=(env NIX_STORE_DIR="$1/store" NIX_STATE_DIR="$1/var" NIX_LOG_DIR="$1/log" NIX_CONF_DIR="$1/conf"); }
in_nix() { # store-dir command...: runs a CppNix command on that private store
    nix_env "$1"; shift
    "${NE[@]}" "$@"
}

# Measurement. run_timed OUT ERR CMD... runs CMD with its output in OUT and ERR and sets T (wall
# seconds, from the clock around the call), M (peak RSS in KiB, from GNU time) and RC.
T=0 M=0 RC=0
run_timed() {
    local out=$1 err=$2 t0 t1; shift 2
    RC=0
    t0=$(date +%s%N)
    /usr/bin/time -f %M -o "$work/rss" "$@" > "$out" 2> "$err" || RC=$?
    t1=$(date +%s%N)
    T=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f", (b - a) / 1e9 }')
    M=$(tail -n 1 "$work/rss")
}

# Rows: an id, its group and label, and the samples of each tool.
rows=()
declare -A row_group row_label row_note samples failed
new_row() { # id group label
    rows+=("$1"); row_group[$1]=$2; row_label[$1]=$3; row_note[$1]=""
    samples[$1/kiln]=""; samples[$1/nix]=""
}
note() { # id text: adds a note to the row, once
    case "${row_note[$1]}" in *"$2"*) return 0 ;; esac
    row_note[$1]="${row_note[$1]:+${row_note[$1]}; }$2"
}
# timed ID TOOL CMD...: runs and records CMD as a run of tool kiln|nix for row ID; its output is
# left in $work/out and $work/err. A failure is noted on the row (and keeps it out of the means).
timed() {
    local id=$1 tool=$2; shift 2
    run_timed "$work/out" "$work/err" "$@"
    if [ "$RC" -ne 0 ]; then
        local what=kiln; [ "$tool" = nix ] && what=CppNix
        failed[$id/$tool]=1
        note "$id" "✗ $what failed (exit $RC): $(grep -m 1 -i 'error' "$work/err" | cut -c 1-100 || true)"
        log "  ERROR: $what failed on ${row_label[$id]} (exit $RC): $*"
        sed 's/^/    /' "$work/err" | head -n 8 >&2
        return 1
    fi
    samples[$id/$tool]+="$T $M "
    log "$(printf '  %-52s %-6s %8.3f s %8.1f MiB' "${row_label[$id]}" "$tool" "$T" "$(awk -v m="$M" 'BEGIN { print m / 1024 }')")"
}
mismatch() { # id text: an output that differs between the tools, or from what was expected
    note "$1" "✗ $2"
    log "  ERROR: ${row_label[$1]}: $2"
}
expect() { # id what got expected
    [ "$3" = "$4" ] || mismatch "$1" "$2: $3, expected $4"
}
count() { wc -l < "$1" | tr -d ' '; }
# over_limit SECONDS ID...: whether a run of any of the rows took longer than SECONDS.
over_limit() {
    local limit=$1 id; shift
    for id in "$@"; do
        if printf '%s\n' "${samples[$id/kiln]} ${samples[$id/nix]}" | awk -v l="$limit" \
            '{ for (i = 1; i <= NF; i += 2) if ($i > l) found = 1 } END { exit !found }'; then
            return 0
        fi
    done
    return 1
}
# repeat N LIMIT KILN-FN NIX-FN ROW...: calls KILN-FN then NIX-FN (- for none, NIX-FN only when
# CppNix is there) with the run number, N times, or once when the first run of a ROW took longer
# than LIMIT seconds.
repeat() {
    local n=$1 limit=$2 kf=$3 nf=$4 i id; shift 4
    for ((i = 1; i <= n; i++)); do
        if [ "$i" -gt 1 ] && over_limit "$limit" "$@"; then
            for id in "$@"; do note "$id" "stopped after $((i - 1)) run(s), one took over $limit s"; done
            break
        fi
        [ "$kf" = - ] || "$kf" "$i"
        if $have_nix && [ "$nf" != - ]; then "$nf" "$i"; fi
    done
}
median() { # a list of numbers on stdin, one a line
    sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print ""; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
stat_of() { # id tool t|m|n: median seconds, median MiB, or number of runs
    local s=${samples[$1/$2]}
    case $3 in
        t) printf '%s\n' "$s" | awk '{ for (i = 1; i <= NF; i += 2) print $i }' | median ;;
        m) printf '%s\n' "$s" | awk '{ for (i = 2; i <= NF; i += 2) print $i / 1024 }' | median ;;
        n) printf '%s\n' "$s" | awk '{ print NF / 2 }' ;;
    esac
}
ratio() { [ -n "$1" ] && [ -n "$2" ] && awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b }'; }
num() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.*f", b, a }'; } # value, decimals

# ---------------------------------------------------------------------------------------------
# Evaluation: bench/eval/*.nix, each a self-contained expression with a small result.
eval_label() {
    case $1 in
        fib) echo "function calls and arithmetic (fib 29)" ;;
        lists) echo "lists: genList, map, filter, foldl' (200k)" ;;
        attrs) echo "attribute sets: merges, updates, lookups (20k)" ;;
        strings) echo "string building and regular expressions" ;;
        sort) echo "sort with a comparator (60k)" ;;
        json) echo "JSON round trip (50k records)" ;;
        pkgset) echo "package set: fixed point, overlays, callPackage (12k)" ;;
        recursion) echo "deep recursion (depth 50,000)" ;;
        substring) echo "substring loop over a 100 kB string" ;;
        pkgs) echo "kiln's pkgs/: every drvPath of \`all\`" ;;
        pkgs-overlays) echo "kiln's pkgs/, 600 copies with an overlay" ;;
        *) echo "$1" ;;
    esac
}
eval_file=""
eval_id=""
eval_kiln() {
    [ -z "${failed[$eval_id/kiln]:-}" ] || return 0 # failed once: not run again
    local s=$work/eval-store
    rmtree "$s"
    "$kiln" --store "$s" eval -E 1 > /dev/null # a fresh store, made before timing
    if timed "$eval_id" kiln "$kiln" --store "$s" eval --strict "$eval_file"; then
        cp "$work/out" "$work/eval-kiln.out"
    else
        : > "$work/eval-kiln.out"
    fi
    rmtree "$s"
}
eval_nix() {
    [ -z "${failed[$eval_id/nix]:-}" ] || return 0
    if timed "$eval_id" nix env NIX_REMOTE=dummy:// NIX_CONF_DIR="$work/nix-eval/conf" \
        nix-instantiate --eval --strict "$eval_file"; then
        cp "$work/out" "$work/eval-nix.out"
    else
        : > "$work/eval-nix.out"
    fi
    # Compare the first run's results, whitespace normalised.
    if [ "$1" = 1 ] && [ -z "${failed[$eval_id/kiln]:-}" ] && [ -z "${failed[$eval_id/nix]:-}" ]; then
        local a b
        a=$(tr -s '[:space:]' ' ' < "$work/eval-kiln.out" | sed 's/^ //; s/ $//')
        b=$(tr -s '[:space:]' ' ' < "$work/eval-nix.out" | sed 's/^ //; s/ $//')
        if [ "$a" != "$b" ]; then
            mismatch "$eval_id" "output differs from CppNix's"
            log "    kiln:   ${a:0:400}"
            log "    CppNix: ${b:0:400}"
        fi
    fi
}
# The deepest `f n = 1 + f (n - 1)` a command evaluates (binary search, to within 1%).
depth_limit() {
    local lo=1000 hi=2000000 mid
    while [ $((hi - lo)) -gt $((lo / 100)) ]; do
        mid=$(((lo + hi) / 2))
        if "$@" "let f = n: if n == 0 then 0 else 1 + f (n - 1); in f $mid" > /dev/null 2>&1; then
            lo=$mid
        else
            hi=$mid
        fi
    done
    echo "$lo"
}
kiln_expr() { "$kiln" eval --strict -E "$1"; }
nix_expr() { env NIX_REMOTE=dummy:// NIX_CONF_DIR="$work/nix-eval/conf" nix-instantiate --eval --strict -E "$1"; }
recursion_note=""
group_eval() {
    log "== eval: bench/eval/*.nix, $runs runs each"
    nix_store_new "$work/nix-eval"
    local f name
    for f in bench/eval/*.nix; do
        name=$(basename "$f" .nix)
        eval_file=$f
        eval_id=eval-$name
        new_row "$eval_id" eval "$(eval_label "$name")"
        case $name in pkgs | pkgs-overlays) note "$eval_id" "kiln writes the .drv files to its store, CppNix --eval only computes their paths" ;; esac
        if $have_nix; then repeat "$runs" "$eval_limit" eval_kiln eval_nix "$eval_id"
        else repeat "$runs" "$eval_limit" eval_kiln - "$eval_id"; fi
    done
    # Recursion depth: the deepest non-tail recursion each evaluates, and kiln beyond its limit.
    log "== eval: recursion depth limits"
    local kd nd rc=0
    kd=$(depth_limit kiln_expr)
    kiln_expr "let f = n: if n == 0 then 0 else 1 + f (n - 1); in f 10000000" > /dev/null 2>&1 || rc=$?
    recursion_note="deepest non-tail recursion evaluated: kiln $kd"
    if $have_nix; then
        nd=$(depth_limit nix_expr)
        recursion_note+=", CppNix $nd (target: kiln at least CppNix's)"
    fi
    case $rc in
        0) recursion_note+="; kiln at depth 10,000,000: evaluated" ;;
        1) recursion_note+="; kiln at depth 10,000,000: an error, exit 1 (target: an error, never a crash)" ;;
        *) recursion_note+="; kiln at depth 10,000,000: CRASH, exit $rc (target: an error, never a crash)" ;;
    esac
    log "  $recursion_note"
}

# ---------------------------------------------------------------------------------------------
# Builds: bench/graph.nix (trivial derivations, node i depending on i/2 and i/3; or flat) and
# bench/wide.nix (CPU-bound), in fresh stores.
g_n=0
graph_kiln() {
    local i=$1 s=$work/kiln-graph n=$g_n
    rmtree "$s" "$s-inst"
    timed "inst-$n" kiln "$kiln" --store "$s-inst" instantiate bench/graph.nix --arg n "$n" &&
        expect "inst-$n" "kiln .drv files" "$(count "$work/out")" "$n"
    rmtree "$s-inst"
    local b=("$kiln" --store "$s" build bench/graph.nix --arg n "$n" -j "$jobs" --no-link --no-sandbox)
    timed "cold-$n" kiln "${b[@]}" && expect "cold-$n" "kiln outputs" "$(count "$work/out")" "$n"
    timed "noop-$n" kiln "${b[@]}" && expect "noop-$n" "kiln outputs" "$(count "$work/out")" "$n"
    timed "leaf-$n" kiln "${b[@]}" --argstr leaf changed && expect "leaf-$n" "kiln outputs" "$(count "$work/out")" "$n"
    rmtree "$s"
}
graph_nix() {
    local i=$1 s=$work/nix-graph n=$g_n
    rmtree "$s" "$s-inst"
    nix_store_new "$s-inst"
    nix_env "$s-inst"
    timed "inst-$n" nix "${NE[@]}" nix-instantiate bench/graph.nix --arg n "$n" &&
        expect "inst-$n" "CppNix .drv files" "$(count "$work/out")" "$n"
    rmtree "$s-inst"
    nix_store_new "$s"
    nix_env "$s"
    local b=("${NE[@]}" nix-build bench/graph.nix --arg n "$n" -j "$jobs" --no-out-link)
    timed "cold-$n" nix "${b[@]}" && expect "cold-$n" "CppNix outputs" "$(count "$work/out")" "$n"
    timed "noop-$n" nix "${b[@]}" && expect "noop-$n" "CppNix outputs" "$(count "$work/out")" "$n"
    timed "leaf-$n" nix "${b[@]}" --argstr leaf changed && expect "leaf-$n" "CppNix outputs" "$(count "$work/out")" "$n"
    rmtree "$s"
}
ca_kiln() { # in the content-addressed store made before the first run
    local n=$g_n
    if timed "ca-$n" kiln "$kiln" --store "$work/kiln-ca" build bench/graph.nix --arg n "$n" --arg ca true \
        --argstr comment "changed $1" -j "$jobs" --no-link --no-sandbox; then
        grep -q "^built 1, reused 0, cut off $((n - 1))," "$work/err" ||
            mismatch "ca-$n" "expected 1 built and $((n - 1)) cut off, got: $(tail -n 1 "$work/err")"
    fi
}
sandbox_kiln() {
    local n=$g_n s=$work/kiln-sandbox
    rmtree "$s"
    timed "sandbox-$n" kiln "$kiln" --store "$s" build bench/graph.nix --arg n "$n" -j "$jobs" --no-link &&
        expect "sandbox-$n" "kiln outputs" "$(count "$work/out")" "$n"
    rmtree "$s"
}
# A cold build of FILE with ARGS at -j J in a fresh store: p_id, p_file, p_j, p_args, p_count.
p_id="" p_file="" p_j=1 p_count=0
p_args=()
par_kiln() {
    local s=$work/kiln-par
    rmtree "$s"
    timed "$p_id" kiln "$kiln" --store "$s" build "$p_file" "${p_args[@]}" -j "$p_j" --no-link --no-sandbox &&
        expect "$p_id" "kiln outputs" "$(count "$work/out")" "$p_count"
    rmtree "$s"
}
par_nix() {
    local s=$work/nix-par
    rmtree "$s"; nix_store_new "$s"
    nix_env "$s"
    timed "$p_id" nix "${NE[@]}" nix-build "$p_file" "${p_args[@]}" -j "$p_j" --no-out-link &&
        expect "$p_id" "CppNix outputs" "$(count "$work/out")" "$p_count"
    rmtree "$s"
}
par_row() { # id label file count j args...
    p_id=$1; p_file=$3; p_count=$4; p_j=$5; p_args=("${@:6}")
    new_row "$p_id" build "$2"
    repeat "$build_runs" "$build_limit" par_kiln par_nix "$p_id"
}
group_build() {
    log "== build: graphs of trivial derivations (${graph_sizes[*]}), $build_runs runs each, -j $jobs"
    local n
    for n in "${graph_sizes[@]}"; do
        g_n=$n
        new_row "inst-$n" build "instantiate $n (.drv files written)"
        new_row "cold-$n" build "cold build of $n, -j$jobs"
        new_row "noop-$n" build "no-op build of $n"
        new_row "leaf-$n" build "leaf changed: $n rebuilt"
        repeat "$build_runs" "$build_limit" graph_kiln graph_nix "inst-$n" "cold-$n" "noop-$n" "leaf-$n"
        new_row "ca-$n" build "content-addressed leaf, same output: 1 built, $((n - 1)) cut off (kiln only)"
        rmtree "$work/kiln-ca"
        log "  (content-addressed graph of $n: first build, not timed)"
        "$kiln" --store "$work/kiln-ca" build bench/graph.nix --arg n "$n" --arg ca true -j "$jobs" --no-link --no-sandbox > /dev/null 2>&1
        repeat "$build_runs" "$build_limit" ca_kiln - "ca-$n"
        rmtree "$work/kiln-ca"
    done
    g_n=${graph_sizes[0]}
    new_row "sandbox-$g_n" build "cold build of $g_n, kiln with its sandbox (kiln only, 1 run)"
    repeat 1 "$build_limit" sandbox_kiln - "sandbox-$g_n"

    log "== build: flat and wide graphs"
    par_row "flat-$flat_n-j1" "flat graph of $flat_n, cold, -j1" bench/graph.nix "$flat_n" 1 --arg n "$flat_n" --arg flat true
    par_row "flat-$((2 * flat_n))-j1" "flat graph of $((2 * flat_n)), cold, -j1" bench/graph.nix "$((2 * flat_n))" 1 --arg n "$((2 * flat_n))" --arg flat true
    par_row "flat-$flat_n-j2" "flat graph of $flat_n, cold, -j2" bench/graph.nix "$flat_n" 2 --arg n "$flat_n" --arg flat true
    par_row wide-j1 "$wide_n CPU-bound builds, -j1" bench/wide.nix "$wide_n" 1 --arg n "$wide_n" --arg loops "$wide_loops"
    par_row wide-j2 "$wide_n CPU-bound builds, -j2" bench/wide.nix "$wide_n" 2 --arg n "$wide_n" --arg loops "$wide_loops"
}

# ---------------------------------------------------------------------------------------------
# Store: bench/store.nix, N small files in two halves, "live" (rooted) and "dead", each a
# reference graph about log2(N/2) deep from node 0 with every file also naming a shared base.
declare -A st # per store: paths of its live root, base, tree leaf, dead root
store_make() { # tag n: generates the kiln and CppNix stores, timed as a row
    local tag=$1 n=$2 m=$(($2 / 2)) k=$work/kiln-$1 x=$work/nix-$1
    new_row "gen-$tag" store "generate a store of $n files (eval + add, 1 run)"
    if timed "gen-$tag" kiln "$kiln" --store "$k" eval bench/store.nix --arg n "$n" --strict --json; then
        st[$tag/k/live]=$(jq -r .live "$work/out"); st[$tag/k/dead]=$(jq -r .dead "$work/out")
        st[$tag/k/base]=$(jq -r '."live-base"' "$work/out"); st[$tag/k/leaf]=$(jq -r '."live-leaf"' "$work/out")
        ln -s "${st[$tag/k/live]}" "$k/gcroots/live"
        "$kiln" --store "$k" store closure "${st[$tag/k/live]}" | sort > "$work/$tag-kiln-live"
        expect "gen-$tag" "kiln live closure" "$(count "$work/$tag-kiln-live")" "$m"
        "$kiln" --store "$k" store gc --dry-run 2> /dev/null | sort > "$work/$tag-kiln-dead"
        expect "gen-$tag" "kiln dead paths" "$(count "$work/$tag-kiln-dead")" "$m"
        expect "gen-$tag" "kiln dead paths in the live closure" "$(comm -12 "$work/$tag-kiln-live" "$work/$tag-kiln-dead" | wc -l)" 0
        expect "gen-$tag" "kiln paths on disk" "$(find "$k/store" -mindepth 1 -maxdepth 1 -not -name '.*' | wc -l)" "$n"
    fi
    $have_nix || return 0
    nix_store_new "$x"
    nix_env "$x"
    if timed "gen-$tag" nix "${NE[@]}" nix-instantiate --eval --strict --json --read-write-mode bench/store.nix --arg n "$n"; then
        st[$tag/n/live]=$(jq -r .live "$work/out"); st[$tag/n/dead]=$(jq -r .dead "$work/out")
        st[$tag/n/base]=$(jq -r '."live-base"' "$work/out"); st[$tag/n/leaf]=$(jq -r '."live-leaf"' "$work/out")
        ln -s "${st[$tag/n/live]}" "$x/var/gcroots/live"
        in_nix "$x" nix-store -qR "${st[$tag/n/live]}" | sort > "$work/$tag-nix-live"
        expect "gen-$tag" "CppNix live closure" "$(count "$work/$tag-nix-live")" "$m"
        in_nix "$x" nix-store --gc --print-dead 2> /dev/null | sort > "$work/$tag-nix-dead"
        expect "gen-$tag" "CppNix dead paths" "$(count "$work/$tag-nix-dead")" "$m"
        expect "gen-$tag" "CppNix dead paths in the live closure" "$(comm -12 "$work/$tag-nix-live" "$work/$tag-nix-dead" | wc -l)" 0
        expect "gen-$tag" "CppNix paths on disk" "$(find "$x/store" -mindepth 1 -maxdepth 1 -not -name '.*' | wc -l)" "$n"
    fi
}
# A query row: q_id, q_tag, q_expect (lines of output), q_kiln and q_nix (command words, with
# LIVE, BASE or LEAF standing for that path of the store).
q_id="" q_tag="" q_expect=0
q_kiln=() q_nix=()
subst() { # k|n words...: the words with LIVE, BASE and LEAF replaced
    local t=$1 w; shift
    for w in "$@"; do
        case $w in
            LIVE) echo "${st[$q_tag/$t/live]:-}" ;;
            BASE) echo "${st[$q_tag/$t/base]:-}" ;;
            LEAF) echo "${st[$q_tag/$t/leaf]:-}" ;;
            *) echo "$w" ;;
        esac
    done
}
query_kiln() {
    local words; mapfile -t words < <(subst k "${q_kiln[@]}")
    timed "$q_id" kiln "$kiln" --store "$work/kiln-$q_tag" "${words[@]}" &&
        { [ "$q_expect" = - ] || expect "$q_id" "kiln lines" "$(count "$work/out")" "$q_expect"; }
    return 0
}
query_nix() {
    local words; mapfile -t words < <(subst n "${q_nix[@]}")
    nix_env "$work/nix-$q_tag"
    timed "$q_id" nix "${NE[@]}" "${words[@]}" &&
        { [ "$q_expect" = - ] || expect "$q_id" "CppNix lines" "$(count "$work/out")" "$q_expect"; }
    return 0
}
query_row() { # id tag label expected-lines kiln-words... -- nix-words...
    q_id=$1; q_tag=$2; q_expect=$4
    local label=$3; shift 4
    q_kiln=(); while [ "$1" != -- ]; do q_kiln+=("$1"); shift; done; shift
    q_nix=("$@")
    new_row "$q_id" store "$label"
    [ -n "${st[$q_tag/k/live]:-}" ] || { mismatch "$q_id" "no store generated"; return 0; }
    repeat "$runs" "$build_limit" query_kiln query_nix "$q_id"
}
gc_kiln() {
    local k=$work/kiln-$q_tag
    rmtree "$k"; cp -a "$k.orig" "$k"; sync
    timed "$q_id" kiln "$kiln" --store "$k" store gc || return 0
    expect "$q_id" "kiln paths on disk after gc" "$(find "$k/store" -mindepth 1 -maxdepth 1 -not -name '.*' | wc -l)" "$q_expect"
    expect "$q_id" "kiln live closure after gc" \
        "$("$kiln" --store "$k" store closure "${st[$q_tag/k/live]}" | sort | comm -12 - "$work/$q_tag-kiln-live" | wc -l)" "$q_expect"
}
gc_nix() {
    local x=$work/nix-$q_tag
    rmtree "$x"; cp -a "$x.orig" "$x"; sync
    nix_env "$x"
    timed "$q_id" nix "${NE[@]}" nix-store --gc || return 0
    expect "$q_id" "CppNix paths on disk after gc" "$(find "$x/store" -mindepth 1 -maxdepth 1 -not -name '.*' | wc -l)" "$q_expect"
    expect "$q_id" "CppNix live paths invalid after gc" \
        "$(xargs -a "$work/$q_tag-nix-live" env NIX_STORE_DIR="$x/store" NIX_STATE_DIR="$x/var" NIX_CONF_DIR="$x/conf" \
            nix-store --check-validity --print-invalid | wc -l)" 0
}
group_store() {
    local n=$store_n m=$((store_n / 2)) s=$small_store_n
    log "== store: stores of $n and $s files; queries $runs runs, gc $build_runs"
    store_make big "$n"
    store_make small "$s"
    query_row "closure-small" small "closure of $((s / 2)) paths" "$((s / 2))" store closure LIVE -- nix-store -qR LIVE
    query_row "referrers-small" small "referrers of a path, $((s / 2 - 1)) of them" "$((s / 2 - 1))" store referrers BASE -- nix-store -q --referrers BASE
    query_row "closure-big" big "closure of $m paths" "$m" store closure LIVE -- nix-store -qR LIVE
    query_row "referrers-big" big "referrers of a path, $((m - 1)) of them" "$((m - 1))" store referrers BASE -- nix-store -q --referrers BASE
    query_row "referrers-one" big "referrers of a tree leaf (a few)" - store referrers LEAF -- nix-store -q --referrers LEAF
    # CppNix 2.8 has no closure size without the experimental `nix path-info -S`: its row asks
    # for the closure, then for the size of each path in it (two processes in a shell pipeline).
    # shellcheck disable=SC2016 # $1 is expanded by that shell
    query_row "size-big" big "closure size of $m paths (kiln store info --json; CppNix -qR, then -q --size)" - \
        store info --json LIVE -- sh -c 'nix-store -qR "$1" | xargs nix-store -q --size' - LIVE
    # Garbage collection deletes: each run starts from a copy of the generated store.
    q_id=gc-big; q_tag=big; q_expect=$m
    new_row gc-big store "garbage collection of $m dead paths (of $n)"
    if [ -n "${st[big/k/live]:-}" ]; then
        cp -a "$work/kiln-big" "$work/kiln-big.orig"
        if $have_nix && [ -n "${st[big/n/live]:-}" ]; then
            cp -a "$work/nix-big" "$work/nix-big.orig"
            repeat "$build_runs" "$build_limit" gc_kiln gc_nix gc-big
        else
            repeat "$build_runs" "$build_limit" gc_kiln - gc-big
        fi
    fi
}

# ---------------------------------------------------------------------------------------------
started=$(date +%s)
load=$(cut -d ' ' -f 1-3 /proc/loadavg)
log "kiln: $kiln; CppNix: $nix_version; groups: ${groups[*]}; work folder $work"
for g in "${groups[@]}"; do "group_$g"; done
took=$(($(date +%s) - started))

# The table, one per group, with the geometric means of the ratios.
declare -A geo_t geo_m
table() { # group
    local g=$1 id kt nt km nm rt rmem n nn tl ml
    echo
    echo "### $g"
    echo
    echo "| workload | runs | kiln s | CppNix s | time kiln/CppNix | kiln MiB | CppNix MiB | memory kiln/CppNix | notes |"
    echo "|---|---|---|---|---|---|---|---|---|"
    tl="" ml=""
    for id in "${rows[@]}"; do
        [ "${row_group[$id]}" = "$g" ] || continue
        kt=$(stat_of "$id" kiln t); nt=$(stat_of "$id" nix t)
        km=$(stat_of "$id" kiln m); nm=$(stat_of "$id" nix m)
        rt=$(ratio "$kt" "$nt" || true); rmem=$(ratio "$km" "$nm" || true)
        n=$(stat_of "$id" kiln n); nn=$(stat_of "$id" nix n); [ "$nn" -gt "$n" ] && n=$nn
        if [ -z "${failed[$id/kiln]:-}" ] && [ -z "${failed[$id/nix]:-}" ]; then
            [ -n "$rt" ] && tl+="$rt "
            [ -n "$rmem" ] && ml+="$rmem "
        fi
        printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "${row_label[$id]}" "$n" \
            "${kt:+$(num "$kt" 3)}" "${nt:+$(num "$nt" 3)}" "$rt" "${km:+$(num "$km" 1)}" "${nm:+$(num "$nm" 1)}" "$rmem" \
            "${row_note[$id]}"
    done
    geo_t[$g]=$(printf '%s\n' "$tl" | awk '{ for (i = 1; i <= NF; i++) { s += log($i); k++ } } END { if (k) printf "%.2f", exp(s / k) }')
    geo_m[$g]=$(printf '%s\n' "$ml" | awk '{ for (i = 1; i <= NF; i++) { s += log($i); k++ } } END { if (k) printf "%.2f", exp(s / k) }')
    printf '| **geometric mean of the ratios** | | | | **%s** | | | **%s** | rows where a tool failed left out |\n' \
        "${geo_t[$g]:-–}" "${geo_m[$g]:-–}"
    return 0
}
# What the issue's targets say, with the numbers of this run.
t() { stat_of "$1" "$2" t; }
line() { echo "- $*"; }
verdict() { # value op limit (op: <, <= or >=): met / not met
    if awk -v a="$1" -v b="$3" -v op="$2" 'BEGIN { exit !(op == "<" ? a < b : op == "<=" ? a <= b : a >= b) }'; then
        echo "met"
    else
        echo "**not met**"
    fi
}
targets() {
    echo
    echo "### Targets of issue 7"
    echo
    local g n1 n2 a b r
    for g in "${groups[@]}"; do
        case $g in
            eval)
                [ -n "${geo_t[eval]}" ] && line "evaluation, geometric mean of time ${geo_t[eval]} (target at most 0.5: $(verdict "${geo_t[eval]}" "<=" 0.5)), of memory ${geo_m[eval]} (at most 0.5: $(verdict "${geo_m[eval]}" "<=" 0.5))"
                local slow=() id
                for id in "${rows[@]}"; do
                    [ "${row_group[$id]}" = eval ] || continue
                    r=$(ratio "$(t "$id" kiln)" "$(t "$id" nix)" || true)
                    if [ -n "${failed[$id/kiln]:-}" ]; then slow+=("${row_label[$id]} (kiln failed)")
                    elif [ -n "$r" ] && awk -v r="$r" 'BEGIN { exit !(r > 1) }'; then slow+=("${row_label[$id]} ($r)"); fi
                done
                if [ ${#slow[@]} -gt 0 ]; then line "evaluation workloads slower than CppNix (target: none): $(printf '%s; ' "${slow[@]}" | sed 's/; $//')"
                elif $have_nix; then line "evaluation workloads slower than CppNix: none (target: none)"; fi
                [ -n "$recursion_note" ] && line "$recursion_note"
                ;;
            build)
                n1=${graph_sizes[0]}; n2=${graph_sizes[1]}
                a=$(t "cold-$n1" kiln); b=$(t "cold-$n2" kiln)
                [ -n "$a" ] && line "kiln cold build: $(num "$(awk -v a="$a" -v n="$n1" 'BEGIN { print a * 1000 / n }')" 2) ms per derivation at $n1${b:+, $(num "$(awk -v a="$b" -v n="$n2" 'BEGIN { print a * 1000 / n }')" 2) ms at $n2}"
                a=$(t "cold-$n1" nix); b=$(t "cold-$n2" nix)
                [ -n "$a" ] && line "CppNix cold build: $(num "$(awk -v a="$a" -v n="$n1" 'BEGIN { print a * 1000 / n }')" 2) ms per derivation at $n1${b:+, $(num "$(awk -v a="$b" -v n="$n2" 'BEGIN { print a * 1000 / n }')" 2) ms at $n2}"
                r=$(ratio "$(t "cold-$n1" kiln)" "$(t "cold-$n1" nix)" || true)
                [ -n "$r" ] && line "cold build of $n1, kiln/CppNix $r (target at most 0.3: $(verdict "$r" "<=" 0.3))"
                r=$(ratio "$(t "inst-$n1" kiln)" "$(t "inst-$n1" nix)" || true)
                [ -n "$r" ] && line "instantiation of $n1, kiln/CppNix $r (target at most 0.3: $(verdict "$r" "<=" 0.3))"
                a=$(t "noop-$n1" kiln)
                [ -n "$a" ] && line "no-op build of $n1: kiln $(num "$(awk -v a="$a" 'BEGIN { print a * 1000 }')" 0) ms (target at most 20 ms for 1,000: $(verdict "$a" "<=" 0.020))"
                r=$(ratio "$(t "cold-$n2" kiln)" "$(t "cold-$n1" kiln)" || true)
                [ -n "$r" ] && line "scaling: kiln's cold build of $n2 costs $r times its $n1 (target at most 5.5: $(verdict "$r" "<=" 5.5))$( r2=$(ratio "$(t "cold-$n2" nix)" "$(t "cold-$n1" nix)" || true); [ -n "$r2" ] && echo "; CppNix's $r2 times")"
                r=$(ratio "$(t "flat-$((2 * flat_n))-j1" kiln)" "$(t "flat-$flat_n-j1" kiln)" || true)
                [ -n "$r" ] && line "scaling: kiln's flat graph of $((2 * flat_n)) costs $r times its $flat_n (target at most 2: $(verdict "$r" "<=" 2))$( r2=$(ratio "$(t "flat-$((2 * flat_n))-j1" nix)" "$(t "flat-$flat_n-j1" nix)" || true); [ -n "$r2" ] && echo "; CppNix's $r2 times")"
                local w
                for w in "wide CPU-bound:wide" "flat trivial:flat-$flat_n"; do
                    r=$(ratio "$(t "${w#*:}-j1" kiln)" "$(t "${w#*:}-j2" kiln)" || true)
                    [ -n "$r" ] && line "-j2 speedup over -j1, ${w%%:*} graph: kiln ${r}x (target at least 1.9: $(verdict "$r" ">=" 1.9))$( r2=$(ratio "$(t "${w#*:}-j1" nix)" "$(t "${w#*:}-j2" nix)" || true); [ -n "$r2" ] && echo ", CppNix ${r2}x")"
                done
                ;;
            store)
                for id in closure-small referrers-small; do
                    a=$(t "$id" kiln)
                    [ -n "$a" ] && line "${row_label[$id]}: kiln $(num "$(awk -v a="$a" 'BEGIN { print a * 1000 }')" 1) ms, process start included (target under 10 ms: $(verdict "$a" "<" 0.010))"
                done
                r=$(ratio "$(t gc-big kiln)" "$(t gc-big nix)" || true)
                [ -n "$r" ] && line "garbage collection kiln/CppNix $r (target at most 0.2: $(verdict "$r" "<=" 0.2))"
                ;;
        esac
    done
    return 0
}
{
    echo "## Benchmark results"
    echo
    echo "Run of \`bench/run.sh$($quick && echo ' --quick') ${groups[*]}\` on $(date -u +%Y-%m-%d), $(nproc) cores ($(grep -m 1 'model name' /proc/cpuinfo | cut -d : -f 2 | sed 's/^ //'), load average $load at the start), in $took s."
    echo "kiln binary \`$kiln\` (built $(date -u -r "$kiln" '+%Y-%m-%d %H:%M UTC')), repository at $(git -C "$root" rev-parse --short HEAD 2> /dev/null || echo '?'); CppNix $nix_version."
    echo "Medians of up to $runs runs (evaluation, store queries) and $build_runs (builds, gc), kiln and CppNix alternating; wall time from the clock, peak memory from GNU time (largest process)."
    for g in "${groups[@]}"; do table "$g"; done
    targets
} > "$work/results.md"
cp "$work/results.md" bench/results.md
echo
cat "$work/results.md"
