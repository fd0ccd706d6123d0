#!/usr/bin/env bash
# Compile tests/c/test_score.c (the score C API: success with images, bad input, NOT_IN_BUNDLE,
# cancel mid-run) against include/promptist.h and the cdylib and run it under valgrind
# (--leak-check=full --error-exitcode=1, tests/c/valgrind.supp): any memory error or leak fails.
# Usage: tests/c/run_score.sh   Env: ORT_DYLIB_PATH (required), PROMPTIST_C_NO_VALGRIND=1 (quick run)
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
fail() { echo "tests/c/run_score.sh: FAIL: $*" >&2; exit 1; }
[ -n "${ORT_DYLIB_PATH:-}" ] && [ -f "$ORT_DYLIB_PATH" ] || fail "ORT_DYLIB_PATH must name the ONNX Runtime library"
if [ -z "${PROMPTIST_C_NO_VALGRIND:-}" ]; then command -v valgrind >/dev/null || fail "valgrind not installed"; fi
cargo build --quiet --lib --bin promptist
bin="$root/target/debug/promptist"
libdir="$root/target/debug"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
"$bin" make-tiny --out "$work/checkpoint" --seed 3 2>/dev/null
"$bin" convert --checkpoint "$work/checkpoint" --out "$work/policy_only" 2>/dev/null
cp -r "$work/policy_only" "$work/score"
"$bin" add-score --bundle "$work/score" --tiny 2>/dev/null
cc -std=c11 -Wall -Wextra -Werror -pedantic -g -I"$root/include" tests/c/test_score.c -o "$work/test_score" \
    -L"$libdir" -lpromptist -lm -Wl,-rpath,"$libdir"
if [ -n "${PROMPTIST_C_NO_VALGRIND:-}" ]; then
    "$work/test_score" "$work/score" "$work/policy_only" > "$work/stdout"
else
    valgrind --leak-check=full --show-leak-kinds=definite,indirect,possible --errors-for-leak-kinds=definite,indirect,possible \
        --error-exitcode=1 --suppressions="$root/tests/c/valgrind.supp" --log-file="$work/score.valgrind" \
        "$work/test_score" "$work/score" "$work/policy_only" > "$work/stdout" \
        || { cat "$work/score.valgrind" >&2; fail "test_score under valgrind"; }
    grep -E "ERROR SUMMARY|definitely lost|indirectly lost|possibly lost" "$work/score.valgrind" | sed "s/^==[0-9]*==/[test_score]/" >&2
fi
[ ! -s "$work/stdout" ] || { cat "$work/stdout" >&2; fail "the library wrote to stdout"; }
# The same test built with gcc's AddressSanitizer, LeakSanitizer at exit, no suppressions.
cc -std=c11 -Wall -Wextra -Werror -pedantic -g -fsanitize=address -fno-omit-frame-pointer -I"$root/include" \
    tests/c/test_score.c -o "$work/test_score-asan" -L"$libdir" -lpromptist -lm -Wl,-rpath,"$libdir"
ASAN_OPTIONS=detect_leaks=1:exitcode=23 "$work/test_score-asan" "$work/score" "$work/policy_only" > "$work/stdout.asan" 2> "$work/score.asan" \
    || { cat "$work/score.asan" >&2; fail "test_score under AddressSanitizer"; }
! grep -q "ERROR: \(Address\|Leak\)Sanitizer" "$work/score.asan" || { cat "$work/score.asan" >&2; fail "test_score: sanitizer report"; }
[ ! -s "$work/stdout.asan" ] || { cat "$work/stdout.asan" >&2; fail "the library wrote to stdout"; }
echo "[test_score] AddressSanitizer + LeakSanitizer: 0 errors, 0 leaks"
echo "tests/c/run_score.sh: PASS${PROMPTIST_C_NO_VALGRIND:+ (without valgrind)} (AddressSanitizer too)"
