#!/usr/bin/env bash
# Compile tests/c/test_score.c (the score C API: success with images, bad input, NOT_IN_BUNDLE,
# cancel mid-run) against include/promptist.h and the cdylib and run it under valgrind
# (--leak-check=full --error-exitcode=1, tests/c/valgrind.supp): any memory error or leak fails.
# Usage: tests/c/run_score.sh   Env: ORT_DYLIB_PATH (required), PROMPTIST_C_NO_VALGRIND=1 (quick run)
source "$(dirname "$0")/common.sh"
need_valgrind
tiny_policy
tiny_score
cc "${cflags[@]}" tests/c/test_score.c -o "$work/test_score" "${ldflags[@]}"
if [ -n "${PROMPTIST_C_NO_VALGRIND:-}" ]; then
    "$work/test_score" "$work/score" "$work/policy_only" > "$work/stdout"
else
    valgrind_run test_score "$work/test_score" "$work/score" "$work/policy_only" > "$work/stdout"
fi
[ ! -s "$work/stdout" ] || { cat "$work/stdout" >&2; fail "the library wrote to stdout"; }
# The same test built with gcc's AddressSanitizer, LeakSanitizer at exit, no suppressions.
cc "${cflags[@]}" -fsanitize=address -fno-omit-frame-pointer tests/c/test_score.c -o "$work/test_score-asan" "${ldflags[@]}"
ASAN_OPTIONS=detect_leaks=1:exitcode=23 "$work/test_score-asan" "$work/score" "$work/policy_only" > "$work/stdout.asan" 2> "$work/score.asan" \
    || { cat "$work/score.asan" >&2; fail "test_score under AddressSanitizer"; }
! grep -q "ERROR: \(Address\|Leak\)Sanitizer" "$work/score.asan" || { cat "$work/score.asan" >&2; fail "test_score: sanitizer report"; }
[ ! -s "$work/stdout.asan" ] || { cat "$work/stdout.asan" >&2; fail "the library wrote to stdout"; }
echo "[test_score] AddressSanitizer + LeakSanitizer: 0 errors, 0 leaks"
echo "tests/c/run_score.sh: PASS${PROMPTIST_C_NO_VALGRIND:+ (without valgrind)} (AddressSanitizer too)"
