#!/usr/bin/env bash
# Provision the ONNX Runtime shared library from PyPI's onnxruntime wheel (ort's CDN download cannot
# be reached here). Idempotent: prints the library path; downloads only when the cache lacks it.
#   usage: tests/fetch-ort.sh [VERSION]        (default 1.31.1)
#   export ORT_DYLIB_PATH="$(tests/fetch-ort.sh)"
# Needs only python3 with pip. Cache: ${PROMPTIST_CACHE:-~/.cache/promptist}/ort/VERSION/
set -euo pipefail
version="${1:-1.31.1}"
cache="${PROMPTIST_CACHE:-$HOME/.cache/promptist}/ort/$version"
lib="$cache/libonnxruntime.so.$version"
python="${PYTHON:-python3}"
if [ ! -s "$lib" ]; then
    mkdir -p "$cache/wheel"
    if ! ls "$cache"/wheel/onnxruntime-"$version"-*.whl >/dev/null 2>&1; then
        "$python" -m pip download --quiet --no-deps --only-binary=:all: "onnxruntime==$version" -d "$cache/wheel" >&2
    fi
    wheel="$(ls "$cache"/wheel/onnxruntime-"$version"-*.whl | head -n 1)"
    tmp="$(mktemp -d "$cache/unzip.XXXXXX")"
    "$python" - "$wheel" "$tmp" "$version" <<'PY'
import sys, zipfile
wheel, out, version = sys.argv[1:4]
name = f"onnxruntime/capi/libonnxruntime.so.{version}"
with zipfile.ZipFile(wheel) as z:
    if name not in z.namelist():
        sys.exit(f"{wheel} has no {name}")
    z.extract(name, out)
PY
    mv "$tmp/onnxruntime/capi/libonnxruntime.so.$version" "$lib.part"
    mv "$lib.part" "$lib"
    rm -rf "$tmp"
fi
ln -sfn "libonnxruntime.so.$version" "$cache/libonnxruntime.so"
echo "$lib"
