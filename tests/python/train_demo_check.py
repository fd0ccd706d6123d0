"""Greedy rewrites by a bundle's ONNX policy under onnxruntime (full recompute, empty past), for
promptist-train's demo-bundle test: prints one JSON line {"source", "output"} per source.

python train_demo_check.py BUNDLE_DIR SOURCE...
Input format as docs/method.md §1: source.strip() + " Rephrase:", no BOS; stop at eos_token_id.
"""
import json
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer


def main():
    bundle = Path(sys.argv[1])
    cfg = json.load(open(bundle / "policy" / "config.json"))
    tok = Tokenizer.from_file(str(bundle / "policy" / "tokenizer.json"))
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(bundle / "policy" / "model.onnx"), so, providers=["CPUExecutionProvider"])
    eos, nh, hd = cfg["eos_token_id"], cfg["n_head"], cfg["n_embd"] // cfg["n_head"]
    for src in sys.argv[2:]:
        ids = tok.encode(src.strip() + " Rephrase:", add_special_tokens=False).ids
        start = len(ids)
        while len(ids) - start < 75 and len(ids) < cfg["n_positions"]:
            x = np.array([ids], dtype=np.int64)
            feed = {"input_ids": x, "attention_mask": np.ones_like(x), "position_ids": np.arange(len(ids), dtype=np.int64)[None]}
            for i in range(cfg["n_layer"]):
                for kv in ("key", "value"):
                    feed[f"past_key_values.{i}.{kv}"] = np.zeros((1, nh, 0, hd), dtype=np.float32)
            nxt = int(sess.run(["logits"], feed)[0][0, -1].argmax())
            if nxt == eos:
                break
            ids.append(nxt)
        print(json.dumps({"source": src, "output": tok.decode(ids[start:], skip_special_tokens=True).strip()}))


if __name__ == "__main__":
    main()
