"""REAL-SIZE builds (opt-in: PROMPTIST_REAL_SIZE=1; several minutes with a debug CLI, ~4 GB RAM):
the SD 1.5 UNet (860M parameters), the SD 1.x VAE decoder, the SD 1.x text encoder and the
scorer's CLIP ViT-L/14 text and vision towers, exported from seeded random weights
(`export-sd --random-seed`, no checkpoint file needed), then for each graph:
- every weight of the reference architecture (diffusers / transformers built on the meta device,
  so no memory) is in the graph, none else, and the parameter count matches;
- onnxruntime loads it and one small forward pass gives the expected output shapes (finite values).
Values are not compared here (random weights; parity is tested on tiny configs in test_sd_graphs.py).
Set PROMPTIST_BIN to a release build to make the exports faster.
"""
import os
import time

import numpy as np
import pytest

import graphs_reference as ref
import reference_env

reference_env.require("onnxruntime", "torch", "transformers", "diffusers")  # fail, never skip
import torch  # noqa: E402
import transformers  # noqa: E402

torch.set_num_threads(2)

pytestmark = pytest.mark.skipif(os.environ.get("PROMPTIST_REAL_SIZE") != "1",
                                reason="real-size graph builds are opt-in: set PROMPTIST_REAL_SIZE=1 (minutes, ~4 GB RAM)")

SD15_UNET = dict(sample_size=64, in_channels=4, out_channels=4, layers_per_block=2, block_out_channels=(320, 640, 1280, 1280),
                 attention_head_dim=8, cross_attention_dim=768, norm_num_groups=32,
                 down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
                 up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3)
SD15_VAE = dict(in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(128, 256, 512, 512), layers_per_block=2,
                norm_num_groups=32, down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
                sample_size=512)


def meta(ctor):
    with torch.device("meta"):
        return ctor()


def numel(sd, keep):
    return sum(v.numel() for k, v in sd.items() if keep(k))


def build_and_check(tmp_path, graph, preset, keys, n_params, feeds, want_shapes, extra=()):
    t0 = time.time()
    path = ref.export(graph, tmp_path / graph / "model.onnx", "--random-seed", 7, "--preset", preset, *extra, check=False)
    t1 = time.time()
    got_keys, count = ref.consumed_keys(path)
    assert got_keys == keys, f"{graph}: missing {sorted(keys - got_keys)[:5]}, unknown {sorted(got_keys - keys)[:5]}"
    assert count == n_params, f"{graph}: {count} parameters, reference has {n_params}"
    sess = ref.session(path)
    outs = sess.run(None, feeds)
    t2 = time.time()
    for o, shape in zip(outs, want_shapes):
        assert o.shape == shape and np.isfinite(o).all(), (graph, o.shape, shape)
    print(f"{graph} {' '.join(extra)}: {n_params / 1e6:.1f}M parameters, export {t1 - t0:.0f}s, load+run {t2 - t1:.0f}s, outputs {[o.shape for o in outs]}")
    del sess


def test_real_size_unet(tmp_path):
    from diffusers import UNet2DConditionModel

    sd = meta(lambda: UNet2DConditionModel(**SD15_UNET)).state_dict()
    rng = np.random.default_rng(0)
    feeds = {"sample": rng.standard_normal((2, 4, 8, 8)).astype(np.float32), "timestep": np.array(999.0, np.float32),
             "encoder_hidden_states": rng.standard_normal((2, 77, 768)).astype(np.float32)}
    build_and_check(tmp_path, "unet", "sd15", set(sd), numel(sd, lambda k: True), feeds, [(2, 4, 8, 8)])


def test_real_size_unet_fp16_fused(tmp_path):
    """The fp16 export with fused attention (the GPU configuration) builds and runs too."""
    from diffusers import UNet2DConditionModel

    sd = meta(lambda: UNet2DConditionModel(**SD15_UNET)).state_dict()
    rng = np.random.default_rng(0)
    feeds = {"sample": rng.standard_normal((2, 4, 8, 8)).astype(np.float16), "timestep": np.array(999.0, np.float32),
             "encoder_hidden_states": rng.standard_normal((2, 77, 768)).astype(np.float16)}
    build_and_check(tmp_path, "unet", "sd15", set(sd), numel(sd, lambda k: True), feeds, [(2, 4, 8, 8)],
                    extra=("--dtype", "fp16", "--fused-attention"))


def test_real_size_vae_decoder(tmp_path):
    from diffusers import AutoencoderKL

    sd = meta(lambda: AutoencoderKL(**SD15_VAE)).state_dict()
    keep = lambda k: k.startswith("decoder.") or k.startswith("post_quant_conv.")  # noqa: E731
    feeds = {"latent_sample": np.random.default_rng(1).standard_normal((1, 4, 8, 8)).astype(np.float32)}
    build_and_check(tmp_path, "vae-decoder", "sd15", {k for k in sd if keep(k)}, numel(sd, keep), feeds, [(1, 3, 64, 64)])


def vit_l14_config():
    text = dict(vocab_size=49408, hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
                max_position_embeddings=77, hidden_act="quick_gelu", eos_token_id=2, bos_token_id=0, pad_token_id=1)
    vision = dict(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24, num_attention_heads=16, image_size=224,
                  patch_size=14, hidden_act="quick_gelu")
    return transformers.CLIPConfig(text_config=text, vision_config=vision, projection_dim=768)


def test_real_size_text_encoder(tmp_path):
    cfg = vit_l14_config().text_config
    sd = meta(lambda: transformers.CLIPTextModel(cfg)).state_dict()
    sd = {(k if k.startswith("text_model.") else f"text_model.{k}"): v for k, v in sd.items() if "position_ids" not in k}
    ids = np.full((1, 77), 49407, np.int64)
    ids[0, :3] = [49406, 320, 1125]
    build_and_check(tmp_path, "text-encoder", "sd15", set(sd), numel(sd, lambda k: True), {"input_ids": ids}, [(1, 77, 768), (1, 768)])


def test_real_size_clip_towers(tmp_path):
    sd = meta(lambda: transformers.CLIPModel(vit_l14_config())).state_dict()
    sd = {k: v for k, v in sd.items() if "position_ids" not in k}
    tk = lambda k: k.startswith("text_model.") or k == "text_projection.weight"  # noqa: E731
    vk = lambda k: k.startswith("vision_model.") or k == "visual_projection.weight"  # noqa: E731
    ids = np.full((2, 77), 49407, np.int64)
    ids[:, 0] = 49406
    build_and_check(tmp_path, "clip-text", "vit-l14", {k for k in sd if tk(k)}, numel(sd, tk), {"input_ids": ids}, [(2, 768)])
    pix = np.random.default_rng(2).standard_normal((1, 3, 224, 224)).astype(np.float32)
    build_and_check(tmp_path, "clip-vision", "vit-l14", {k for k in sd if vk(k)}, numel(sd, vk), {"pixel_values": pix}, [(1, 768)])
