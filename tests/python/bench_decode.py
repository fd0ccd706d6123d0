"""Benchmark (not a test): the Rust decoder (`promptist bench`) against transformers `generate()`
on the same GPT-2-117M-shaped random weights (`promptist make-tiny --preset gpt2 --tied`, the real
layout and parameter count, converted with `promptist convert`), in the same run: beam 8,
exactly 75 new tokens (min_new_tokens = max_new_tokens = 75), one prompt, then a batch of 16
prompts in one call. Prints wall seconds, CPU seconds, the ratio and peak RSS (VmHWM) of each.
The Rust decoder runs twice: with the engine's default CPU matrix products (`--matmul packed`,
promptist's packed kernel on AVX-512F CPUs) and with ONNX Runtime's own Gemm (`--matmul ort`).

Usage: ORT_DYLIB_PATH=... PROMPTIST_BIN=target/release/promptist \\
    ~/.cache/promptist/venv/bin/python tests/python/bench_decode.py [--threads 2] [--repeat 2]
        [--attention ort-mha|standard] [--work DIR] [--skip-batch] [--matmul packed ort]
"""
import argparse
import json
import os
import pathlib
import subprocess
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import decode_common as dc  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--attention", default="ort-mha", choices=["ort-mha", "standard"])
    ap.add_argument("--work", default=str(pathlib.Path.home() / ".cache/promptist/bench-gpt2"))
    ap.add_argument("--skip-batch", action="store_true")
    ap.add_argument("--matmul", nargs="+", default=["packed", "ort"], choices=["packed", "ort"],
                    help="Rust CPU matrix products to run (packed: the engine's default on AVX-512F)")
    a = ap.parse_args()
    work = pathlib.Path(a.work)
    hf = work / "hf"
    bundle = work / f"bundle-{a.attention}"
    if not (hf / "config.json").exists():
        r = subprocess.run([str(dc.promptist_bin()), "make-tiny", "--out", str(hf), "--preset", "gpt2", "--tied",
                            "--seed", "0"], capture_output=True, text=True)
        if r.returncode:
            dc.fail(r.stderr)
    if not (bundle / "promptist.json").exists():
        r = subprocess.run([str(dc.promptist_bin()), "convert", str(hf), "--out", str(bundle), "--attention", a.attention],
                           capture_output=True, text=True)
        if r.returncode:
            dc.fail(r.stderr)
    ids = dc.prompt_ids(dc.PROMPTS)
    cases = [("1 prompt", dict(prompts=ids[:1]))]
    if not a.skip_batch:
        cases.append(("16 prompts, one batch", dict(prompts=ids[:16], batch=True)))
    rows = []
    for label, extra in cases:
        req = dict(strategy="beam", num_beams=8, length_penalty=-1.0, max_new_tokens=75, min_new_tokens=75,
                   num_return_sequences=1, **extra)
        ref = dc.run_hf(hf, req, work, threads=a.threads, repeat=a.repeat)
        hb, hc = min(ref["runs"]), min(ref["cpu"])
        for matmul in a.matmul:
            rust = dc.run_rust(bundle, req, work, threads=a.threads, repeat=a.repeat, matmul=matmul)
            rb = min(r["total"] for r in rust["runs"])
            rc = min(r["cpu"] for r in rust["runs"])
            same = [x["hypotheses"][0]["tokens"] for x in rust["results"]] == [x["hypotheses"][0]["tokens"] for x in ref["results"]]
            best = min(rust["runs"], key=lambda r: r["total"])
            rows.append((f"{label} [{matmul}]", rb, hb, rc, hc, rust["vm_hwm_kib"], ref["vm_hwm_kib"], same, best))
    print(f"\nGPT-2 117M shape (random weights), beam 8, 75 new tokens forced, {a.threads} threads, graph "
          f"attention={a.attention}, best of {a.repeat}; transformers {ref['transformers']} / torch {ref['torch']}")
    print(f"{'case':34s} {'rust s':>8s} {'hf s':>8s} {'ratio':>6s} {'rust cpu':>9s} {'hf cpu':>8s} {'cpu ratio':>9s} "
          f"{'rust RSS MiB':>12s} {'hf RSS MiB':>10s} same-ids")
    for label, rb, hb, rc, hc, rr, hr, same, best in rows:
        print(f"{label:34s} {rb:8.2f} {hb:8.2f} {hb / rb:6.2f} {rc:9.2f} {hc:8.2f} {hc / rc:9.2f} "
              f"{rr / 1024:12.0f} {hr / 1024:10.0f} {same}")
    for label, *_, best in rows:
        print(f"rust time split ({label}): " + ", ".join(f"{k} {v:.3f}" for k, v in best.items()))
    with open(os.environ.get("BENCH_DECODE_JSON", os.devnull), "w") as f:
        json.dump([r[:8] for r in rows], f)


if __name__ == "__main__":
    main()
