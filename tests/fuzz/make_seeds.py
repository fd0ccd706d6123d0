"""Write the committed seed corpus of the fuzz targets into tests/fuzz/corpus/<target>/.

Usage: python tests/fuzz/make_seeds.py BUNDLE
BUNDLE is the tiny bundle tests/fuzz/run.sh makes (make-tiny --seed 3, convert, add-score --tiny).
Needs torch and safetensors (the test venv has both) for the weight-file seeds. The byte layouts
follow the targets' own readers (first byte = mode, and so on; see each target's doc comment).
"""
import io
import json
import os
import sys
import zipfile

import torch
from safetensors.torch import save as st_save

bundle = sys.argv[1]
here = os.path.dirname(os.path.abspath(__file__))
corpus = os.path.join(here, "corpus")


def put(target, name, data):
    d = os.path.join(corpus, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# tokenizers: mode 0 GPT-2 round trip, 1 CLIP rows, 2 ids, 3 tokenizer files.
texts = [
    "a red fox in the snow",
    "portrait of a sailor, highly detailed, digital painting, artstation, concept art, 8k",
    "  (masterpiece:1.2), [castle|tower], <lora:x:0.5>, {a|b}  ",
    "caf\u00e9 \u00fcber \u6771\u4eac \U0001F98A &amp; &lt;b&gt; \u00c5ngstr\u00f6m\t\n",
    "<|endoftext|>after the end",
    "x" * 300,
]
for i, t in enumerate(texts):
    put("tokenizers", f"gpt2_{i}", b"\x00" + t.encode())
    put("tokenizers", f"clip_{i}", b"\x01" + t.encode())
put("tokenizers", "ids", b"\x02" + bytes([0, 0, 0, 64, 0, 0, 1, 0, 0, 0, 196, 80, 255, 255, 255, 255]))
tiny_tok = {
    "version": "1.0",
    "added_tokens": [{"id": 258, "content": "<|endoftext|>", "single_word": False, "lstrip": False,
                      "rstrip": False, "normalized": True, "special": True}],
    "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
    "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
    "model": {"type": "BPE", "vocab": {**{chr(0x100 + i) if i < 33 else chr(i): i for i in range(256)}, "ab": 256, "abc": 257},
              "merges": ["a b", "ab c"]},
}
put("tokenizers", "gpt2_json", b"\x03\x00" + json.dumps(tiny_tok).encode())
with open(os.path.join(bundle, "clip", "merges.txt"), "rb") as f:
    merges = f.read().split(b"\n")[:200]
put("tokenizers", "clip_merges", b"\x03\x01" + b"\n".join(merges))

# manifest: the tiny bundle's own, and hostile variants of it.
with open(os.path.join(bundle, "promptist.json"), "rb") as f:
    manifest = f.read()
put("manifest", "tiny", manifest)
m = json.loads(manifest)
pol = m["components"]["policy"]["files"]
for name, mutate in [
    ("dotdot", lambda k: "policy/../promptist.json"),
    ("absolute", lambda k: "/etc/passwd"),
    ("backslash", lambda k: "policy\\model.onnx"),
]:
    mm = json.loads(manifest)
    files = mm["components"]["policy"]["files"]
    k = sorted(files)[0]
    files[mutate(k)] = files.pop(k)
    put("manifest", name, json.dumps(mm).encode())
mm = json.loads(manifest)
mm["format_version"] = 2
put("manifest", "version2", json.dumps(mm).encode())
mm = json.loads(manifest)
mm["components"] = {}
put("manifest", "no_components", json.dumps(mm).encode())
put("manifest", "not_utf8", b"{\"format_version\": 1, \"name\": \"\xff\xfe\"}")

# weights: mode 0 safetensors, 1 torch zip bytes, 2 the pickle inside a torch zip.
tensors = {"w": torch.arange(6, dtype=torch.float32).reshape(2, 3), "b": torch.ones(2, dtype=torch.float16)}
put("weights", "safetensors", b"\x00" + st_save(tensors))
buf = io.BytesIO()
torch.save({"w": torch.arange(4, dtype=torch.float32)}, buf)
put("weights", "torch_zip", b"\x01" + buf.getvalue())
# A pickle whose storages are named 0..3, as the target's zip provides (16 floats each).
buf = io.BytesIO()
torch.save({"layers.0.weight": torch.zeros(4, 4), "layers.0.bias": torch.zeros(4), "sd": {"x": torch.zeros(2, 2, dtype=torch.float16)}}, buf)
with zipfile.ZipFile(io.BytesIO(buf.getvalue())) as z:
    pkl = next(z.read(n) for n in z.namelist() if n.endswith("/data.pkl"))
put("weights", "pickle", b"\x02" + pkl)

# bundle_files: (file index, rehash, packed) then the file's own bytes, for the small files.
listed = sorted((c, rel) for c, comp in m["components"].items() for rel in comp["files"])
for i, (c, rel) in enumerate(listed):
    p = os.path.join(bundle, rel)
    if os.path.getsize(p) <= 64 * 1024:
        with open(p, "rb") as f:
            put("bundle_files", rel.replace("/", "__"), bytes([i, 1, 1]) + f.read())

# capi: a few option layouts with prompts (all-zero bytes keep every default).
put("capi", "optimize_defaults", b"\x00" * 80 + b"a red fox")
put("capi", "optimize_small", b"\x00\x00\x00\x00" + b"\x01\x02\x00\x00\x00" * 13 + b"portrait of a sailor")
put("capi", "score_small", b"\x01\x00\x00\x00" + b"\x01\x00\x00\x00\x00" * 3 + b"\x01\x01\x00\x00\x00" * 6 + b"\x00" * 8 + b"a castle at dawna castle at dawn, 8k")
print("seeds written to", corpus)
