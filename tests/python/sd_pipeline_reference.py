"""Helpers for the SD pipeline parity test: a tiny diffusers Stable Diffusion folder with seeded
random weights (transformers 5.23 CLIPTextModel with CLIP's full vocabulary, diffusers 0.42
UNet2DConditionModel and 4-block AutoencoderKL so the VAE scale is 8 as in SD), a tiny
transformers CLIPModel as the scorer, transformers' CLIPTokenizer built from CLIP's merges, an
empty promptist bundle and `promptist add-score --diffusers` to convert it.
"""
import gzip
import json
import subprocess
from pathlib import Path

import graphs_reference as ref

CLIP_BPE = ref.AESTHETIC_PTH.parent.parent / "clip" / "bpe_simple_vocab_16e6.txt.gz"

SCHEDULER = {
    "_class_name": "DPMSolverMultistepScheduler", "num_train_timesteps": 1000, "beta_start": 0.00085,
    "beta_end": 0.012, "beta_schedule": "scaled_linear", "algorithm_type": "dpmsolver++", "solver_order": 2,
    "solver_type": "midpoint", "lower_order_final": True, "prediction_type": "epsilon",
    "timestep_spacing": "linspace", "steps_offset": 1,
}


def clip_tokenizer():
    from transformers import CLIPTokenizer
    from open_clip.tokenizer import bytes_to_unicode

    merges = gzip.open(CLIP_BPE).read().decode("utf-8").split("\n")[1:49152 - 256 - 2 + 1]
    vocab = list(bytes_to_unicode().values())
    vocab = vocab + [v + "</w>" for v in vocab]
    vocab += ["".join(m.split()) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    return CLIPTokenizer(vocab={t: i for i, t in enumerate(vocab)}, merges=[tuple(m.split()) for m in merges],
                         unk_token="<|endoftext|>", bos_token="<|startoftext|>", eos_token="<|endoftext|>",
                         pad_token="<|endoftext|>", model_max_length=77)


def make_models(seed=0):
    import torch
    import transformers
    from diffusers import AutoencoderKL, DPMSolverMultistepScheduler, UNet2DConditionModel

    torch.manual_seed(seed)
    text_cfg = transformers.CLIPTextConfig(vocab_size=49408, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
                                           num_attention_heads=4, max_position_embeddings=77, hidden_act="quick_gelu",
                                           eos_token_id=49407, bos_token_id=49406, pad_token_id=49407)
    text = ref.randomize(transformers.CLIPTextModel(text_cfg), seed + 1)
    unet = ref.randomize(UNet2DConditionModel(
        sample_size=8, in_channels=4, out_channels=4, layers_per_block=1, cross_attention_dim=32, norm_num_groups=8,
        block_out_channels=(32, 64), attention_head_dim=2,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "CrossAttnUpBlock2D")), seed + 2)
    vae = ref.randomize(AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(16, 16, 32, 32), layers_per_block=1,
        norm_num_groups=8, down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
        sample_size=64), seed + 3)
    sched = DPMSolverMultistepScheduler.from_config(SCHEDULER)
    return text, unet, vae, sched


def make_scorer_clip(seed=10):
    import torch
    import transformers

    torch.manual_seed(seed)
    text = dict(vocab_size=49408, hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
                max_position_embeddings=77, hidden_act="quick_gelu", eos_token_id=49407, bos_token_id=49406, pad_token_id=0)
    vision = dict(hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4, image_size=224,
                  patch_size=32, hidden_act="quick_gelu")
    cfg = transformers.CLIPConfig(text_config=text, vision_config=vision, projection_dim=768)
    return ref.randomize(transformers.CLIPModel(cfg), seed + 1)


def save_diffusers(folder, text, unet, vae, sched):
    folder = Path(folder)
    for sub in ("text_encoder", "unet", "vae", "scheduler"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    ref.save_weights(text.state_dict(), folder / "text_encoder" / "model.safetensors")
    text.config.to_json_file(str(folder / "text_encoder" / "config.json"), use_diff=False)
    ref.save_weights(unet.state_dict(), folder / "unet" / "diffusion_pytorch_model.safetensors")
    unet.save_config(folder / "unet")
    ref.save_weights(vae.state_dict(), folder / "vae" / "diffusion_pytorch_model.safetensors")
    vae.save_config(folder / "vae")
    sched.save_config(folder / "scheduler")
    return folder


def save_clip(folder, clip):
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    ref.save_weights(clip.state_dict(), folder / "model.safetensors")
    clip.config.to_json_file(str(folder / "config.json"), use_diff=False)
    return folder / "model.safetensors"


def empty_bundle(folder):
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "promptist.json").write_text(json.dumps({
        "format_version": 1, "name": "sd-parity", "description": "seeded random tiny SD (test)",
        "provenance": {"source": "pytest", "producer": "tests/python", "random_weights": True}, "components": {}}))
    return folder


def run(*args):
    cmd = [str(ref.promptist_bin()), *map(str, args)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stderr}")
    return r
