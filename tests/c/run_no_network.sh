#!/usr/bin/env bash
# The library never opens a network connection: the C example (optimize) and the score test run
# under strace tracing every network system call (socket, connect, bind, send*, ...) of every
# thread, and the trace must be empty; a positive control (Python opening one socket) proves the
# trace sees such calls. Then the example runs in a new, empty network namespace (unshare -n),
# where no connection could succeed, and must still work.
# Usage: tests/c/run_no_network.sh   Env: ORT_DYLIB_PATH (required). Needs strace (apt-get install strace).
source "$(dirname "$0")/common.sh"
command -v strace >/dev/null || fail "strace not installed (apt-get install strace)"
tiny_policy
tiny_score
cc "${cflags[@]}" examples/c/optimize.c -o "$work/optimize" "${ldflags[@]}"
cc "${cflags[@]}" tests/c/test_score.c -o "$work/test_score" "${ldflags[@]}"

trace() { strace -f -qq -e trace=%network -o "$1" "${@:2}"; }
# Positive control: the trace records a socket when one is opened.
trace "$work/control.trace" python3 -c 'import socket; socket.socket(socket.AF_INET, socket.SOCK_STREAM).close()'
grep -q "socket(AF_INET" "$work/control.trace" || { cat "$work/control.trace" >&2; fail "the control's socket was not traced"; }

trace "$work/optimize.trace" "$work/optimize" "$work/score" "a red fox in the snow" 8 > /dev/null 2> "$work/optimize.err" \
    || { cat "$work/optimize.err" >&2; fail "optimize under strace"; }
trace "$work/score.trace" "$work/test_score" "$work/score" "$work/policy_only" > /dev/null 2> "$work/score.err" \
    || { cat "$work/score.err" >&2; fail "test_score under strace"; }
for t in optimize score; do
    [ ! -s "$work/$t.trace" ] || { cat "$work/$t.trace" >&2; fail "$t made network system calls"; }
done
echo "tests/c/no_network_syscalls: PASS (optimize and score traced by strace: none; control traced)"

if unshare -n true 2>/dev/null; then
    unshare -n "$work/optimize" "$work/score" "a red fox in the snow" 8 > /dev/null 2> "$work/netns.err" \
        || { cat "$work/netns.err" >&2; fail "optimize in an empty network namespace"; }
    echo "tests/c/no_network_namespace: PASS (optimize in an empty network namespace)"
else
    # Counted as skipped by tests/run.sh (never as passed).
    echo "tests/c/no_network_namespace: SKIPPED (unshare -n is not permitted here; needs root)"
fi
