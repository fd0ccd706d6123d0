"""Shared helpers of the decoding parity tests and benchmark: locating the CLI, the ORT library and
the Python venvs (failing clearly when missing), the GPT-2 tokenizer from the shared vocabulary,
seeded peaked random GPT-2 checkpoints converted to ONNX, and running both decoders."""
import json
import os
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
HERE = pathlib.Path(__file__).resolve().parent
EOS = 50256
TF4 = pathlib.Path(os.environ.get("PROMPTIST_TF4", pathlib.Path.home() / ".cache/promptist/tf4"))

# Short text-to-image prompts in the style of Promptist's inputs (user-written main content).
PROMPTS = [
    "a cat sitting on a windowsill", "portrait of an old fisherman", "a castle on a hill at sunset",
    "a futuristic city skyline", "a bowl of fruit on a table", "a dragon flying over mountains",
    "an astronaut riding a horse", "a cozy cabin in the snowy woods", "a robot playing the violin",
    "a lighthouse in a storm", "a forest with glowing mushrooms", "a steampunk airship",
    "a girl reading a book under a tree", "a vintage car on a desert road", "an owl in the moonlight",
    "a bustling market in marrakech", "underwater coral reef with fish", "a samurai in the rain",
    "a watercolor painting of paris", "a knight facing a giant", "a tiny house on a floating island",
    "mars colony at dawn", "A Fox In Autumn Leaves.", "  a sailing ship, oil painting  ",
    "café terrace at night — van gogh style", "neon tokyo street 🌃",
]


def fail(msg):
    raise RuntimeError(msg)


def promptist_bin():
    p = pathlib.Path(os.environ.get("PROMPTIST_BIN", ROOT / "target/debug/promptist"))
    if not p.exists():
        fail(f"promptist CLI not found at {p}: run `cargo build` or set PROMPTIST_BIN")
    return p


def ort_lib():
    p = os.environ.get("ORT_DYLIB_PATH")
    if not p or not pathlib.Path(p).exists():
        fail(f"ORT_DYLIB_PATH is unset or missing ({p!r}): point it at libonnxruntime.so.1.31.1 "
             "(tests/fetch-ort.sh or the onnxruntime wheel)")
    return p


def tf4_path():
    if not (TF4 / "transformers" / "__init__.py").exists():
        fail(f"transformers 4.53.3 overlay not found at {TF4} (needed for group beam search parity); "
             "install tests/python/requirements-tf4.txt with pip --target there, or set PROMPTIST_TF4")
    return TF4


def tokenizer():
    from transformers import GPT2TokenizerFast
    if os.environ.get("PROMPTIST_GPT2_VOCAB"):
        d = pathlib.Path(os.environ["PROMPTIST_GPT2_VOCAB"])
    else:
        from reference_env import repo_data
        d = repo_data("gpt2")
    vocab = json.load(open(d / "encoder.json"))
    merges = [tuple(l.split()) for l in open(d / "vocab.bpe", encoding="utf-8").read().split("\n")[1:] if l.strip()]
    return GPT2TokenizerFast(vocab=vocab, merges=merges, unk_token="<|endoftext|>", bos_token="<|endoftext|>",
                             eos_token="<|endoftext|>", add_prefix_space=False)


def prompt_ids(texts):
    tok = tokenizer()
    # docs/method.md §1: source.strip() + " Rephrase:", no BOS.
    ids = [tok(t.strip() + " Rephrase:")["input_ids"] for t in texts]
    assert all(i and EOS not in i for i in ids)
    return ids


def boost_eos(hf_dir, factor):
    """Scale the LM head's EOS row (wte's when tied) so EOS is strongly favoured in some contexts
    and strongly avoided in others: sequences then end at varied lengths."""
    import torch
    from safetensors import safe_open
    from safetensors.torch import save_file
    path = pathlib.Path(hf_dir) / "model.safetensors"
    with safe_open(str(path), "pt") as f:
        meta = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    key = "lm_head.weight" if "lm_head.weight" in tensors else "transformer.wte.weight"
    tensors[key] = tensors[key].clone()
    tensors[key][EOS] *= factor
    save_file(tensors, str(path), metadata=meta)


def make_checkpoint(out, preset, scale, seed, eos_boost=1.0, tied=False):
    """A seeded random GPT-2 checkpoint from `promptist make-tiny` (its untied LM head at std
    0.02 * scale gives peaked next-token distributions, so beam decisions are far from float noise),
    with the EOS row boosted by `eos_boost`."""
    cmd = [str(promptist_bin()), "make-tiny", "--out", str(out), "--preset", preset, "--seed", str(seed),
           "--scale", str(scale)] + (["--tied"] if tied else [])
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        fail(f"promptist make-tiny failed: {r.stderr}")
    if eos_boost != 1.0:
        boost_eos(out, eos_boost)


