"""Benchmark (not a timed test): latency of one Promptist score (user prompt x and one candidate y,
2 images each, DPM-Solver++, guidance 7.5, CLIP ViT-L/14 relevance + LAION aesthetic head) on
real-size graphs with random weights (SD 1.5 text encoder / UNet / VAE, CLIP ViT-L/14), promptist
(C ABI through ctypes, ONNX Runtime CPU, fp32) against diffusers 0.42 + transformers 5.23 (torch
CPU, fp32) on the SAME weights, same machine, same run. Prints both latencies, the ratio and each
side's peak RSS (each side runs in its own process).

    ORT_DYLIB_PATH=... ~/.cache/promptist/venv/bin/python tests/python/bench_score.py \
        [--work DIR] [--size 256] [--steps 4] [--threads 2] [--repeat 2] [--fused-attention]

--work keeps the generated weights and bundle (about 6 GB) between runs. The first run builds them:
diffusers/transformers models from their SD 1.5 / ViT-L/14 configs with their default random
init, saved as a diffusers folder + CLIPModel safetensors, converted by
`promptist add-score --diffusers ... --clip ...` into a bundle next to a tiny random policy.
"""
import argparse
import ctypes
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import graphs_reference as ref  # noqa: E402
import sd_pipeline_reference as sref  # noqa: E402

X = "a red fox in the snow"
Y = "a red fox in the snow, highly detailed, digital painting, artstation, concept art, sharp focus"


def build(work, fused=False):
    import torch
    import transformers
    from diffusers import AutoencoderKL, DPMSolverMultistepScheduler, UNet2DConditionModel

    sd, clip_dir, bundle = work / "sd15", work / "clip-l14", work / ("bundle-fused" if fused else "bundle")
    if (bundle / "unet" / "model.onnx").is_file():
        return bundle
    if (clip_dir / "model.safetensors").is_file():
        return convert(work, sd, clip_dir, bundle, fused)
    torch.manual_seed(0)
    for sub in ("text_encoder", "unet", "vae", "scheduler"):
        (sd / sub).mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    text_cfg = transformers.CLIPTextConfig(vocab_size=49408, hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                                           num_attention_heads=12, max_position_embeddings=77, hidden_act="quick_gelu",
                                           eos_token_id=2, bos_token_id=0, pad_token_id=1, projection_dim=768)
    m = transformers.CLIPTextModel(text_cfg).eval()
    ref.save_weights(m.state_dict(), sd / "text_encoder" / "model.safetensors")
    text_cfg.to_json_file(str(sd / "text_encoder" / "config.json"), use_diff=False)
    del m
    unet = UNet2DConditionModel(sample_size=64, cross_attention_dim=768, attention_head_dim=8,
                                block_out_channels=(320, 640, 1280, 1280), layers_per_block=2,
                                down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
                                up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3)
    ref.save_weights(unet.state_dict(), sd / "unet" / "diffusion_pytorch_model.safetensors")
    unet.save_config(sd / "unet")
    del unet
    vae = AutoencoderKL(block_out_channels=(128, 256, 512, 512), layers_per_block=2, latent_channels=4,
                        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4, sample_size=512)
    ref.save_weights(vae.state_dict(), sd / "vae" / "diffusion_pytorch_model.safetensors")
    vae.save_config(sd / "vae")
    del vae
    DPMSolverMultistepScheduler.from_config(sref.SCHEDULER).save_config(sd / "scheduler")
    clip_cfg = transformers.CLIPConfig(
        text_config=dict(vocab_size=49408, hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
                         max_position_embeddings=77, hidden_act="quick_gelu", eos_token_id=2, bos_token_id=0, pad_token_id=1),
        vision_config=dict(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24, num_attention_heads=16, image_size=224,
                           patch_size=14, hidden_act="quick_gelu"),
        projection_dim=768)
    clip = transformers.CLIPModel(clip_cfg).eval()
    sref.save_clip(clip_dir, clip)
    del clip
    print(f"bench: reference weights written in {time.time() - t0:.0f} s", file=sys.stderr)
    return convert(work, sd, clip_dir, bundle, fused)


