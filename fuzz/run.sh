#!/usr/bin/env bash
# Fuzzes every target of fuzz/Cargo.toml for a while each with cargo-fuzz (libFuzzer), on the
# stable toolchain without a sanitizer (`-s none`: Rust is memory-safe; what is looked for is
# panics, aborts, hangs and memory blow-ups). Starts from fuzz/seeds/TARGET/ and a working
# corpus in fuzz/corpus/TARGET/ (not kept in git). An input that fails its target is written to
# fuzz/regressions/TARGET/, where `cargo test` (tests/fuzz_regressions.rs) replays it from then
# on: fix the bug and commit the input. Prints one line per target and writes fuzz/figures.md.
#
#   fuzz/run.sh [SECONDS]   # seconds per target (default 60)
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:-60}
if ! command -v cargo-fuzz > /dev/null; then
    echo "installing cargo-fuzz" >&2
    cargo install --locked cargo-fuzz
fi
targets=$(sed -n 's/^name = "\(.*\)"$/\1/p' Cargo.toml | grep -v '^kiln-fuzz$')
rows=""
found=0
for t in $targets; do
    mkdir -p "corpus/$t" "regressions/$t"
    before=$(ls "regressions/$t" | wc -l)
    start=$(date +%s)
    # Each input gets 10 s and 2 GiB (the targets bound evaluation far below both).
    if cargo fuzz run -s none "$t" "corpus/$t" "seeds/$t" -- \
        -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
        -artifact_prefix="regressions/$t/" > "corpus/$t.log" 2>&1; then
        status=clean
    else
        status="FAILED (see fuzz/corpus/$t.log)"
        found=1
    fi
    ran=$(( $(date +%s) - start ))
    new=$(( $(ls "regressions/$t" | wc -l) - before ))
    runs=$(grep -o 'Done [0-9]* runs' "corpus/$t.log" | tail -1 | awk '{print $2}')
    echo "$t: $status, ${ran} s, ${runs:-?} inputs, $new new failing input(s)"
    rows+="| \`$t\` | $secs | ${runs:-?} | $status |"$'\n'
done
{
    echo "# Fuzzing figures"
    echo
    echo "Written by \`fuzz/run.sh $secs\` on $(date -u +%Y-%m-%d), $(nproc) cores; \`tests/fuzz_regressions.rs\`"
    echo "checks that every target is listed here and replays every kept input."
    echo
    echo "| target | seconds | inputs run | result |"
    echo "|---|---|---|---|"
    printf '%s' "$rows"
} > figures.md
exit $found
