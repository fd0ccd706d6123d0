#!/usr/bin/env bash
# Prepare ONNX Runtime GPU (PyPI's onnxruntime-gpu wheel: the CUDA 13 / cuDNN 9 build) for a remote
# GPU machine that takes files in limited sizes: its libraries (~313 MB, ~190 MB as .tar.xz) are cut
# into parts of at most $PART_SIZE under .device/ort-gpu/ (kept out of git through
# .git/info/exclude), with an env.sh that joins and unpacks them on the remote side.
#   bash training/stage_ort_gpu.sh        # prints how many parts there are
# On the remote machine each call copies one part to /tmp/ort-parts (/tmp outlives the copied
# checkout while the machine stays up); the last call runs `source .device/ort-gpu/env.sh`, which
# sets ORT_DYLIB_PATH and LD_LIBRARY_PATH (ONNX Runtime, then the CUDA / cuDNN libraries of the
# remote's torch venv at /opt/torch/.venv).
set -euo pipefail
version="${ORT_GPU_VERSION:-1.31.1}"
part_size="${PART_SIZE:-40M}"
top="$(git rev-parse --show-toplevel)"
out="$top/.device/ort-gpu"
cache="${PROMPTIST_CACHE:-$HOME/.cache/promptist}/ort-gpu/$version"
mkdir -p "$cache" "$out"
grep -qxF '/.device/' "$top/.git/info/exclude" 2>/dev/null || echo '/.device/' >> "$top/.git/info/exclude"
if [ ! -s "$cache/libs.tar.xz" ]; then
    python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 \
        --platform manylinux_2_28_x86_64 -d "$cache" "onnxruntime-gpu==$version" >&2
    unpacked="$(mktemp -d)"
    python3 - "$cache" "$version" "$unpacked" <<'PY'
import glob, sys, zipfile
cache, version, dest = sys.argv[1:4]
wheel = glob.glob(f"{cache}/onnxruntime_gpu-{version}-*.whl")[0]
with zipfile.ZipFile(wheel) as z:
    for name in z.namelist():
        if name.startswith("onnxruntime/capi/libonnxruntime"):
            z.extract(name, dest)
PY
    tar -C "$unpacked/onnxruntime/capi" -cf - . | xz -T2 -6 > "$cache/libs.tar.xz.part"
    mv "$cache/libs.tar.xz.part" "$cache/libs.tar.xz"
    rm -rf "$unpacked"
fi
rm -f "$out"/part-*
split -b "$part_size" "$cache/libs.tar.xz" "$out/part-"
cat > "$out/env.sh" <<ENV
# Sourced on the GPU machine from the checkout's root, in the call that carries the last part.
mkdir -p /tmp/ort-parts /tmp/ort
cp .device/ort-gpu/part-* /tmp/ort-parts/ 2>/dev/null || true
if [ ! -f /tmp/ort/libonnxruntime.so.$version ]; then
    cat /tmp/ort-parts/part-* | xz -d | tar -x -C /tmp/ort || { echo "ort-gpu: cannot unpack (a part missing, or the machine restarted)"; return 1; }
fi
nv=/opt/torch/.venv/lib/python3.12/site-packages/nvidia
export ORT_DYLIB_PATH=/tmp/ort/libonnxruntime.so.$version
export LD_LIBRARY_PATH=/tmp/ort:\$nv/cu13/lib:\$nv/cudnn/lib:/usr/local/cuda/lib64\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}
ENV
echo "staged $(ls "$out"/part-* | wc -l) parts of onnxruntime-gpu $version in $out: carry one per call, back to back; source .device/ort-gpu/env.sh in the last" >&2