def convert(work, sd, clip_dir, bundle, fused):
    t0 = time.time()
    if not (work / "policy-ck" / "config.json").is_file():
        sref.run("make-tiny", "--out", work / "policy-ck", "--seed", "1")
    sref.run("convert", "--checkpoint", work / "policy-ck", "--out", bundle)
    sref.run("add-score", "--bundle", bundle, "--diffusers", sd, "--clip", clip_dir / "model.safetensors",
             "--clip-bpe", sref.CLIP_BPE, "--aesthetic", ref.AESTHETIC_PTH, *(["--fused-attention"] if fused else []))
    print(f"bench: promptist bundle converted in {time.time() - t0:.0f} s", file=sys.stderr)
    return bundle


class ScoreOptions(ctypes.Structure):
    _fields_ = [("struct_size", ctypes.c_size_t), ("width", ctypes.c_uint32), ("height", ctypes.c_uint32),
                ("steps", ctypes.c_uint32), ("guidance_scale", ctypes.c_float), ("images_per_prompt", ctypes.c_uint32),
                ("seed", ctypes.c_uint64), ("scheduler", ctypes.c_int32), ("max_batch", ctypes.c_uint32),
                ("return_images", ctypes.c_int32), ("progress", ctypes.c_void_p), ("user_data", ctypes.c_void_p),
                ("cancel_flag", ctypes.c_void_p)]


class EngineOptions(ctypes.Structure):
    _fields_ = [("struct_size", ctypes.c_size_t), ("ort_library_path", ctypes.c_char_p), ("provider", ctypes.c_int32),
                ("device_id", ctypes.c_int32), ("intra_op_threads", ctypes.c_uint32), ("skip_checksums", ctypes.c_int32)]


def run_promptist(args):
    lib = ctypes.CDLL(str(Path(os.environ.get("PROMPTIST_LIB", ref.REPO / "target" / "debug" / "libpromptist.so"))))
    lib.promptist_score_result_reward.restype = ctypes.c_double
    eo = EngineOptions()
    assert lib.promptist_engine_options_init(ctypes.byref(eo), ctypes.sizeof(eo)) == 0
    eo.intra_op_threads = args.threads
    eo.skip_checksums = 1
    engine, err = ctypes.c_void_p(), ctypes.c_void_p()
    t0 = time.time()
    s = lib.promptist_engine_open(str(args.bundle).encode(), ctypes.byref(eo), ctypes.byref(engine), ctypes.byref(err))
    assert s == 0, f"engine_open status {s}"
    load = time.time() - t0
    times, rewards = [], []
    for i in range(args.repeat):
        o = ScoreOptions()
        assert lib.promptist_score_options_init(ctypes.byref(o), ctypes.sizeof(o)) == 0
        o.width = o.height = args.size
        o.steps = args.steps
        o.seed = 1000 + i  # a new seed each run: the x-baseline cache never hits
        o.max_batch = 2
        r = ctypes.c_void_p()
        t0 = time.time()
        s = lib.promptist_score(engine, X.encode(), Y.encode(), ctypes.byref(o), ctypes.byref(r), ctypes.byref(err))
        times.append(time.time() - t0)
        assert s == 0, f"score status {s}"
        rewards.append(lib.promptist_score_result_reward(r, 0))
        lib.promptist_score_result_free(r)
    lib.promptist_engine_free(engine)
    return dict(load_s=load, times_s=times, rewards=rewards)


