"""Reference for the CLIP preprocessing test: writes random RGB8 images of several sizes into DIR
(img_K.rgb, row-major HxWx3) and open_clip's eval transform of each (ref_K.f32, 3x224x224 LE f32,
`image_transform(224, is_train=False)` with OpenAI CLIP mean/std on a PIL image), and 60 random
plain resizes (rs_K.rgb -> rs_K.out, Pillow `resize(..., BICUBIC)`, up and down, both pass
orders); prints {"images": [[w, h], ...], "resize": [[w, h, new_w, new_h], ...]} as JSON.

usage: score_clip_preprocess_ref.py DIR
"""
import json
import os
import sys

import numpy as np
import torch
from PIL import Image

torch.set_num_threads(1)
from open_clip.constants import OPENAI_DATASET_MEAN, OPENAI_DATASET_STD  # noqa: E402
from open_clip.transform import image_transform  # noqa: E402

SIZES = [(512, 512), (256, 256), (224, 224), (640, 480), (300, 500), (1000, 225), (225, 1000),
         (100, 150), (333, 777), (512, 768)]


def image(rng, w, h, kind):
    if kind == 0:  # pure noise: the hardest case for resampling
        return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    # smooth gradients + blobs + a little noise, closer to generated images
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.zeros((h, w, 3), np.float32)
    for c in range(3):
        fx, fy, ph = rng.uniform(0.005, 0.05, 2).tolist() + [rng.uniform(0, 6.28)]
        img[..., c] = 127 + 100 * np.sin(xx * fx + yy * fy + ph)
    img += rng.normal(0, 12, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def main():
    out = sys.argv[1]
    rng = np.random.default_rng(5)
    tf = image_transform(224, is_train=False, mean=OPENAI_DATASET_MEAN, std=OPENAI_DATASET_STD)
    shapes = []
    for k, (w, h) in enumerate(SIZES):
        arr = image(rng, w, h, k % 2)
        arr.tofile(os.path.join(out, f"img_{k}.rgb"))
        t = tf(Image.fromarray(arr, "RGB"))
        assert tuple(t.shape) == (3, 224, 224)
        t.numpy().astype("<f4").tofile(os.path.join(out, f"ref_{k}.f32"))
        shapes.append([w, h])
    pairs = []
    for k in range(60):
        w, h = (int(v) for v in rng.integers(8, 300, 2))
        nw, nh = (int(v) for v in rng.integers(4, 300, 2))
        if k % 3 == 0:  # height shrinks more than twice the width: Pillow's vertical-first order
            nw, nh = max(4, w - int(rng.integers(0, 10))), max(4, h - int(rng.integers(25, 60)))
        arr = image(rng, w, h, k % 2)
        arr.tofile(os.path.join(out, f"rs_{k}.rgb"))
        res = np.asarray(Image.fromarray(arr, "RGB").resize((nw, nh), Image.BICUBIC))
        res.tofile(os.path.join(out, f"rs_{k}.out"))
        pairs.append([w, h, nw, nh])
    json.dump({"images": shapes, "resize": pairs}, sys.stdout)


if __name__ == "__main__":
    main()
