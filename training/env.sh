# Source this (bash) to build and run promptist-train: the project's environment (tests/env.sh: the
# cached reference venv first on PATH, PROMPTIST_PYTHON, ORT_DYLIB_PATH, LIBTORCH_USE_PYTORCH=1 so
# tch 0.24.0 links the venv's torch 2.11.0), plus torch's lib/ on LD_LIBRARY_PATH, which the
# trainer's binaries need at run time. (The test command keeps that folder off the loader path of
# everything but the trainer's own tests.)
source "$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/tests/env.sh" || return 1
export LD_LIBRARY_PATH="$PROMPTIST_TORCH_LIB${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
