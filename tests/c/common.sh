# Shared set-up of the C test scripts (sourced, not run): the repository root as the working
# folder, fail() naming the script, ONNX Runtime and a C compiler required, the library and CLI
# built, a temporary folder $work removed at exit, the compile and link flags against
# include/promptist.h and the cdylib, and the tiny bundles the tests open.
# Env: ORT_DYLIB_PATH (required), PROMPTIST_BIN (the CLI that makes the bundles; default
#      target/debug/promptist), PROMPTIST_C_NO_VALGRIND=1 (need_valgrind does not require it).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
fail() { echo "tests/c/$(basename "$0"): FAIL: $*" >&2; exit 1; }
[ -n "${ORT_DYLIB_PATH:-}" ] && [ -f "$ORT_DYLIB_PATH" ] || fail "ORT_DYLIB_PATH must name the ONNX Runtime library (tests/fetch-ort.sh prints it)"
command -v cc >/dev/null || fail "no C compiler (cc)"
# need_valgrind: valgrind must be installed unless PROMPTIST_C_NO_VALGRIND is set.
need_valgrind() {
    if [ -z "${PROMPTIST_C_NO_VALGRIND:-}" ]; then command -v valgrind >/dev/null || fail "valgrind not installed (apt-get install valgrind)"; fi
}
cargo build --quiet --lib --bin promptist
bin="${PROMPTIST_BIN:-$root/target/debug/promptist}"
libdir="$root/target/debug"
[ -f "$libdir/libpromptist.so" ] || fail "no $libdir/libpromptist.so"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cflags=(-std=c11 -Wall -Wextra -Werror -pedantic -g -I"$root/include")
ldflags=(-L"$libdir" -lpromptist -lm -Wl,-rpath,"$libdir")
# tiny_policy: $work/policy_only, a seeded tiny random policy bundle.
tiny_policy() {
    "$bin" make-tiny --out "$work/checkpoint" --seed 3 2>/dev/null
    "$bin" convert --checkpoint "$work/checkpoint" --out "$work/policy_only" 2>/dev/null
    [ -f "$work/policy_only/promptist.json" ] || fail "make-tiny / convert wrote no bundle"
}
# tiny_score: $work/score, the tiny policy plus tiny random score components (after tiny_policy).
tiny_score() {
    cp -r "$work/policy_only" "$work/score"
    "$bin" add-score --bundle "$work/score" --tiny 2>/dev/null
}
# valgrind_run NAME CMD...: CMD under valgrind (full leak check, every leak kind an error,
# tests/c/valgrind.supp), its log in $work/NAME.valgrind, the summary on stderr; fails on any
# error or leak. The caller redirects CMD's stdout.
valgrind_run() {
    local name="$1"; shift
    valgrind --leak-check=full --show-leak-kinds=definite,indirect,possible --errors-for-leak-kinds=definite,indirect,possible \
        --error-exitcode=1 --suppressions="$root/tests/c/valgrind.supp" --log-file="$work/$name.valgrind" "$@" \
        || { cat "$work/$name.valgrind" >&2; fail "$name under valgrind"; }
    grep -E "ERROR SUMMARY|definitely lost|indirectly lost|possibly lost|suppressed:" "$work/$name.valgrind" | sed "s/^==[0-9]*==/[$name]/" >&2
}