def run_diffusers(args):
    import numpy as np
    import torch
    import transformers
    from diffusers import AutoencoderKL, DPMSolverMultistepScheduler, StableDiffusionPipeline, UNet2DConditionModel

    torch.set_num_threads(args.threads)
    sd = args.work / "sd15"
    t0 = time.time()
    pipe = StableDiffusionPipeline(
        vae=AutoencoderKL.from_pretrained(sd / "vae"), text_encoder=transformers.CLIPTextModel.from_pretrained(sd / "text_encoder"),
        tokenizer=sref.clip_tokenizer(), unet=UNet2DConditionModel.from_pretrained(sd / "unet"),
        scheduler=DPMSolverMultistepScheduler.from_pretrained(sd / "scheduler"), safety_checker=None, feature_extractor=None,
        requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    clip = transformers.CLIPModel.from_pretrained(args.work / "clip-l14").eval()
    proc = transformers.CLIPImageProcessor()  # CLIP's defaults: shortest side 224 bicubic, center crop, CLIP mean/std
    sd_aes = torch.load(ref.AESTHETIC_PTH, map_location="cpu")
    aes = torch.nn.Sequential(torch.nn.Linear(768, 1024), torch.nn.Dropout(0.2), torch.nn.Linear(1024, 128), torch.nn.Dropout(0.2),
                              torch.nn.Linear(128, 64), torch.nn.Dropout(0.1), torch.nn.Linear(64, 16), torch.nn.Linear(16, 1)).eval()
    aes.load_state_dict({k.removeprefix("layers."): v for k, v in sd_aes.items()})
    tok = sref.clip_tokenizer()
    load = time.time() - t0
    times, rewards = [], []
    for i in range(args.repeat):
        g = torch.Generator().manual_seed(1000 + i)
        t0 = time.time()
        with torch.no_grad():
            imgs = {}
            for name, p in (("x", X), ("y", Y)):
                g.manual_seed(1000 + i)
                imgs[name] = pipe(p, height=args.size, width=args.size, num_inference_steps=args.steps, guidance_scale=7.5,
                                  num_images_per_prompt=2, generator=g, output_type="pil").images
            def img_feat(ims):
                f = clip.get_image_features(**proc(images=ims, return_tensors="pt"))
                return getattr(f, "pooler_output", f)
            fx, fy = img_feat(imgs["x"]), img_feat(imgs["y"])
            t = clip.get_text_features(**tok([X], padding="max_length", max_length=77, truncation=True, return_tensors="pt"))
            t = getattr(t, "pooler_output", t)
            a = lambda f: aes((f / f.norm(dim=-1, keepdim=True)).double().float()).squeeze(-1)  # noqa: E731
            sim = torch.nn.functional.cosine_similarity(fy, t)
            r = (a(fy) - a(fx).mean() + torch.clamp(20 * sim.clamp(min=0) - 5.6, max=0)).mean()
        times.append(time.time() - t0)
        rewards.append(float(r))
    return dict(load_s=load, times_s=times, rewards=rewards)


def child(kind, args):
    out = run_promptist(args) if kind == "promptist" else run_diffusers(args)
    out["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(out))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", type=Path, default=Path("/tmp/promptist-bench-score"))
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--child", choices=["promptist", "diffusers"])
    ap.add_argument("--bundle", type=Path)
    ap.add_argument("--fused-attention", action="store_true",
                    help="promptist graphs with ONNX Runtime's fused MultiHeadAttention (a separate bundle)")
    args = ap.parse_args()
    if args.child:
        child(args.child, args)
        return
    if not os.environ.get("ORT_DYLIB_PATH"):
        raise SystemExit("ORT_DYLIB_PATH must name the ONNX Runtime library")
    args.work.mkdir(parents=True, exist_ok=True)
    bundle = build(args.work, args.fused_attention)
    res = {}
    for kind in ("promptist", "diffusers"):
        cmd = [sys.executable, __file__, "--child", kind, "--work", str(args.work), "--bundle", str(bundle), "--size", str(args.size),
               "--steps", str(args.steps), "--threads", str(args.threads), "--repeat", str(args.repeat)]
        p = subprocess.run(cmd, capture_output=True, text=True)
        if p.returncode != 0:
            raise SystemExit(f"{kind} run failed:\n{p.stderr[-4000:]}")
        res[kind] = json.loads(p.stdout.strip().splitlines()[-1])
    pb, db = min(res["promptist"]["times_s"]), min(res["diffusers"]["times_s"])
    attn = "fused MultiHeadAttention" if args.fused_attention else "MatMul/Softmax attention"
    print(f"score latency, {args.size}x{args.size}, {args.steps} steps, 2+2 images, {args.threads} threads, fp32 CPU, "
          f"promptist graphs with {attn} (best of {args.repeat}):")
    for k in ("promptist", "diffusers"):
        r = res[k]
        print(f"  {k:9s}: {min(r['times_s']):7.2f} s  (runs {', '.join(f'{t:.2f}' for t in r['times_s'])}; load {r['load_s']:.1f} s; "
              f"peak RSS {r['peak_rss_mib']:.0f} MiB; rewards {', '.join(f'{x:+.4f}' for x in r['rewards'])})")
    print(f"  speedup promptist vs diffusers: {db / pb:.2f}x (target >= 1.5x)")


if __name__ == "__main__":
    main()
