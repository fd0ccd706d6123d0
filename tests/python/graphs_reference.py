"""Helpers for the SD / CLIP / aesthetic graph parity tests: seeded reference models (diffusers
0.42 UNet2DConditionModel / AutoencoderKL, transformers 5.23 CLIPTextModel / CLIPModel, open_clip
3.3 CLIP), their weights written with safetensors and their configs as config.json, the promptist
CLI (`export-sd`), and onnxruntime sessions.
"""
import json
import os
import subprocess
from pathlib import Path

import numpy as np

from reference_env import promptist_bin, repo_data  # noqa: F401  (ref.promptist_bin in the tests)

REPO = Path(__file__).resolve().parents[2]
AESTHETIC_PTH = repo_data("aesthetic/sac+logos+ava1-l14-linearMSE.pth")


def export(graph, out, *args, check=True):
    """`promptist export-sd GRAPH --out OUT ARGS...`; checks the result with onnx.checker (full
    check: types and shapes inferred) unless `check` is false; returns the model path."""
    cmd = [str(promptist_bin()), "export-sd", graph, "--out", str(out), *map(str, args)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stderr}")
    if check:
        import onnx

        onnx.checker.check_model(str(out), full_check=True)
    return Path(out)


def randomize(model, seed):
    """Seeded random weights that exercise every term: the modules' own random init for matrices
    and kernels (seed the constructor with torch.manual_seed), then every bias ~N(0, 0.05) and
    every norm gain ~N(1, 0.1) (the libraries initialise those to 0 and 1)."""
    import torch

    torch.manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            parts = name.split(".")
            owner = parts[-2] if len(parts) >= 2 else ""
            is_norm = "norm" in owner or owner.startswith("ln") or "layrnorm" in owner
            if parts[-1] == "bias":
                p.normal_(0.0, 0.05)
            elif is_norm and p.dim() == 1:
                p.normal_(1.0, 0.1)
    return model.eval()


def save_weights(state_dict, path):
    from safetensors.torch import save_file

    save_file({k: v.detach().contiguous().float() for k, v in state_dict.items()}, str(path))
    return path


def write_json(obj, path):
    Path(path).write_text(json.dumps(obj, indent=1))
    return path


def session(path):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 2
    so.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def io_names(sess):
    return [i.name for i in sess.get_inputs()], [o.name for o in sess.get_outputs()]


def max_abs(a, b):
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape, f"shape {a.shape} != {b.shape}"
    return float(np.max(np.abs(a - b))) if a.size else 0.0


def eos_ids(rng, batch, seq, vocab, lengths):
    """Token rows like a CLIP tokenizer's: BOS-like start, random body, EOS (= vocab - 1, the
    largest id) at position lengths[b]-1, then EOS padding (argmax pooling takes the first EOS)."""
    ids = rng.integers(1, vocab - 2, size=(batch, seq), dtype=np.int64)
    ids[:, 0] = vocab - 2
    for b, n in enumerate(lengths):
        ids[b, n - 1:] = vocab - 1
    return ids


def consumed_keys(onnx_path):
    """Checkpoint keys a promptist graph was built from, read back from its initializer names:
    `<key>` as is, `<key>.T` (transposed Linear weights), `<stem>.a+b+c.weight.T` / `.bias` (fused
    projections a, b, c of one input); generated constants (`const_*`) are skipped. Returns
    (keys, element count of the non-constant initializers)."""
    import onnx

    m = onnx.load(str(onnx_path), load_external_data=False)
    keys, count = set(), 0
    for t in m.graph.initializer:
        if t.name.startswith("const_"):
            continue
        n = 1
        for d in t.dims:
            n *= d
        count += n
        name = t.name[:-2] if t.name.endswith(".T") else t.name
        stem, _, leaf = name.rpartition(".")  # leaf: weight / bias / embedding name
        parent, _, parts = stem.rpartition(".")
        if "+" in parts:
            keys.update(f"{parent}.{p}.{leaf}" for p in parts.split("+"))
        else:
            keys.add(name)
    return keys, count


def check_all_weights_used(onnx_path, state_dict_keys, ignore=()):
    """Every reference weight (but `ignore` prefixes) is in the graph, and nothing else is."""
    want = {k for k in state_dict_keys if not any(k.startswith(p) for p in ignore)}
    got, _ = consumed_keys(onnx_path)
    assert got == want, f"unused reference weights: {sorted(want - got)[:8]}; unknown graph weights: {sorted(got - want)[:8]}"
