# Source this (bash) to build and run promptist-train: it is the project's environment,
# tests/env.sh (the cached reference venv first on PATH, PROMPTIST_PYTHON, ORT_DYLIB_PATH), which also
# makes tch 0.24.0 link the venv's torch 2.11.0 (LIBTORCH_USE_PYTORCH=1, LD_LIBRARY_PATH=torch/lib).
source "$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/tests/env.sh"
