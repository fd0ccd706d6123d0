"""Run transformers `generate()` on token-id prompts from a JSON request (the same request format
as `promptist bench --ids-json`) and print a JSON report: generated ids per returned sequence (cut
at the first EOS), sequence scores, wall time per run, peak RSS.

Usage: decode_hf_generate.py HF_DIR REQUEST.json [--threads N] [--repeat N]
Group (diverse) beam search needs transformers 4.53.3 (PYTHONPATH=~/.cache/promptist/tf4).
"""
import argparse
import json
import time

import torch
import transformers
from transformers import GPT2LMHeadModel

EOS = 50256


def vm_hwm_kib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return None


def gen_kwargs(req):
    kw = dict(max_new_tokens=req.get("max_new_tokens", 75), eos_token_id=EOS, pad_token_id=EOS,
              num_return_sequences=req.get("num_return_sequences", 1))
    if req.get("min_new_tokens"):
        kw["min_new_tokens"] = req["min_new_tokens"]
    s = req.get("strategy", "beam")
    if s == "greedy":
        kw.update(do_sample=False, num_beams=1)
    elif s in ("beam", "diverse"):
        kw.update(do_sample=False, num_beams=req.get("num_beams", 8), length_penalty=req.get("length_penalty", -1.0),
                  output_scores=True, return_dict_in_generate=True)
        es = req.get("early_stopping")
        if es is not None:
            kw["early_stopping"] = {"true": True, "false": False, "heuristic": False, "never": "never"}[es]
        if s == "diverse":
            kw.update(num_beam_groups=req["num_beam_groups"], diversity_penalty=req["diversity_penalty"])
    else:
        raise SystemExit(f"strategy {s} has no deterministic reference")
    return kw


def run(model, req):
    kw = gen_kwargs(req)
    prompts = req["prompts"]
    groups = [prompts] if req.get("batch") else [[p] for p in prompts]
    out = []
    for g in groups:
        L = max(len(p) for p in g)
        ids = torch.tensor([[EOS] * (L - len(p)) + p for p in g], dtype=torch.long)
        mask = torch.tensor([[0] * (L - len(p)) + [1] * len(p) for p in g], dtype=torch.long)
        with torch.no_grad():
            r = model.generate(input_ids=ids, attention_mask=mask, **kw)
        seqs = r.sequences if hasattr(r, "sequences") else r
        scores = getattr(r, "sequences_scores", None) if hasattr(r, "sequences") else None
        m = kw["num_return_sequences"]
        for i in range(len(g)):
            hyps = []
            for j in range(m):
                row = seqs[i * m + j, L:].tolist()
                toks = row[: row.index(EOS)] if EOS in row else row
                hyps.append({"tokens": toks, "score": None if scores is None else float(scores[i * m + j])})
            out.append({"hypotheses": hyps})
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("hf_dir")
    ap.add_argument("request")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    req = json.load(open(a.request))
    model = GPT2LMHeadModel.from_pretrained(a.hf_dir).eval()
    runs, results = [], None
    for _ in range(max(1, a.repeat)):
        t = time.perf_counter()
        res = run(model, req)
        runs.append(time.perf_counter() - t)
        results = results or res
    print(json.dumps({"results": results, "runs": runs, "vm_hwm_kib": vm_hwm_kib(),
                      "transformers": transformers.__version__, "torch": torch.__version__, "threads": a.threads}))


if __name__ == "__main__":
    main()
