#!/usr/bin/env bash
# Compile tests/c/test_threads.c (one engine shared by many threads mixing optimize and score,
# cancel from another thread, engines opened and freed concurrently) against include/promptist.h
# and the cdylib, and run it three ways:
#   natively and under gcc's AddressSanitizer (+ LeakSanitizer at exit): 16 threads x 200 calls;
#   under valgrind (--leak-check=full, tests/c/valgrind.supp): 16 threads x 2 calls and 4 engine
#   openers instead of 8, since valgrind runs one thread at a time and is some 50x slower.
# Any wrong result, memory error or leak fails. Usage: tests/c/run_threads.sh
# Env: ORT_DYLIB_PATH (required), PROMPTIST_C_NO_VALGRIND=1 (skip the valgrind run: quick check)
source "$(dirname "$0")/common.sh"
need_valgrind
tiny_policy
tiny_score
cc "${cflags[@]}" -pthread tests/c/test_threads.c -o "$work/test_threads" "${ldflags[@]}"
cc "${cflags[@]}" -pthread -fsanitize=address -fno-omit-frame-pointer tests/c/test_threads.c -o "$work/test_threads-asan" "${ldflags[@]}"

"$work/test_threads" "$work/score" 16 200 8 > "$work/stdout" || fail "test_threads (native, 16 x 200)"
[ ! -s "$work/stdout" ] || { cat "$work/stdout" >&2; fail "the library wrote to stdout"; }
echo "tests/c/test_threads: PASS (native, 16 threads x 200 calls)"

ASAN_OPTIONS=detect_leaks=1:exitcode=23 "$work/test_threads-asan" "$work/score" 16 200 8 > "$work/stdout.asan" 2> "$work/asan.log" \
    || { tail -n 60 "$work/asan.log" >&2; fail "test_threads under AddressSanitizer"; }
! grep -q "ERROR: \(Address\|Leak\)Sanitizer" "$work/asan.log" || { cat "$work/asan.log" >&2; fail "test_threads: sanitizer report"; }
echo "tests/c/test_threads: PASS (AddressSanitizer + LeakSanitizer, 16 threads x 200 calls)"

if [ -z "${PROMPTIST_C_NO_VALGRIND:-}" ]; then
    valgrind_run test_threads "$work/test_threads" "$work/score" 16 2 4 > "$work/stdout.vg"
    echo "tests/c/test_threads: PASS (valgrind, 16 threads x 2 calls, 4 openers)"
fi
