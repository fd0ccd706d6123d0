"""Reference for the aesthetic-head test: loads the real LAION head (.pth) with torch, writes its
state dict as safetensors to OUT, evaluates the reference module (torch, f32) on N random unit
vectors and prints JSON {"inputs": [[...]], "scores": [...]}.

usage: score_aesthetic_ref.py PTH OUT_SAFETENSORS N SEED
"""
import json
import sys

import numpy as np
import torch
from safetensors.torch import save_file

torch.set_num_threads(1)


def main():
    pth, out, n, seed = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    sd = torch.load(pth, map_location="cpu", weights_only=True)
    save_file({k: v.contiguous().float() for k, v in sd.items()}, out)
    # The reference module (improved-aesthetic-predictor's MLP at eval: dropout off, no ReLU).
    mlp = torch.nn.Sequential(
        torch.nn.Linear(768, 1024), torch.nn.Dropout(0.2),
        torch.nn.Linear(1024, 128), torch.nn.Dropout(0.2),
        torch.nn.Linear(128, 64), torch.nn.Dropout(0.1),
        torch.nn.Linear(64, 16),
        torch.nn.Linear(16, 1),
    )
    mlp.load_state_dict({k.removeprefix("layers."): v for k, v in sd.items()})
    mlp.eval()
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 768)).astype(np.float32)
    x = torch.from_numpy(x)
    x = x / x.norm(dim=-1, keepdim=True)
    with torch.no_grad():
        y = mlp(x)[:, 0]
    json.dump({"inputs": x.tolist(), "scores": y.tolist(), "keys": sorted(sd.keys())}, sys.stdout)


if __name__ == "__main__":
    main()
