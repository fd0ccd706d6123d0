#!/usr/bin/env bash
# Provision the ONNX Runtime shared library from PyPI's onnxruntime wheel (ort's own CDN download
# cannot work on machines that reach only the package registries). Idempotent; prints the path of
# the library on stdout. Usage: ORT_DYLIB_PATH=$(bash tests/fetch-ort.sh)
set -euo pipefail
version="${ORT_VERSION:-1.31.1}"
dir="${PROMPTIST_CACHE:-$HOME/.cache/promptist}/ort/$version"
lib="$dir/libonnxruntime.so.$version"
if [ ! -f "$lib" ]; then
  mkdir -p "$dir"
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  echo "[fetch-ort] downloading onnxruntime==$version from PyPI" >&2
  "${PYTHON:-python3}" -m pip download -q --no-deps --only-binary=:all: "onnxruntime==$version" -d "$tmp" >&2
  whl="$(ls "$tmp"/onnxruntime-"$version"-*.whl | head -n1)"
  "${PYTHON:-python3}" - "$whl" "$dir" "$version" <<'PY'
import sys, zipfile, os
whl, out, ver = sys.argv[1:]
with zipfile.ZipFile(whl) as z:
    name = f"onnxruntime/capi/libonnxruntime.so.{ver}"
    data = z.read(name)
tmp = os.path.join(out, f".libonnxruntime.so.{ver}.part")
with open(tmp, "wb") as f:
    f.write(data)
os.replace(tmp, os.path.join(out, f"libonnxruntime.so.{ver}"))
PY
  ln -sf "libonnxruntime.so.$version" "$dir/libonnxruntime.so"
fi
echo "$lib"
