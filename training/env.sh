# Source this to build and run promptist-train: tch 0.24.0 links the venv's torch 2.11.0.
_venv="${PROMPTIST_VENV:-$HOME/.cache/promptist/venv}"
export PATH="$_venv/bin:$PATH"
export LIBTORCH_USE_PYTORCH=1
export LD_LIBRARY_PATH="$("$_venv/bin/python" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export PROMPTIST_PYTHON="${PROMPTIST_PYTHON:-$_venv/bin/python}"
export ORT_DYLIB_PATH="${ORT_DYLIB_PATH:-$_venv/lib/python3.11/site-packages/onnxruntime/capi/libonnxruntime.so.1.31.1}"
unset _venv
