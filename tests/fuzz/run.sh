#!/usr/bin/env bash
# Build the fuzz targets with cargo fuzz (libFuzzer + AddressSanitizer) and run each one for a
# short while from the committed seed corpus (tests/fuzz/corpus/<target>). Any crash, panic,
# abort, leak, timeout or out-of-memory fails the run; libFuzzer leaves the input in
# tests/fuzz/artifacts/<target>/.
#
# Usage: tests/fuzz/run.sh [SECONDS_PER_TARGET] [TARGET...]     (default 20 s, all targets)
# Env:   ORT_DYLIB_PATH (required: the bundle_files and capi targets run ONNX Runtime)
#        PROMPTIST_FUZZ_WORK  folder for the growing corpus and the tiny bundle
#                             (default tests/fuzz/target/work; kept between runs)
# cargo fuzz needs sanitizer flags that stable rustc accepts only with RUSTC_BOOTSTRAP=1; this
# machine's toolchain is stable-only, so the script sets it for the fuzz build alone.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
fail() { echo "tests/fuzz/run.sh: FAIL: $*" >&2; exit 1; }
secs="${1:-20}"
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(tokenizers manifest weights bundle_files capi)
[ -n "${ORT_DYLIB_PATH:-}" ] && [ -f "$ORT_DYLIB_PATH" ] || fail "ORT_DYLIB_PATH must name the ONNX Runtime library (tests/fetch-ort.sh prints it)"
if ! command -v cargo-fuzz >/dev/null; then
    echo "installing cargo-fuzz (crates.io)" >&2
    cargo install cargo-fuzz --locked --version 0.13.2 >&2
fi
work="${PROMPTIST_FUZZ_WORK:-$here/target/work}"
mkdir -p "$work"

# The template bundle: the same tiny random bundle the C tests use, with score components.
(cd "$root" && cargo build --quiet --bin promptist)
bundle="$work/bundle"
if [ ! -f "$bundle/promptist.json" ]; then
    rm -rf "$work/checkpoint" "$bundle"
    "$root/target/debug/promptist" make-tiny --out "$work/checkpoint" --seed 3 2>/dev/null
    "$root/target/debug/promptist" convert --checkpoint "$work/checkpoint" --out "$bundle" 2>/dev/null
    "$root/target/debug/promptist" add-score --bundle "$bundle" --tiny 2>/dev/null
fi
export PROMPTIST_FUZZ_BUNDLE="$bundle"

cd "$here"
RUSTC_BOOTSTRAP=1 cargo fuzz build -O --fuzz-dir "$here" > "$work/build.log" 2>&1 || { tail -n 40 "$work/build.log" >&2; fail "cargo fuzz build"; }
triple="$(rustc -vV | sed -n 's/^host: //p')"
bin_dir="$here/target/$triple/release"
for t in "${targets[@]}"; do
    [ -x "$bin_dir/$t" ] || fail "no fuzz target $t"
    mkdir -p "$work/corpus/$t" "$here/artifacts/$t"
    log="$work/$t.log"
    # New inputs go to the work corpus; the committed seeds are read only.
    if ! "$bin_dir/$t" "$work/corpus/$t" "$here/corpus/$t" -max_total_time="$secs" -timeout=30 -rss_limit_mb=4096 \
        -max_len=65536 -print_final_stats=1 -artifact_prefix="$here/artifacts/$t/" > "$log" 2>&1; then
        tail -n 60 "$log" >&2
        fail "fuzz target $t found a crash (input in tests/fuzz/artifacts/$t/)"
    fi
    runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)"
    cov="$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 | tr -dc 0-9)"
    echo "tests/fuzz/$t: PASS (${runs:-?} runs, ${cov:-?} coverage edges, 0 crashes in ${secs} s)"
done
