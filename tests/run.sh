#!/usr/bin/env bash
# The whole test suite: Rust unit and integration tests (incl. the header drift check), the Python
# parity tests against transformers / diffusers / open_clip / onnxruntime, the Python binding, and
# the C ABI tests under valgrind. Installs what it needs on first use (tests/env.sh; cached).
set -euo pipefail
cd "$(dirname "$0")/.."
source tests/env.sh
echo "[run] ORT_DYLIB_PATH=$ORT_DYLIB_PATH"
echo "[run] python: $PROMPTIST_PYTHON"
cargo build --workspace --all-targets
export PROMPTIST_BIN="$PWD/target/debug/promptist"
export PROMPTIST_LIB_DIR="$PWD/target/debug"
cargo test --workspace --no-fail-fast
bash tests/c/run.sh
"$PROMPTIST_PYTHON" -m pytest -q -p no:cacheprovider tests/python bindings/python