def onnx_from_checkpoint(hf_dir, out_dir):
    """The policy bundle for `hf_dir` via `promptist convert` (the library's exporter). With
    PROMPTIST_DECODE_GRAPH=torch, the torch-traced reference graph (decode_torch_onnx.py) is used
    instead, which checks the decoder independently of the exporter. Returns (--model, how)."""
    out_dir = pathlib.Path(out_dir)
    if os.environ.get("PROMPTIST_DECODE_GRAPH") == "torch":
        from transformers import GPT2LMHeadModel
        sys.path.insert(0, str(HERE))
        import decode_torch_onnx
        d = out_dir / "torch_onnx"
        d.mkdir(parents=True, exist_ok=True)
        decode_torch_onnx.export(GPT2LMHeadModel.from_pretrained(hf_dir).eval(), str(d / "model.onnx"))
        (d / "config.json").write_text((pathlib.Path(hf_dir) / "config.json").read_text())
        return d, "torch-traced reference graph (decode_torch_onnx.py)"
    r = subprocess.run([str(promptist_bin()), "convert", str(hf_dir), "--out", str(out_dir / "bundle")],
                       capture_output=True, text=True)
    if r.returncode != 0:
        fail(f"promptist convert failed: {r.stderr}")
    return out_dir / "bundle", "promptist convert"


def run_rust(model_arg, request, tmp, threads=1, repeat=1, matmul=None):
    tmp = pathlib.Path(tmp)
    req = tmp / "rust_request.json"
    req.write_text(json.dumps(request))
    env = dict(os.environ, ORT_DYLIB_PATH=ort_lib())
    r = subprocess.run([str(promptist_bin()), "bench", "--model", str(model_arg), "--ids-json", str(req),
                        "--threads", str(threads), "--repeat", str(repeat)] + (["--matmul", matmul] if matmul else []),
                       capture_output=True, text=True, env=env)
    if r.returncode != 0:
        fail(f"promptist bench failed ({r.returncode}): {r.stderr}")
    return json.loads(r.stdout)


def run_hf(hf_dir, request, tmp, tf4=False, threads=1, repeat=1):
    tmp = pathlib.Path(tmp)
    req = tmp / "hf_request.json"
    req.write_text(json.dumps(request))
    env = dict(os.environ)
    if tf4:
        env["PYTHONPATH"] = str(tf4_path())
    r = subprocess.run([sys.executable, str(HERE / "decode_hf_generate.py"), str(hf_dir), str(req),
                        "--threads", str(threads), "--repeat", str(repeat)], capture_output=True, text=True, env=env)
    if r.returncode != 0:
        fail(f"transformers reference failed: {r.stderr[-3000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def compare(label, rust, ref, tie_tol, score_rtol=1e-4):
    """Compare every returned sequence of every prompt. Returns (same, ties, failures) where a
    difference counts as a tie only when the Rust search's closest decision (margin) was below
    `tie_tol` (scores within float noise of each other); matched sequences' scores must agree to
    `score_rtol` (relative)."""
    same, ties, failures = 0, [], []
    for i, (a, b) in enumerate(zip(rust["results"], ref["results"])):
        ta = [h["tokens"] for h in a["hypotheses"]]
        tb = [h["tokens"] for h in b["hypotheses"]]
        if ta == tb:
            same += 1
            for ha, hb in zip(a["hypotheses"], b["hypotheses"]):
                if hb["score"] is not None:
                    d = abs(ha["score"] - hb["score"])
                    if d > score_rtol * max(1.0, abs(hb["score"])):
                        failures.append(f"{label} prompt {i}: same ids but score {ha['score']} vs {hb['score']}")
            continue
        margin = a.get("margin")
        where = next((j for j, (x, y) in enumerate(zip(ta, tb)) if x != y), None)
        msg = (f"{label} prompt {i}: ids differ (first differing sequence {where}); rust closest decision "
               f"margin {margin} at step {a.get('margin_step')}")
        if margin is not None and margin < tie_tol:
            ties.append(msg + f" < {tie_tol}: float-level TIE")
        else:
            failures.append(msg + f"\n  rust: {ta[:2]}\n  ref:  {tb[:2]}")
    if len(rust["results"]) != len(ref["results"]):
        failures.append(f"{label}: {len(rust['results'])} results vs {len(ref['results'])}")
    return same, ties, failures
