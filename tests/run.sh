#!/usr/bin/env bash
# The whole test suite: Rust unit and integration tests (incl. the header drift check), the trainer's
# tests (tch), the C ABI tests under valgrind, the Python parity tests against transformers /
# diffusers / open_clip / onnxruntime, and the Python binding. Installs what it needs on first use
# (tests/env.sh; cached under ~/.cache/promptist).
set -euo pipefail
cd "$(dirname "$0")/.."
source tests/env.sh
echo "[run] ORT_DYLIB_PATH=$ORT_DYLIB_PATH"
echo "[run] python: $PROMPTIST_PYTHON"
start=$(date +%s)
stage() { echo "[run] $(( $(date +%s) - start ))s: $*"; }

# Each cargo call names the same package selection as the test call that follows it, so features
# unify the same way and nothing is compiled twice.
stage "build (debug: tests; release: the CLI and library the parity tests drive)"
cargo build -p promptist --all-targets
cargo build --release -p promptist --lib --bins
export PROMPTIST_BIN="$PWD/target/release/promptist"
export PROMPTIST_LIBRARY="$PWD/target/release/libpromptist.so"

stage "Rust tests: library"
cargo test -p promptist --no-fail-fast
stage "Rust tests: trainer (one thread: tch tests share the process's torch state)"
cargo test -p promptist-train --no-fail-fast -- --test-threads 1
stage "C tests under valgrind"
bash tests/c/run.sh
bash tests/c/run_score.sh
stage "Python parity tests and binding"
"$PROMPTIST_PYTHON" -m pytest -q -p no:cacheprovider tests/python bindings/python
stage "done"
