"""Reference for the pipeline-math test: writes into DIR random inputs and diffusers' results of
classifier-free guidance (as StableDiffusionPipeline: `uncond + g * (text - uncond)`), latent
scaling (`latents / vae.config.scaling_factor`) and `VaeImageProcessor.postprocess(...,
output_type="pil")` (RGB8 bytes). Raw little-endian files; prints shapes as JSON.

usage: score_postprocess_ref.py DIR
"""
import json
import os
import sys

import numpy as np
import torch
from diffusers.image_processor import VaeImageProcessor

torch.set_num_threads(1)


def main():
    out = sys.argv[1]
    g = torch.Generator().manual_seed(3)
    unet = torch.randn(4, 4, 16, 16, generator=g) * 2
    uncond, text = unet.chunk(2)
    guidance = 7.5
    cfg = uncond + guidance * (text - uncond)
    latents = torch.randn(2, 4, 16, 16, generator=g) * 3
    scaled = latents / 0.18215
    decoded = torch.randn(2, 3, 24, 40, generator=g) * 0.8
    pil = VaeImageProcessor().postprocess(decoded, output_type="pil")
    rgb = np.stack([np.asarray(p) for p in pil])  # [2, 24, 40, 3] uint8
    for name, t in [("unet", unet), ("cfg", cfg), ("latents", latents), ("scaled", scaled), ("decoded", decoded)]:
        t.numpy().astype("<f4").tofile(os.path.join(out, name + ".f32"))
    rgb.tofile(os.path.join(out, "rgb.u8"))
    json.dump({"guidance": guidance, "scaling_factor": 0.18215, "decoded": [2, 3, 24, 40]}, sys.stdout)


if __name__ == "__main__":
    main()
