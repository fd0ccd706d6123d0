"""Helpers for the GPT-2 graph parity tests: seeded transformers GPT2LMHeadModel checkpoints, the
promptist CLI, and running the exported ONNX graph with onnxruntime (past/present feeding).

transformers 5.23 GPT-2 semantics reproduced by the graph: default SDPA attention, position_ids
given explicitly (cumsum of the mask - 1, padding positions set to 1, as generate() does).
"""
import shutil
import subprocess
from pathlib import Path

import numpy as np

from reference_env import promptist_bin  # noqa: F401  (ref.promptist_bin in the tests)

REPO = Path(__file__).resolve().parents[2]
TOKENIZER_JSON = REPO / "src" / "text" / "data" / "gpt2-tokenizer.json"

TINY = dict(n_layer=2, n_head=4, n_embd=64, n_positions=64, vocab_size=50257)
GPT2_117M = dict(n_layer=12, n_head=12, n_embd=768, n_positions=1024, vocab_size=50257)


def run_cli(*args):
    r = subprocess.run([str(promptist_bin()), *map(str, args)], capture_output=True, text=True)
    if r.returncode != 0:
        raise AssertionError(f"promptist {' '.join(map(str, args))} failed ({r.returncode}):\n{r.stderr}")
    return r


def make_hf_checkpoint(out: Path, cfg: dict, seed: int, safe: bool = True):
    """A GPT2LMHeadModel with seeded random weights (LayerNorm gains/biases and all biases random
    too, so every term of the graph is exercised), saved as safetensors + tokenizer.json."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    model = GPT2LMHeadModel(GPT2Config(**cfg)).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias"):
                p.normal_(0.0, 0.02)
            elif ".ln_" in name:
                p.normal_(1.0, 0.1)
    model.save_pretrained(out, safe_serialization=safe)
    shutil.copy(TOKENIZER_JSON, out / "tokenizer.json")
    return model


def left_padded_batch(rng, vocab, seq, pads):
    """ids/mask/position_ids for a batch whose row b has pads[b] leading padding tokens."""
    b = len(pads)
    ids = rng.integers(0, vocab, size=(b, seq), dtype=np.int64)
    mask = np.ones((b, seq), dtype=np.int64)
    for i, p in enumerate(pads):
        mask[i, :p] = 0
        ids[i, :p] = 50256 % vocab
    pos = np.cumsum(mask, axis=1) - 1
    pos[mask == 0] = 1
    return ids, mask, pos


class OrtGpt2:
    """The exported graph in onnxruntime, with optimum's I/O names."""

    def __init__(self, model_path: Path, cfg: dict):
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.intra_op_num_threads = 1
        self.sess = ort.InferenceSession(str(model_path), so, providers=["CPUExecutionProvider"])
        self.cfg = cfg
        self.kv_type = {i.name: i.type for i in self.sess.get_inputs()}["past_key_values.0.key"]

    def empty_past(self, batch):
        dt = np.float16 if "float16" in self.kv_type else np.float32
        h, d = self.cfg["n_head"], self.cfg["n_embd"] // self.cfg["n_head"]
        z = np.zeros((batch, h, 0, d), dtype=dt)
        return [(z, z) for _ in range(self.cfg["n_layer"])]

    def run(self, ids, mask, pos, past):
        feed = {"input_ids": ids, "attention_mask": mask, "position_ids": pos}
        for i, (k, v) in enumerate(past):
            feed[f"past_key_values.{i}.key"] = k
            feed[f"past_key_values.{i}.value"] = v
        names = ["logits"] + [f"present.{i}.{kv}" for i in range(self.cfg["n_layer"]) for kv in ("key", "value")]
        out = self.sess.run(names, feed)
        presents = [(out[1 + 2 * i], out[2 + 2 * i]) for i in range(self.cfg["n_layer"])]
        return out[0], presents


def hf_forward(model, ids, mask, pos, cache=None):
    """transformers forward; returns logits (numpy) and the cache (updated in place)."""
    import torch

    with torch.no_grad():
        out = model(
            input_ids=torch.from_numpy(ids),
            attention_mask=torch.from_numpy(mask),
            position_ids=torch.from_numpy(pos),
            past_key_values=cache,
            use_cache=True,
        )
    return out.logits.float().numpy(), out.past_key_values


def cache_arrays(cache, n_layer):
    """(key, value) numpy pairs per layer from a transformers 5 cache (`.layers`), a 4.x
    DynamicCache (`key_cache`) or a legacy tuple."""
    if hasattr(cache, "layers"):
        pairs = [(cache.layers[i].keys, cache.layers[i].values) for i in range(n_layer)]
    elif hasattr(cache, "key_cache"):
        pairs = [(cache.key_cache[i], cache.value_cache[i]) for i in range(n_layer)]
    else:
        pairs = [(cache[i][0], cache[i][1]) for i in range(n_layer)]
    return [(k.float().numpy(), v.float().numpy()) for k, v in pairs]


def max_abs(a, b):
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape, f"shape {a.shape} != {b.shape}"
    return float(np.max(np.abs(a - b))) if a.size else 0.0
