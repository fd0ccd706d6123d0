"""Reference GPT-2 ONNX export by torch tracing (a hand-written GPT-2 forward over a Hugging Face
GPT2LMHeadModel's weights) with optimum's I/O names. A decoding-test aid only: the library's own
exporter (src/export) is what bundles use; this lets the decoder be checked independently of it.

Usage: decode_torch_onnx.py HF_DIR OUT.onnx
"""
import math
import sys

import torch


class Gpt2Kv(torch.nn.Module):
    def __init__(self, hf):
        super().__init__()
        self.hf = hf
        self.cfg = hf.config

    def forward(self, input_ids, attention_mask, position_ids, *past):
        cfg = self.cfg
        tr = self.hf.transformer
        nh = cfg.n_head
        hd = cfg.n_embd // nh
        h = tr.wte(input_ids) + tr.wpe(position_ids)
        b, s = input_ids.shape
        total = attention_mask.shape[1]
        past_len = total - s
        q_pos = torch.arange(s).unsqueeze(1) + past_len
        k_pos = torch.arange(total).unsqueeze(0)
        allowed = (k_pos <= q_pos).unsqueeze(0) & (attention_mask.unsqueeze(1) > 0)
        bias = torch.where(allowed, 0.0, torch.finfo(torch.float32).min).unsqueeze(1)
        presents = []
        for i, blk in enumerate(tr.h):
            a = blk.ln_1(h)
            qkv = blk.attn.c_attn(a)
            q, k, v = qkv.split(cfg.n_embd, dim=2)
            q = q.view(b, s, nh, hd).transpose(1, 2)
            k = k.view(b, s, nh, hd).transpose(1, 2)
            v = v.view(b, s, nh, hd).transpose(1, 2)
            k = torch.cat([past[2 * i], k], dim=2)
            v = torch.cat([past[2 * i + 1], v], dim=2)
            presents += [k, v]
            att = (q @ k.transpose(-1, -2)) / math.sqrt(hd) + bias
            att = torch.softmax(att, dim=-1)
            o = (att @ v).transpose(1, 2).reshape(b, s, cfg.n_embd)
            h = h + blk.attn.c_proj(o)
            m = blk.mlp.c_proj(blk.mlp.act(blk.mlp.c_fc(blk.ln_2(h))))
            h = h + m
        h = tr.ln_f(h)
        logits = self.hf.lm_head(h)
        return (logits, *presents)


def export(hf, path):
    cfg = hf.config
    nl, nh, hd = cfg.n_layer, cfg.n_head, cfg.n_embd // cfg.n_head
    ids = torch.tensor([[1, 2, 3]], dtype=torch.int64)
    mask = torch.ones(1, 5, dtype=torch.int64)
    pos = torch.tensor([[2, 3, 4]], dtype=torch.int64)
    past = [torch.zeros(1, nh, 2, hd) for _ in range(2 * nl)]
    in_names = ["input_ids", "attention_mask", "position_ids"]
    out_names = ["logits"]
    dyn = {"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "total"},
           "position_ids": {0: "batch", 1: "seq"}, "logits": {0: "batch", 1: "seq"}}
    for i in range(nl):
        for kv in ("key", "value"):
            n = f"past_key_values.{i}.{kv}"
            in_names.append(n)
            dyn[n] = {0: "batch", 2: "past"}
            p = f"present.{i}.{kv}"
            out_names.append(p)
            dyn[p] = {0: "batch", 2: "total"}
    with torch.no_grad():
        torch.onnx.export(Gpt2Kv(hf).eval(), (ids, mask, pos, *past), path, dynamo=False,
                          input_names=in_names, output_names=out_names, dynamic_axes=dyn, opset_version=17)


if __name__ == "__main__":
    from transformers import GPT2LMHeadModel
    m = GPT2LMHeadModel.from_pretrained(sys.argv[1]).eval()
    export(m, sys.argv[2])
