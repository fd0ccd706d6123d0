"""Re-save a local GPT-2 checkpoint folder as `pytorch_model.bin` (torch.save of the full
GPT2LMHeadModel state_dict, tied lm_head.weight included) for promptist-train's loader test.

python train_to_bin.py SRC_DIR DST_DIR
"""
import shutil
import sys
from pathlib import Path

import torch
from transformers import GPT2LMHeadModel


def main():
    src, dst = Path(sys.argv[1]), Path(sys.argv[2])
    dst.mkdir(parents=True, exist_ok=True)
    model = GPT2LMHeadModel.from_pretrained(src, torch_dtype=torch.float32)
    torch.save(model.state_dict(), dst / "pytorch_model.bin")
    for f in ("config.json", "tokenizer.json", "tokenizer_config.json"):
        if (src / f).exists():
            shutil.copy(src / f, dst / f)


if __name__ == "__main__":
    main()
