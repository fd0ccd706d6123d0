# Source this (bash) to get the project's test environment: the cached Python reference virtualenv
# (created and filled on first use), the transformers 4.53.3 overlay, and ONNX Runtime from PyPI.
# Everything is cached under ${PROMPTIST_CACHE:-~/.cache/promptist}, keyed by the requirement files,
# so a second run installs nothing.
_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
_cache="${PROMPTIST_CACHE:-$HOME/.cache/promptist}"
_py="${PYTHON:-python3}"
_key="$(cat "$_root/tests/python/requirements.txt" | sha256sum | cut -c1-12)"
_tf4key="$(cat "$_root/tests/python/requirements-tf4.txt" | sha256sum | cut -c1-12)"
export PROMPTIST_VENV="${PROMPTIST_VENV:-$_cache/venv-$_key}"
export PROMPTIST_TF4="${PROMPTIST_TF4:-$_cache/tf4-$_tf4key}"
mkdir -p "$_cache"
if [ ! -f "$PROMPTIST_VENV/.complete" ]; then
  echo "[env] creating the reference virtualenv $PROMPTIST_VENV (torch, transformers, diffusers, onnxruntime; several GB, once)" >&2
  rm -rf "$PROMPTIST_VENV"
  "$_py" -m venv "$PROMPTIST_VENV" || return 1
  "$PROMPTIST_VENV/bin/python" -m pip install -q --upgrade pip >&2 || return 1
  "$PROMPTIST_VENV/bin/python" -m pip install -q -r "$_root/tests/python/requirements.txt" >&2 || return 1
  touch "$PROMPTIST_VENV/.complete"
fi
if [ ! -f "$PROMPTIST_TF4/.complete" ]; then
  echo "[env] installing the transformers 4.53.3 overlay $PROMPTIST_TF4 (group beam search reference)" >&2
  rm -rf "$PROMPTIST_TF4"
  "$PROMPTIST_VENV/bin/python" -m pip install -q --target "$PROMPTIST_TF4" -r "$_root/tests/python/requirements-tf4.txt" >&2 || return 1
  touch "$PROMPTIST_TF4/.complete"
fi
export PROMPTIST_PYTHON="$PROMPTIST_VENV/bin/python"
export PATH="$PROMPTIST_VENV/bin:$PATH"
if [ -z "${ORT_DYLIB_PATH:-}" ]; then
  ORT_DYLIB_PATH="$(bash "$_root/tests/fetch-ort.sh")" || return 1
  export ORT_DYLIB_PATH
fi
# tch (training crate) builds against the venv's torch 2.11.0. Its lib/ folder is exported as
# PROMPTIST_TORCH_LIB, not put on LD_LIBRARY_PATH: only the trainer's binaries and tests need it
# there (tests/run.sh adds it for that stage alone), and torch's bundled libraries must not be what
# ONNX Runtime or the C tests load. Running promptist-train by hand:
#   LD_LIBRARY_PATH=$PROMPTIST_TORCH_LIB target/release/promptist-train ...
export LIBTORCH_USE_PYTORCH=1
PROMPTIST_TORCH_LIB="$("$PROMPTIST_PYTHON" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')" || return 1
export PROMPTIST_TORCH_LIB
unset _root _cache _py _key _tf4key
