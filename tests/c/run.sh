#!/usr/bin/env bash
# Compile the C example (examples/c/optimize.c) and the C error-path test (examples/c/test_errors.c)
# against include/promptist.h and the cdylib, then run both under valgrind
# (--leak-check=full --error-exitcode=1) and, built again with gcc's AddressSanitizer, under
# ASan + LeakSanitizer: the run fails on any memory error or leak.
#
# Usage: tests/c/run.sh            (from anywhere; builds with cargo first)
# Env:   ORT_DYLIB_PATH            ONNX Runtime library (required; the tests fail without it)
#        PROMPTIST_BIN             the CLI used to make the tiny bundle (default target/debug/promptist)
#        PROMPTIST_C_NO_VALGRIND=1 run without valgrind (quick check)
# Suppressions: tests/c/valgrind.supp covers ONNX Runtime's own code and globals, a glibc dlopen
# false positive, and "possibly lost" interior pointers into the tokenizers crate's process-lifetime
# statics (each entry says why); none can match promptist's objects, which a negative control
# (tests/c/leak_control.c, leaks on purpose) proves: valgrind must fail on it.
source "$(dirname "$0")/common.sh"
need_valgrind

# A tiny random bundle, plus one copy with a file missing and one with a corrupt file.
tiny_policy
cp -r "$work/policy_only" "$work/missing"
cp -r "$work/policy_only" "$work/corrupt"
rm "$work/missing/policy/tokenizer.json"
python3 - "$work/corrupt/policy/model.onnx_data" <<'PY'
import sys
p = sys.argv[1]
b = bytearray(open(p, "rb").read())
b[len(b) // 2] ^= 0x01  # same size, different bytes: only the sha256 can tell
open(p, "wb").write(bytes(b))
PY

cc "${cflags[@]}" examples/c/test_errors.c -o "$work/test_errors" "${ldflags[@]}"
cc "${cflags[@]}" examples/c/optimize.c -o "$work/optimize" "${ldflags[@]}"
cc "${cflags[@]}" tests/c/leak_control.c -o "$work/leak_control" "${ldflags[@]}"
# The header also compiles as C++.
if command -v c++ >/dev/null; then
    echo '#include "promptist.h"
int main() { return promptist_abi_version() == PROMPTIST_ABI_VERSION ? 0 : 1; }' > "$work/h.cpp"
    c++ -std=c++17 -Wall -Werror -I"$root/include" "$work/h.cpp" -o "$work/h_cpp" "${ldflags[@]}"
    "$work/h_cpp"
fi

run() {
    local name="$1"; shift
    if [ -n "${PROMPTIST_C_NO_VALGRIND:-}" ]; then
        "$@"
    else
        valgrind_run "$name" "$@"
    fi
}

# test_errors prints only to stderr, so anything on its stdout came from the library, which must
# never write to stdout.
run test_errors "$work/test_errors" "$work/policy_only" "$work/missing" "$work/corrupt" > "$work/test_errors.stdout"
[ ! -s "$work/test_errors.stdout" ] || { cat "$work/test_errors.stdout" >&2; fail "the library wrote to stdout"; }
run optimize "$work/optimize" "$work/policy_only" "a red fox in the snow" 8
if [ -z "${PROMPTIST_C_NO_VALGRIND:-}" ]; then
    # Negative control: deliberate leaks of promptist objects must make valgrind fail.
    if valgrind --leak-check=full --error-exitcode=1 --suppressions="$root/tests/c/valgrind.supp" \
        --log-file="$work/leak_control.valgrind" "$work/leak_control" "$work/policy_only"; then
        cat "$work/leak_control.valgrind" >&2
        fail "valgrind did not catch the deliberate leaks of tests/c/leak_control.c"
    fi
    grep -q "definitely lost: [1-9]" "$work/leak_control.valgrind" || fail "leak control: no definitely-lost blocks reported"
    echo "[leak_control] valgrind caught the deliberate leaks: $(grep -o 'definitely lost: .*' "$work/leak_control.valgrind")"
fi
# AddressSanitizer (gcc's, with LeakSanitizer at exit): the same programs instrumented, run
# without any suppression; the library's allocations go through the intercepted malloc, so a leak
# of promptist's objects shows. The leak control must fail here too.
asan=(-fsanitize=address -fno-omit-frame-pointer)
for prog in examples/c/test_errors.c examples/c/optimize.c tests/c/leak_control.c; do
    cc "${cflags[@]}" "${asan[@]}" "$prog" -o "$work/$(basename "$prog" .c)-asan" "${ldflags[@]}"
done
run_asan() {
    local name="$1"; shift
    ASAN_OPTIONS=detect_leaks=1:exitcode=23 "$@" > "$work/$name.asan.stdout" 2> "$work/$name.asan" \
        || { cat "$work/$name.asan" >&2; fail "$name under AddressSanitizer"; }
    grep -q "ERROR: \(Address\|Leak\)Sanitizer" "$work/$name.asan" && { cat "$work/$name.asan" >&2; fail "$name: sanitizer report"; }
    echo "[$name] AddressSanitizer + LeakSanitizer: 0 errors, 0 leaks"
}
run_asan test_errors "$work/test_errors-asan" "$work/policy_only" "$work/missing" "$work/corrupt"
[ ! -s "$work/test_errors.asan.stdout" ] || { cat "$work/test_errors.asan.stdout" >&2; fail "the library wrote to stdout"; }
run_asan optimize "$work/optimize-asan" "$work/policy_only" "a red fox in the snow" 8
if ASAN_OPTIONS=detect_leaks=1:exitcode=23 "$work/leak_control-asan" "$work/policy_only" 2> "$work/leak_control.asan"; then
    fail "LeakSanitizer did not catch the deliberate leaks of tests/c/leak_control.c"
fi
grep -q "Direct leak" "$work/leak_control.asan" && grep -q "promptist" "$work/leak_control.asan" \
    || { cat "$work/leak_control.asan" >&2; fail "leak control: no direct leak of promptist objects reported"; }
echo "[leak_control] LeakSanitizer caught the deliberate leaks: $(grep -c 'Direct leak' "$work/leak_control.asan") direct leaks"
if [ -n "${PROMPTIST_C_NO_VALGRIND:-}" ]; then echo "tests/c/run.sh: PASS (AddressSanitizer; without valgrind)"; else echo "tests/c/run.sh: PASS (C error test and C example under valgrind and AddressSanitizer: 0 errors, 0 leaks)"; fi
