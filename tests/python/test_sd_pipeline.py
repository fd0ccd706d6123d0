"""The whole promptist SD pipeline against diffusers 0.42 `StableDiffusionPipeline` on identical
seeded random weights (tiny config: CLIP text encoder with the real vocabulary and tokenizer, UNet,
4-block VAE, DPM-Solver++ multistep), fed the same initial latents (promptist's seeded latents,
dumped by `promptist sd-generate`): classifier-free guidance 7.5, no negative prompt, 2 images per
prompt. The final images (float, [0, 1]) must agree within 1e-3 mean abs (every element compared;
the max abs difference is printed too). The bundle is made by `promptist add-score --diffusers`
from the diffusers folder, so the converter is exercised as well.
Needs the reference venv and the built CLI (PROMPTIST_BIN, default target/debug/promptist).
"""
import numpy as np
import pytest

import sd_pipeline_reference as sref

try:
    import torch
    import diffusers  # noqa: F401
    import transformers  # noqa: F401
except ImportError as e:  # fail, never skip
    raise AssertionError(f"reference Python packages missing ({e}); use ~/.cache/promptist/venv/bin/python") from e

torch.set_num_threads(1)
MEAN_TOL = 1e-3


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sdpipe")
    text, unet, vae, sched = sref.make_models()
    folder = sref.save_diffusers(tmp / "sd", text, unet, vae, sched)
    clip = sref.save_clip(tmp / "clip", sref.make_scorer_clip())
    bundle = sref.empty_bundle(tmp / "bundle")
    sref.run("add-score", "--bundle", bundle, "--diffusers", folder, "--clip", clip, "--clip-bpe", sref.CLIP_BPE,
             "--aesthetic", sref.ref.AESTHETIC_PTH)
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline(vae=vae, text_encoder=text, tokenizer=sref.clip_tokenizer(), unet=unet, scheduler=sched,
                                   safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    return tmp, bundle, pipe


@pytest.mark.parametrize("prompt,seed,images,width,height,steps", [
    ("a photo of a cat sitting on a red chair, highly detailed", 3, 2, 64, 64, 4),
    ("Mountains at dawn", 11, 1, 48, 64, 6),
])
def test_pipeline_matches_diffusers(setup, prompt, seed, images, width, height, steps):
    tmp, bundle, pipe = setup
    lat_path, img_path = tmp / f"lat{seed}.f32", tmp / f"img{seed}.f32"
    sref.run("sd-generate", "--bundle", bundle, "--prompt", prompt, "--seed", seed, "--images", images, "--width", width,
             "--height", height, "--steps", steps, "--latents-out", lat_path, "--image-out", img_path)
    lat = np.fromfile(lat_path, dtype="<f4").reshape(images, 4, height // 8, width // 8)
    ours = np.fromfile(img_path, dtype="<f4").reshape(images, height, width, 3)
    assert abs(float(lat.std()) - 1.0) < 0.3, "the seeded latents should be standard normal"
    with torch.no_grad():
        want = pipe(prompt, height=height, width=width, num_inference_steps=steps, guidance_scale=7.5,
                    num_images_per_prompt=images, latents=torch.from_numpy(lat.copy()), output_type="np").images
    assert want.shape == ours.shape, (want.shape, ours.shape)
    diff = np.abs(want.astype(np.float64) - ours.astype(np.float64))
    spread = float(want.std())
    print(f"pipeline({prompt[:20]!r}, {width}x{height}, {steps} steps, {images} img): mean abs {diff.mean():.3e} "
          f"max abs {diff.max():.3e} (tol mean {MEAN_TOL}); image std {spread:.3f}")
    assert spread > 1e-2, "the reference image is degenerate (constant): the test would prove nothing"
    assert diff.mean() <= MEAN_TOL, f"mean abs diff {diff.mean()} > {MEAN_TOL}"
