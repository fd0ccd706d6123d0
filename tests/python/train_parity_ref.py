"""Reference logits for promptist-train's parity tests (training/tests/parity.rs).

python train_parity_ref.py CHECKPOINT_DIR IDS_JSON OUT.safetensors [MODEL.onnx]
  - hf_logits: transformers GPT2LMHeadModel.from_pretrained(CHECKPOINT_DIR) (a local folder, fp32,
    SDPA attention, eval mode) on the ids (a JSON list of equal-length rows);
  - onnx_logits (when MODEL.onnx is given): onnxruntime CPU on the exported graph with an all-ones
    attention mask, positions 0..T-1 and empty past key/values.
"""
import json
import sys

import numpy as np
import torch
from safetensors.numpy import save_file
from transformers import GPT2LMHeadModel


def main():
    ckpt, ids_path, out = sys.argv[1:4]
    onnx_path = sys.argv[4] if len(sys.argv) > 4 else None
    torch.set_num_threads(1)
    ids = np.array(json.load(open(ids_path)), dtype=np.int64)
    model = GPT2LMHeadModel.from_pretrained(ckpt, torch_dtype=torch.float32, attn_implementation="sdpa").eval()
    with torch.no_grad():
        hf = model(input_ids=torch.from_numpy(ids)).logits.float().numpy()
    res = {"hf_logits": np.ascontiguousarray(hf)}
    if onnx_path:
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.intra_op_num_threads = 1
        sess = ort.InferenceSession(onnx_path, so, providers=["CPUExecutionProvider"])
        cfg = model.config
        b, t = ids.shape
        hd = cfg.n_embd // cfg.n_head
        feed = {
            "input_ids": ids,
            "attention_mask": np.ones((b, t), dtype=np.int64),
            "position_ids": np.tile(np.arange(t, dtype=np.int64), (b, 1)),
        }
        for i in range(cfg.n_layer):
            for kv in ("key", "value"):
                feed[f"past_key_values.{i}.{kv}"] = np.zeros((b, cfg.n_head, 0, hd), dtype=np.float32)
        res["onnx_logits"] = np.ascontiguousarray(sess.run(["logits"], feed)[0].astype(np.float32))
    save_file(res, out)


if __name__ == "__main__":
    main()
