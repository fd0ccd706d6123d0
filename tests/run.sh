#!/usr/bin/env bash
# The whole test suite: Rust unit and integration tests (incl. the header drift check and the
# repository's stand-alone check), the unsafe-code lint, the trainer's tests (tch), the C ABI tests
# under valgrind and AddressSanitizer, a short run of every fuzz target (tests/fuzz), the Python
# parity tests against transformers / diffusers / open_clip / onnxruntime, and the Python binding.
# Installs what it needs on first use (system packages through apt-get when run as root; the
# Python reference virtualenv and ONNX Runtime through tests/env.sh, cached under
# ~/.cache/promptist; cargo-fuzz through cargo install). Every stage runs; the last line is the
# total, `N passed, N failed, N skipped`, and the exit status is non-zero when anything failed.
# A test that cannot run here (no AVX-512F, no CUDA, opt-in real-size checks) counts as skipped,
# with its reason listed, never as passed.
set -uo pipefail
cd "$(dirname "$0")/.."

# System tools: valgrind (C tests), a C compiler, git (the repository check), strace (the
# no-network check), Python's venv module.
need=()
command -v valgrind >/dev/null || need+=(valgrind)
command -v cc >/dev/null || need+=(gcc)
command -v git >/dev/null || need+=(git)
command -v strace >/dev/null || need+=(strace)
python3 -c 'import venv, ensurepip' 2>/dev/null || need+=(python3-venv)
if [ ${#need[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "[run] installing ${need[*]} (apt-get)"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null \
            || { echo "[run] apt-get install ${need[*]} failed" >&2; exit 1; }
    else
        echo "[run] missing system packages; install them first: sudo apt-get install ${need[*]}" >&2
        exit 1
    fi
fi

source tests/env.sh || { echo "[run] tests/env.sh failed (see above)" >&2; exit 1; }
echo "[run] ORT_DYLIB_PATH=$ORT_DYLIB_PATH"
echo "[run] python: $PROMPTIST_PYTHON"
log="$(mktemp -d)"
export PROMPTIST_SKIP_LOG="$log/skips"
: > "$PROMPTIST_SKIP_LOG"
start=$(date +%s)
failed_stages=()
stage() { echo "[run] $(( $(date +%s) - start ))s: $*"; }
# run NAME CMD...: run a stage, keep its output for the summary, record a failure and go on.
run() {
    local name="$1"; shift
    stage "$name"
    "$@" 2>&1 | tee "$log/$(echo "$name" | tr -c 'a-zA-Z0-9' _).out"
    local rc=${PIPESTATUS[0]}
    [ "$rc" = 0 ] || { failed_stages+=("$name (exit $rc)"); echo "[run] FAILED: $name (exit $rc)"; }
}
# The trainer's tests, with torch's lib/ on the loader path for them alone.
trainer_tests() { LD_LIBRARY_PATH="$PROMPTIST_TORCH_LIB${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" cargo test -p promptist-train --no-fail-fast -- --test-threads 1; }

# Each cargo call names the same package selection as the test call that follows it, so features
# unify the same way and nothing is compiled twice.
run "build (debug: tests; release: the CLI and library the parity tests drive)" \
    bash -c 'cargo build -p promptist --all-targets && cargo build --release -p promptist --lib --bins'
export PROMPTIST_BIN="$PWD/target/release/promptist"
export PROMPTIST_LIBRARY="$PWD/target/release/libpromptist.so"
run "Rust tests: library" cargo test -p promptist --no-fail-fast
run "lint: every unsafe block has a SAFETY comment" \
    cargo clippy -p promptist --all-targets --no-deps -- -A clippy::all -D clippy::undocumented_unsafe_blocks
run "Rust tests: trainer (one thread: tch tests share the process's torch state)" trainer_tests
run "C tests under valgrind and AddressSanitizer (errors, score, threads, no network)" \
    bash -c 'bash tests/c/run.sh && bash tests/c/run_score.sh && bash tests/c/run_threads.sh && bash tests/c/run_no_network.sh'
run "fuzz smoke (cargo fuzz: libFuzzer + AddressSanitizer, 20 s per target)" bash tests/fuzz/run.sh 20
run "Python parity tests and binding" "$PROMPTIST_PYTHON" -m pytest -q -rs -p no:cacheprovider tests/python bindings/python
stage "done"

# Totals: cargo's "test result" lines, pytest's last line, the C scripts' PASS lines; tests that
# reported a runtime skip (PROMPTIST_SKIP_LOG) passed in their runner's count and move to skipped.
python3 - "$log" <<'PY'
import pathlib, re, sys
log = pathlib.Path(sys.argv[1])
passed = failed = skipped = 0
reasons = []
for out in sorted(log.glob("*.out")):
    text = out.read_text(errors="replace")
    for p, f, i in re.findall(r"test result: \w+\. (\d+) passed; (\d+) failed; (\d+) ignored", text):
        passed, failed, skipped = passed + int(p), failed + int(f), skipped + int(i)
    reasons += [f"{name}: {why or 'ignored'}" for name, why in re.findall(r"^test (.+?) \.\.\. ignored(?:, (.*))?$", text, re.M)]
    for line in text.splitlines():
        if re.match(r"^=*\s*(\d+ \w+(, )?)+.* in [\d.]+s", line) and ("passed" in line or "failed" in line):
            for n, kind in re.findall(r"(\d+) (passed|failed|skipped|error|errors)", line):
                if kind == "passed": passed += int(n)
                elif kind == "skipped": skipped += int(n)
                else: failed += int(n)
    reasons += [f"pytest {m}" for m in re.findall(r"^SKIPPED \[\d+\] (.*)$", text, re.M)]
    passed += len(re.findall(r"^tests/(?:c|fuzz)/\S+: PASS", text, re.M))
    failed += len(re.findall(r"^tests/(?:c|fuzz)/\S+: FAIL", text, re.M))
    for name, why in re.findall(r"^(tests/(?:c|fuzz)/\S+): SKIPPED \((.*)\)$", text, re.M):
        skipped += 1
        reasons.append(f"{name}: {why}")
runtime = [l for l in (log / "skips").read_text().splitlines() if l.strip()]
passed -= len(runtime)
skipped += len(runtime)
reasons += runtime
if reasons:
    print(f"[run] skipped ({len(reasons)}):")
    for r in reasons:
        print(f"[run]   {r}")
(log / "totals").write_text(f"{passed} {failed} {skipped}")
PY
read -r passed failed skipped < "$log/totals"
if [ ${#failed_stages[@]} -gt 0 ]; then
    printf '[run] failed stage: %s\n' "${failed_stages[@]}"
    [ "$failed" -gt 0 ] || failed=${#failed_stages[@]}
fi
rm -rf "$log"
echo "run: $passed passed, $failed failed, $skipped skipped"
[ ${#failed_stages[@]} -eq 0 ]
