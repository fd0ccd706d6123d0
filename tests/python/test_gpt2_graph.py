"""Parity of the exported GPT-2 ONNX graph (promptist convert) with transformers GPT2LMHeadModel.

Every logit and every present key/value is compared element-wise:
- fp32: max abs difference <= 1e-4, without cache (batch 2, left padding) and with cache
  (prefill, then 3 decode steps feeding present -> past);
- fp16 (weights, activations and KV cache in float16, logits float32): max abs difference
  <= FP16_TOL * (1 + max |logit|), i.e. float16 rounding of activations (the float32 reference is
  the same checkpoint in transformers, float32).
Also: onnx.checker passes, the manifest lists every file with its sha256/size, and the graph's
inputs/outputs are optimum's. Needs the reference venv (torch, transformers, onnx, onnxruntime)
and the built CLI (PROMPTIST_BIN, default target/debug/promptist).
"""
import hashlib
import json

import numpy as np
import pytest

import gpt2_reference as ref
import reference_env

reference_env.require("onnx", "onnxruntime", "torch", "transformers")  # fail, never skip
import onnx  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)

FP32_TOL = 1e-4
FP16_TOL = 5e-3


def check_bundle(bundle):
    m = json.loads((bundle / "promptist.json").read_text())
    pol = m["components"]["policy"]
    assert pol["kind"] == "gpt2-policy"
    for rel in ("policy/model.onnx", "policy/tokenizer.json", "policy/config.json"):
        assert rel in pol["files"], rel
    for rel, e in pol["files"].items():
        data = (bundle / rel).read_bytes()
        assert len(data) == e["size"] and hashlib.sha256(data).hexdigest() == e["sha256"], rel
    return m


def check_io(sess, cfg, kv_type):
    n = cfg["n_layer"]
    ins = [(i.name, i.type) for i in sess.get_inputs()]
    outs = [(o.name, o.type) for o in sess.get_outputs()]
    want_in = [("input_ids", "tensor(int64)"), ("attention_mask", "tensor(int64)"), ("position_ids", "tensor(int64)")]
    want_in += [(f"past_key_values.{i}.{kv}", kv_type) for i in range(n) for kv in ("key", "value")]
    want_out = [("logits", "tensor(float)")] + [(f"present.{i}.{kv}", kv_type) for i in range(n) for kv in ("key", "value")]
    assert ins == want_in
    assert outs == want_out


def parity(tmp_path, cfg, seed, dtype, tol_fn, attention="standard"):
    ck = tmp_path / "ck"
    model = ref.make_hf_checkpoint(ck, cfg, seed)
    bundle = tmp_path / "bundle"
    ref.run_cli("convert", "--checkpoint", ck, "--out", bundle, "--dtype", dtype, "--attention", attention)
    m = check_bundle(bundle)
    assert m["provenance"]["random_weights"] is False
    onnx_path = bundle / "policy" / "model.onnx"
    onnx.checker.check_model(str(onnx_path), full_check=True)
    g = ref.OrtGpt2(onnx_path, cfg)
    check_io(g.sess, cfg, "tensor(float16)" if dtype == "fp16" else "tensor(float)")

    rng = np.random.default_rng(seed)
    report = {}
    # 1. no cache: batch 2, row 1 left-padded by 3 (rows of pure padding included in the comparison)
    ids, mask, pos = ref.left_padded_batch(rng, cfg["vocab_size"], 7, [0, 3])
    want, cache = ref.hf_forward(model, ids, mask, pos)
    got, presents = g.run(ids, mask, pos, g.empty_past(2))
    tol = tol_fn(want)
    report["full_logits"] = ref.max_abs(got, want)
    want_kv = ref.cache_arrays(cache, cfg["n_layer"])
    report["full_presents"] = max(ref.max_abs(a, b) for gp, wp in zip(presents, want_kv) for a, b in zip(gp, wp))
    # 2. with cache: 3 decode steps, feeding present -> past
    past = presents
    step_diffs, kv_diffs = [], []
    for step in range(3):
        nxt = rng.integers(0, cfg["vocab_size"], size=(2, 1), dtype=np.int64)
        mask = np.concatenate([mask, np.ones((2, 1), dtype=np.int64)], axis=1)
        pos = (pos[:, -1:] + 1) if step else (np.cumsum(mask, axis=1)[:, -1:] - 1)
        want, cache = ref.hf_forward(model, nxt, mask, pos, cache)
        got, past = g.run(nxt, mask, pos, past)
        step_diffs.append(ref.max_abs(got, want))
        want_kv = ref.cache_arrays(cache, cfg["n_layer"])
        kv_diffs.append(max(ref.max_abs(a, b) for gp, wp in zip(past, want_kv) for a, b in zip(gp, wp)))
        tol = max(tol, tol_fn(want))
    report["decode_logits"] = max(step_diffs)
    report["decode_presents"] = max(kv_diffs)
    print(f"\n{dtype} {attention} n_layer={cfg['n_layer']} n_embd={cfg['n_embd']}: tolerance {tol:.3g}; max abs diffs {report}")
    for k, v in report.items():
        assert v <= tol, f"{k}: max abs diff {v} > {tol}"
    return report


@pytest.mark.parametrize("cfg", [ref.TINY, ref.GPT2_117M], ids=["tiny", "gpt2-117M"])
def test_fp32_parity(tmp_path, cfg):
    parity(tmp_path, cfg, seed=1234, dtype="fp32", tol_fn=lambda want: FP32_TOL)


@pytest.mark.parametrize("cfg", [ref.TINY, ref.GPT2_117M], ids=["tiny", "gpt2-117M"])
def test_fp16_parity(tmp_path, cfg):
    parity(tmp_path, cfg, seed=99, dtype="fp16", tol_fn=lambda want: FP16_TOL * (1.0 + float(np.abs(want).max())))


