"""Reference SFT step for promptist-train's benchmark: plain PyTorch + transformers GPT2LMHeadModel
(SDPA attention, dropout 0), torch.optim.AdamW with the paper's settings, labels = input_ids.
Prints one JSON line {"tokens_per_s": ...}. Random init from a config: no model hub."""
import argparse, json, time

import torch
from transformers import GPT2Config, GPT2LMHeadModel


def main():
    ap = argparse.ArgumentParser()
    for k in ["n-layer", "n-head", "n-embd", "n-positions", "vocab-size", "batch", "seq", "steps", "warmup", "threads"]:
        ap.add_argument("--" + k, type=int, required=True)
    ap.add_argument("--device", default="cpu")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    cfg = GPT2Config(n_layer=a.n_layer, n_head=a.n_head, n_embd=a.n_embd, n_positions=a.n_positions, vocab_size=a.vocab_size,
                     resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, attn_implementation="sdpa")
    model = GPT2LMHeadModel(cfg).to(a.device).train()
    decay = [p for n, p in model.named_parameters() if not (n.endswith(".bias") or ".ln_" in n)]
    no_decay = [p for n, p in model.named_parameters() if n.endswith(".bias") or ".ln_" in n]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=5e-5, betas=(0.9, 0.999), eps=1e-6)
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, a.vocab_size, (a.batch, a.seq), generator=g).to(a.device)
    elapsed = 0.0
    for s in range(a.warmup + a.steps):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=False)
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        opt.step()
        if a.device.startswith("cuda"):
            torch.cuda.synchronize()
        loss.item()
        if s >= a.warmup:
            elapsed += time.perf_counter() - t0
    print(json.dumps({"tokens_per_s": a.batch * a.seq * a.steps / elapsed, "loss": loss.item()}))


if __name__ == "__main__":
    main()
