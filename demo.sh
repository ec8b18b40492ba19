#!/usr/bin/env bash
# A walkthrough of kiln's store: add a folder, show what the store records, check the archive.
set -euo pipefail
cd "$(dirname "$0")"
kiln=./target/release/kiln
[ -x "$kiln" ] || kiln=./target/debug/kiln
export KILN_STORE=${KILN_STORE:-/tmp/kiln-demo}

path=$("$kiln" store add lang-spec)
echo "added lang-spec/ as $path"
"$kiln" store info "$path"
size=$("$kiln" store dump "$path" | wc -c)
echo "its NAR archive is $size bytes; the store holds $("$kiln" store closure "$path" | wc -l) path(s) in its closure"