def test_pytorch_model_bin_checkpoint(tmp_path):
    """The same parity from a `pytorch_model.bin` (torch.save zip) checkpoint, incl. its tied head."""
    ck = tmp_path / "ck"
    model = ref.make_hf_checkpoint(ck, ref.TINY, seed=7, safe=False)
    if not (ck / "pytorch_model.bin").is_file():  # transformers 5 may not write .bin: write it ourselves
        for f in ck.glob("*.safetensors"):
            f.unlink()
        torch.save(model.state_dict(), ck / "pytorch_model.bin")
    assert not list(ck.glob("*.safetensors"))
    bundle = tmp_path / "bundle"
    ref.run_cli("convert", "--checkpoint", ck, "--out", bundle)
    g = ref.OrtGpt2(bundle / "policy" / "model.onnx", ref.TINY)
    ids, mask, pos = ref.left_padded_batch(np.random.default_rng(7), 50257, 6, [2, 0])
    want, _ = ref.hf_forward(model, ids, mask, pos)
    got, _ = g.run(ids, mask, pos, g.empty_past(2))
    d = ref.max_abs(got, want)
    print(f"\npytorch_model.bin: logits max abs diff {d:.3g}")
    assert d <= FP32_TOL


@pytest.mark.parametrize("dtype", ["fp32", "fp16"])
def test_ort_multihead_attention_option(tmp_path, dtype):
    """The optional com.microsoft.MultiHeadAttention graph has the same semantics (same tolerances)."""
    tol = (lambda w: FP32_TOL) if dtype == "fp32" else (lambda w: FP16_TOL * (1.0 + float(np.abs(w).max())))
    parity(tmp_path, ref.TINY, seed=21, dtype=dtype, tol_fn=tol, attention="ort-mha")


def test_make_tiny_convert_marks_random(tmp_path):
    ck = tmp_path / "ck"
    ref.run_cli("make-tiny", "--out", ck, "--seed", "5")
    cfg = json.loads((ck / "config.json").read_text())
    assert cfg["promptist_random_init"] is True
    bundle = tmp_path / "b"
    ref.run_cli("convert", "--checkpoint", ck, "--out", bundle)
    m = check_bundle(bundle)
    assert m["provenance"]["random_weights"] is True
    assert "RANDOM" in m["description"]
    # same seed -> byte-identical weights
    ck2 = tmp_path / "ck2"
    ref.run_cli("make-tiny", "--out", ck2, "--seed", "5")
    assert (ck / "model.safetensors").read_bytes() == (ck2 / "model.safetensors").read_bytes()
    # the untied, scaled LM head loads in transformers and the graph matches it (fp32 tolerance)
    from transformers import GPT2LMHeadModel

    model = GPT2LMHeadModel.from_pretrained(ck).eval()
    assert not model.config.tie_word_embeddings
    g = ref.OrtGpt2(bundle / "policy" / "model.onnx", {k: cfg[k] for k in ("n_layer", "n_head", "n_embd")})
    rng = np.random.default_rng(5)
    ids, mask, pos = ref.left_padded_batch(rng, cfg["vocab_size"], 9, [0, 4])
    want, _ = ref.hf_forward(model, ids, mask, pos)
    got, _ = g.run(ids, mask, pos, g.empty_past(2))
    d = ref.max_abs(got, want)
    top2 = np.sort(want[:, -1, :], axis=-1)[:, -2:]
    print(f"\nmake-tiny (scale default) logits max abs diff {d:.3g}; last-position top-1 margins {top2[:, 1] - top2[:, 0]}")
    assert d <= FP32_TOL


def test_convert_imports_optimum_style_onnx_folder(tmp_path):
    """A folder with an ONNX export (model.onnx + model.onnx_data, config.json, tokenizer.json, no
    PyTorch weights) is validated and copied; a merged decoder (use_cache_branch) is refused."""
    import shutil

    ck = tmp_path / "ck"
    ref.run_cli("make-tiny", "--out", ck, "--seed", "3")
    first = tmp_path / "first"
    ref.run_cli("convert", "--checkpoint", ck, "--out", first, "--dtype", "fp16")
    exported = tmp_path / "exported"
    shutil.copytree(first / "policy", exported)
    bundle = tmp_path / "bundle"
    ref.run_cli("convert", "--checkpoint", exported, "--out", bundle)
    m = check_bundle(bundle)
    pol = m["components"]["policy"]
    assert set(pol["files"]) == {"policy/model.onnx", "policy/model.onnx_data", "policy/tokenizer.json", "policy/config.json"}
    assert pol["config"]["promptist_onnx_dtype"] == "float16"  # the imported graph keeps its own type
    assert pol["files"]["policy/model.onnx_data"] == m_files(first)["policy/model.onnx_data"]

    merged = tmp_path / "merged"
    shutil.copytree(exported, merged)
    model = onnx.load(str(merged / "model.onnx"), load_external_data=False)
    model.graph.input.append(onnx.helper.make_tensor_value_info("use_cache_branch", onnx.TensorProto.BOOL, [1]))
    onnx.save(model, str(merged / "model.onnx"))
    import subprocess

    r = subprocess.run([str(ref.promptist_bin()), "convert", "--checkpoint", str(merged), "--out", str(tmp_path / "b2")],
                       capture_output=True, text=True)
    assert r.returncode != 0 and "use_cache_branch" in r.stderr, r.stderr


def m_files(bundle):
    return json.loads((bundle / "promptist.json").read_text())["components"]["policy"]["files"]
