#!/usr/bin/env bash
# A long fuzz campaign: each target in turn for its share of the time, growing the work corpus
# (tests/fuzz/target/work/corpus/<target>, kept between campaigns), then a table of executions
# and coverage per target. Stops at the first crash (tests/fuzz/run.sh reports it).
#
# Usage: tests/fuzz/campaign.sh [MINUTES]   (default 120; split 40/20/15/15/10 % across weights,
#        tokenizers, manifest, capi, bundle_files: the fast targets get the time that buys most runs)
# Env:   as tests/fuzz/run.sh (ORT_DYLIB_PATH required).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
mins="${1:-120}"
declare -A share=([weights]=40 [tokenizers]=20 [manifest]=15 [capi]=15 [bundle_files]=10)
for t in weights tokenizers manifest capi bundle_files; do
    secs=$(( mins * 60 * ${share[$t]} / 100 ))
    echo "[campaign] $t for ${secs} s" >&2
    "$here/run.sh" "$secs" "$t"
done
echo "[campaign] done" >&2
