"""Parity of the SD / CLIP / aesthetic ONNX graphs (`promptist export-sd`) with the reference
libraries on identical seeded random weights (tiny configs), run through onnxruntime (CPU):

- SD text encoder vs transformers 5.23 CLIPTextModel (last_hidden_state, pooler_output),
- UNet vs diffusers 0.42 UNet2DConditionModel (SD 1.x layout, and an SD 2.x-style variant with
  linear projections and per-block heads; odd latent sizes exercise the upsample sizes),
- VAE decoder vs diffusers AutoencoderKL.decode,
- scorer CLIP text/vision towers with projection vs transformers CLIPModel and vs open_clip 3.3
  (open_clip key names mapped by the builder),
- the aesthetic head with the REAL weights vs torch (folded and unfolded),

every element compared, fp32 tolerance 1e-4 max abs (aesthetic 1e-5). The graphs' I/O names are
optimum's. Real-size builds (SD 1.5 UNet, VAE, CLIP ViT-L/14) are in test_sd_graphs_real_size.py
(opt-in). Needs the reference venv and the built CLI (PROMPTIST_BIN, default target/debug/promptist).
"""
import numpy as np
import pytest

import graphs_reference as ref
import reference_env

reference_env.require("onnx", "onnxruntime", "torch", "transformers", "diffusers", "open_clip")  # fail, never skip
import onnx  # noqa: E402
import open_clip  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402

torch.set_num_threads(2)

TOL = 1e-4
AESTHETIC_TOL = 1e-5
# fp16 exports (weights and activations float16, norms with float32 statistics) against the float32
# reference: max abs diff <= FP16_REL * (1 + max |ref|), i.e. float16 rounding through the network.
FP16_REL = 5e-3
REPORT = {}


def record(name, got, want, tol=TOL):
    """Compare every element; print the max abs diff next to the reference's magnitude."""
    diff = ref.max_abs(got, want)
    scale = float(np.max(np.abs(want)))
    REPORT[name] = diff
    print(f"{name}: max abs diff {diff:.3e} (tol {tol:g}; max |ref| {scale:.3g})")
    assert scale > 1e-2, f"{name}: reference output is degenerate (max |ref| {scale})"
    assert diff <= tol, f"{name}: max abs diff {diff} > {tol}"


def check_fused(name, graph, export_args, feeds, wants, tmp_path):
    """Export with --fused-attention (com.microsoft.MultiHeadAttention) and compare in fp32."""
    path = ref.export(graph, tmp_path / f"{graph}-fused" / "model.onnx", *export_args, "--fused-attention", check=False)
    import onnx

    ops = {(n.domain, n.op_type) for n in onnx.load(str(path), load_external_data=False).graph.node}
    assert ("com.microsoft", "MultiHeadAttention") in ops
    sess = ref.session(path)
    for o, g, w in zip(sess.get_outputs(), sess.run(None, feeds), wants):
        record(f"{name}.fused.{o.name}", g, w)


def check_fp16(name, graph, export_args, feeds, wants, tmp_path):
    """Export `graph` as fp16 and compare every output (as float32) with the float32 reference."""
    path = ref.export(graph, tmp_path / f"{graph}-fp16" / "model.onnx", *export_args, "--dtype", "fp16")
    sess = ref.session(path)
    f16 = {k: (v.astype(np.float16) if v.dtype == np.float32 and k != "timestep" else v) for k, v in feeds.items()}
    for i in sess.get_inputs():
        if i.name != "input_ids" and i.name != "timestep":
            assert i.type == "tensor(float16)", (i.name, i.type)
    got = sess.run(None, f16)
    for o, g, w in zip(sess.get_outputs(), got, wants):
        assert g.dtype == np.float16, (o.name, g.dtype)
        tol = FP16_REL * (1.0 + float(np.max(np.abs(w))))
        record(f"{name}.fp16.{o.name}", g.astype(np.float32), w, tol)


# ----------------------------------------------------------------------------- text encoder
def tiny_text_config(**kw):
    base = dict(vocab_size=1000, hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
                max_position_embeddings=77, hidden_act="quick_gelu", layer_norm_eps=1e-5, eos_token_id=2,
                bos_token_id=0, pad_token_id=1)
    base.update(kw)
    return transformers.CLIPTextConfig(**base)


def first_eos_ids(rng, batch, seq, vocab, eos, lengths):
    """Rows whose pooling position (the first `eos`) is NOT the argmax: larger ids occur before it."""
    ids = rng.integers(eos + 1, vocab, size=(batch, seq), dtype=np.int64)
    for b, n in enumerate(lengths):
        ids[b, n - 1:] = eos
    return ids


@pytest.mark.parametrize("eos_token_id", [2, 500])
def test_text_encoder(tmp_path, eos_token_id):
    cfg = tiny_text_config(eos_token_id=eos_token_id)
    torch.manual_seed(10)
    model = ref.randomize(transformers.CLIPTextModel(cfg), 11)
    w = ref.save_weights(model.state_dict(), tmp_path / "model.safetensors")
    cfg.to_json_file(str(tmp_path / "config.json"), use_diff=False)
    onnx_path = ref.export("text-encoder", tmp_path / "te" / "model.onnx", "--weights", w, "--config", tmp_path / "config.json")
    sess = ref.session(onnx_path)
    ref.check_all_weights_used(onnx_path, {k if k.startswith("text_model.") else f"text_model.{k}" for k in model.state_dict()},
                               ignore=("text_model.embeddings.position_ids",))
    assert ref.io_names(sess) == (["input_ids"], ["last_hidden_state", "pooler_output"])
    assert sess.get_inputs()[0].type == "tensor(int64)"
    rng = np.random.default_rng(0)
    for seq, lengths in ((77, [5, 77, 20]), (9, [3, 9])):
        if eos_token_id == 2:
            ids = ref.eos_ids(rng, len(lengths), seq, 1000, lengths)
        else:
            ids = first_eos_ids(rng, len(lengths), seq, 1000, eos_token_id, lengths)
        with torch.no_grad():
            out = model(input_ids=torch.from_numpy(ids))
        got = sess.run(None, {"input_ids": ids})
        record(f"text_encoder(eos={eos_token_id},seq={seq}).last_hidden_state", got[0], out.last_hidden_state.numpy())
        record(f"text_encoder(eos={eos_token_id},seq={seq}).pooler_output", got[1], out.pooler_output.numpy())
        if seq == 77 and eos_token_id == 2:
            check_fp16("text_encoder", "text-encoder", ["--weights", w, "--config", tmp_path / "config.json"], {"input_ids": ids},
                       [out.last_hidden_state.numpy(), out.pooler_output.numpy()], tmp_path)


# ----------------------------------------------------------------------------- UNet
UNET_VARIANTS = {
    "sd1": dict(block_out_channels=(32, 64, 64), attention_head_dim=2, use_linear_projection=False,
                down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
                up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D")),
    "sd2": dict(block_out_channels=(32, 64, 64), attention_head_dim=[2, 4, 4], use_linear_projection=True,
                down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
                up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D")),
}


@pytest.mark.parametrize("variant", sorted(UNET_VARIANTS))
def test_unet(tmp_path, variant):
    from diffusers import UNet2DConditionModel

    torch.manual_seed(20)
    model = UNet2DConditionModel(sample_size=16, in_channels=4, out_channels=4, layers_per_block=2, cross_attention_dim=24,
                                 norm_num_groups=8, **UNET_VARIANTS[variant])
    model = ref.randomize(model, 21)
    w = ref.save_weights(model.state_dict(), tmp_path / "diffusion_pytorch_model.safetensors")
    model.save_config(tmp_path)
    onnx_path = ref.export("unet", tmp_path / "unet" / "model.onnx", "--weights", w, "--config", tmp_path / "config.json")
    sess = ref.session(onnx_path)
    ref.check_all_weights_used(onnx_path, model.state_dict())
    assert ref.io_names(sess) == (["sample", "timestep", "encoder_hidden_states"], ["out_sample"])
    assert sess.get_inputs()[1].type == "tensor(float)" and sess.get_inputs()[1].shape == []
    rng = np.random.default_rng(1)
    for shape, t, seq in (((2, 4, 16, 16), 981.0, 77), ((1, 4, 10, 14), 1.5, 5)):
        x = rng.standard_normal(shape).astype(np.float32)
        ctx = rng.standard_normal((shape[0], seq, 24)).astype(np.float32)
        with torch.no_grad():
            want = model(torch.from_numpy(x), torch.tensor(t), encoder_hidden_states=torch.from_numpy(ctx)).sample.numpy()
        got = sess.run(None, {"sample": x, "timestep": np.array(t, dtype=np.float32), "encoder_hidden_states": ctx})[0]
        record(f"unet({variant},{shape},t={t}).out_sample", got, want)
        check_fused(f"unet({variant},{shape})", "unet", ["--weights", w, "--config", tmp_path / "config.json"],
                    {"sample": x, "timestep": np.array(t, dtype=np.float32), "encoder_hidden_states": ctx}, [want], tmp_path)
        if variant == "sd1" and shape[0] == 2:
            check_fp16("unet", "unet", ["--weights", w, "--config", tmp_path / "config.json"],
                       {"sample": x, "timestep": np.array(t, dtype=np.float32), "encoder_hidden_states": ctx}, [want], tmp_path)


# ----------------------------------------------------------------------------- VAE decoder
def test_vae_decoder(tmp_path):
    from diffusers import AutoencoderKL

    torch.manual_seed(30)
    model = AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(32, 64), layers_per_block=1,
                          norm_num_groups=8, down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
                          sample_size=32)
    model = ref.randomize(model, 31)
    w = ref.save_weights(model.state_dict(), tmp_path / "diffusion_pytorch_model.safetensors")
    model.save_config(tmp_path)
    onnx_path = ref.export("vae-decoder", tmp_path / "vae" / "model.onnx", "--weights", w, "--config", tmp_path / "config.json")
    sess = ref.session(onnx_path)
    ref.check_all_weights_used(onnx_path, model.state_dict(), ignore=("encoder.", "quant_conv."))
    assert ref.io_names(sess) == (["latent_sample"], ["sample"])
    rng = np.random.default_rng(2)
    for shape in ((2, 4, 8, 8), (1, 4, 5, 7)):
        z = rng.standard_normal(shape).astype(np.float32)
        with torch.no_grad():
            want = model.decode(torch.from_numpy(z)).sample.numpy()
        got = sess.run(None, {"latent_sample": z})[0]
        record(f"vae_decoder({shape}).sample", got, want)
        check_fused(f"vae_decoder({shape})", "vae-decoder", ["--weights", w, "--config", tmp_path / "config.json"],
                    {"latent_sample": z}, [want], tmp_path)
        if shape[0] == 2:
            # a checkpoint with the legacy attention names (query/key/value/proj_attn, 1x1 conv kernels)
            legacy = {}
            for k, v in model.state_dict().items():
                for new, old in ((".to_q.", ".query."), (".to_k.", ".key."), (".to_v.", ".value."), (".to_out.0.", ".proj_attn.")):
                    if ".attentions." in k and new in k:
                        k = k.replace(new, old)
                        v = v[:, :, None, None] if v.dim() == 2 else v
                legacy[k] = v
            wl = ref.save_weights(legacy, tmp_path / "legacy.safetensors")
            lp = ref.export("vae-decoder", tmp_path / "vae-legacy" / "model.onnx", "--weights", wl, "--config", tmp_path / "config.json")
            record("vae_decoder.legacy_keys.sample", ref.session(lp).run(None, {"latent_sample": z})[0], want)
            check_fp16("vae_decoder", "vae-decoder", ["--weights", w, "--config", tmp_path / "config.json"], {"latent_sample": z}, [want], tmp_path)


def test_vae_decoder_without_post_quant_conv_and_mid_attention(tmp_path):
    from diffusers import AutoencoderKL

    torch.manual_seed(32)
    model = AutoencoderKL(block_out_channels=(32, 64), layers_per_block=1, norm_num_groups=8, use_post_quant_conv=False,
                          mid_block_add_attention=False, down_block_types=("DownEncoderBlock2D",) * 2,
                          up_block_types=("UpDecoderBlock2D",) * 2)
    model = ref.randomize(model, 33)
    w = ref.save_weights(model.state_dict(), tmp_path / "diffusion_pytorch_model.safetensors")
    model.save_config(tmp_path)
    onnx_path = ref.export("vae-decoder", tmp_path / "vae" / "model.onnx", "--weights", w, "--config", tmp_path / "config.json")
    ref.check_all_weights_used(onnx_path, model.state_dict(), ignore=("encoder.", "quant_conv."))
    z = np.random.default_rng(7).standard_normal((1, 4, 6, 6)).astype(np.float32)
    with torch.no_grad():
        want = model.decode(torch.from_numpy(z)).sample.numpy()
    record("vae_decoder(no post_quant_conv, no mid attention).sample", ref.session(onnx_path).run(None, {"latent_sample": z})[0], want)


# ----------------------------------------------------------------------------- scorer CLIP
def test_clip_towers_transformers(tmp_path):
    text = tiny_text_config().to_dict()
    vision = dict(hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4, image_size=32, patch_size=8,
                  hidden_act="quick_gelu", layer_norm_eps=1e-5)
    cfg = transformers.CLIPConfig(text_config=text, vision_config=vision, projection_dim=16)
    torch.manual_seed(40)
    model = ref.randomize(transformers.CLIPModel(cfg), 41)
    w = ref.save_weights(model.state_dict(), tmp_path / "model.safetensors")
    cfg.to_json_file(str(tmp_path / "config.json"), use_diff=False)
    t_path = ref.export("clip-text", tmp_path / "clip" / "text.onnx", "--weights", w, "--config", tmp_path / "config.json")
    v_path = ref.export("clip-vision", tmp_path / "clip" / "vision.onnx", "--weights", w, "--config", tmp_path / "config.json")
    ts, vs = ref.session(t_path), ref.session(v_path)
    keys = set(model.state_dict())
    ref.check_all_weights_used(t_path, {k for k in keys if k.startswith("text_model.") or k == "text_projection.weight"},
                               ignore=("text_model.embeddings.position_ids",))
    ref.check_all_weights_used(v_path, {k for k in keys if k.startswith("vision_model.") or k == "visual_projection.weight"},
                               ignore=("vision_model.embeddings.position_ids",))
    assert ref.io_names(ts) == (["input_ids"], ["text_embeds"])
    assert ref.io_names(vs) == (["pixel_values"], ["image_embeds"])
    rng = np.random.default_rng(3)
    ids = ref.eos_ids(rng, 3, 77, 1000, [4, 77, 30])
    pix = rng.standard_normal((2, 3, 32, 32)).astype(np.float32)
    with torch.no_grad():
        want_t = model.text_projection(model.text_model(input_ids=torch.from_numpy(ids)).pooler_output).numpy()
        want_v = model.visual_projection(model.vision_model(pixel_values=torch.from_numpy(pix)).pooler_output).numpy()
    record("clip_transformers.text_embeds", ts.run(None, {"input_ids": ids})[0], want_t)
    record("clip_transformers.image_embeds", vs.run(None, {"pixel_values": pix})[0], want_v)
    args = ["--weights", w, "--config", tmp_path / "config.json"]
    check_fp16("clip_transformers", "clip-text", args, {"input_ids": ids}, [want_t], tmp_path)
    check_fp16("clip_transformers", "clip-vision", args, {"pixel_values": pix}, [want_v], tmp_path)
    check_fused("clip_transformers", "clip-vision", args, {"pixel_values": pix}, [want_v], tmp_path)
    # the scorer's bundle folders: clip/{text,vision}_model.onnx + config.json, aesthetic/model.onnx
    out = tmp_path / "scorer"
    r = ref.subprocess.run([str(ref.promptist_bin()), "export-sd", "scorer", *map(str, args), "--aesthetic", str(ref.AESTHETIC_PTH),
                            "--out", str(out)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    st, sv, sa = (ref.session(out / f) for f in ("clip/text_model.onnx", "clip/vision_model.onnx", "aesthetic/model.onnx"))
    assert ref.io_names(sa) == (["image_embeds"], ["score"])
    record("scorer_folder.text_embeds", st.run(None, {"input_ids": ids})[0], want_t)
    record("scorer_folder.image_embeds", sv.run(None, {"pixel_values": pix})[0], want_v)
    assert (out / "clip" / "config.json").is_file()


def test_clip_towers_open_clip(tmp_path):
    from open_clip.model import CLIP, CLIPTextCfg, CLIPVisionCfg

    torch.manual_seed(50)
    model = CLIP(embed_dim=16, quick_gelu=True,
                 vision_cfg=CLIPVisionCfg(layers=2, width=32, head_width=8, mlp_ratio=1.5, image_size=32, patch_size=8),
                 text_cfg=CLIPTextCfg(context_length=77, vocab_size=1000, width=32, heads=4, layers=2, mlp_ratio=1.5))
    model = ref.randomize(model, 51)
    with torch.no_grad():  # open_clip initialises the projections; make them clearly non-trivial
        model.text_projection.normal_(0.0, 0.2)
        model.visual.proj.normal_(0.0, 0.2)
    sd = {k: v for k, v in model.state_dict().items() if k != "attn_mask"}
    w = ref.save_weights(sd, tmp_path / "open_clip.safetensors")
    t_path = ref.export("clip-text", tmp_path / "clip" / "text.onnx", "--weights", w, "--head-width", 8)
    v_path = ref.export("clip-vision", tmp_path / "clip" / "vision.onnx", "--weights", w, "--head-width", 8)
    ts, vs = ref.session(t_path), ref.session(v_path)
    rng = np.random.default_rng(4)
    ids = ref.eos_ids(rng, 3, 77, 1000, [6, 77, 40])
    pix = rng.standard_normal((2, 3, 32, 32)).astype(np.float32)
    with torch.no_grad():
        want_t = model.encode_text(torch.from_numpy(ids)).numpy()
        want_v = model.encode_image(torch.from_numpy(pix)).numpy()
    record("clip_open_clip.text_embeds", ts.run(None, {"input_ids": ids})[0], want_t)
    record("clip_open_clip.image_embeds", vs.run(None, {"pixel_values": pix})[0], want_v)


# ----------------------------------------------------------------------------- aesthetic head
def test_aesthetic_real_weights(tmp_path):
    assert ref.AESTHETIC_PTH.is_file(), f"aesthetic weights missing at {ref.AESTHETIC_PTH}"
    sd = torch.load(str(ref.AESTHETIC_PTH), map_location="cpu", weights_only=True)
    assert sorted(sd) == sorted(f"layers.{i}.{p}" for i in (0, 2, 4, 6, 7) for p in ("weight", "bias"))
    # built straight from the released .pth (promptist's torch_pickle reader) ...
    unf = ref.session(ref.export("aesthetic", tmp_path / "a" / "model.onnx", "--weights", ref.AESTHETIC_PTH))
    fol = ref.session(ref.export("aesthetic-folded", tmp_path / "f" / "model.onnx", "--weights", ref.AESTHETIC_PTH))
    # ... and from the same weights re-saved as safetensors: identical graphs
    w = ref.save_weights(sd, tmp_path / "aesthetic.safetensors")
    for graph, sub in (("aesthetic", "a"), ("aesthetic-folded", "f")):
        other = ref.export(graph, tmp_path / f"{graph}-st" / "model.onnx", "--weights", w).parent
        for f in ("model.onnx", "model.onnx_data"):
            assert (tmp_path / sub / f).read_bytes() == (other / f).read_bytes(), f"{graph}: .pth and .safetensors exports differ ({f})"
    assert ref.io_names(unf) == (["image_embeds"], ["score"]) == ref.io_names(fol)
    head = torch.nn.Sequential(torch.nn.Linear(768, 1024), torch.nn.Dropout(0.2), torch.nn.Linear(1024, 128), torch.nn.Dropout(0.2),
                               torch.nn.Linear(128, 64), torch.nn.Dropout(0.1), torch.nn.Linear(64, 16), torch.nn.Linear(16, 1))
    head.load_state_dict({k.replace("layers.", ""): v for k, v in sd.items()})
    head.eval()
    rng = np.random.default_rng(5)
    x = rng.standard_normal((64, 768)).astype(np.float32) * 3.0
    with torch.no_grad():
        xt = torch.from_numpy(x)
        want = head(xt / xt.norm(dim=-1, keepdim=True)).numpy()
    got_u = unf.run(None, {"image_embeds": x})[0]
    got_f = fol.run(None, {"image_embeds": x})[0]
    assert got_u.shape == (64, 1)
    record("aesthetic.unfolded_vs_torch", got_u, want, AESTHETIC_TOL)
    record("aesthetic.folded_vs_torch", got_f, want, AESTHETIC_TOL)
    record("aesthetic.folded_vs_unfolded", got_f, got_u, AESTHETIC_TOL)
    # already-normalised input gives the same scores (normalisation is idempotent)
    xn = x / np.linalg.norm(x, axis=-1, keepdims=True)
    record("aesthetic.prenormalised_input", unf.run(None, {"image_embeds": xn})[0], want, AESTHETIC_TOL)


# ----------------------------------------------------------------------------- diffusers folder
def test_pipeline_folder_to_optimum_layout(tmp_path):
    """A diffusers pipeline folder (save_pretrained of each component) -> optimum's layout."""
    from diffusers import AutoencoderKL, DPMSolverMultistepScheduler, UNet2DConditionModel

    src = tmp_path / "sd"
    torch.manual_seed(60)
    te = ref.randomize(transformers.CLIPTextModel(tiny_text_config()), 61)
    te.save_pretrained(src / "text_encoder")
    torch.manual_seed(62)
    unet = ref.randomize(UNet2DConditionModel(sample_size=8, block_out_channels=(32, 64), layers_per_block=1, cross_attention_dim=32,
                                              norm_num_groups=8, attention_head_dim=2,
                                              down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                                              up_block_types=("UpBlock2D", "CrossAttnUpBlock2D")), 63)
    unet.save_pretrained(src / "unet")
    torch.manual_seed(64)
    vae = ref.randomize(AutoencoderKL(block_out_channels=(32, 64), layers_per_block=1, norm_num_groups=8,
                                      down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2), 65)
    vae.save_pretrained(src / "vae")
    DPMSolverMultistepScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012).save_pretrained(src / "scheduler")
    out = tmp_path / "onnx"
    r = ref.subprocess.run([str(ref.promptist_bin()), "export-sd", "pipeline", "--diffusers", str(src), "--out", str(out)],
                           capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    for sub in ("text_encoder", "unet", "vae_decoder"):
        assert (out / sub / "model.onnx").is_file() and (out / sub / "config.json").is_file(), sub
    assert (out / "scheduler" / "scheduler_config.json").is_file()
    rng = np.random.default_rng(6)
    ids = ref.eos_ids(rng, 2, 77, 1000, [5, 12])
    with torch.no_grad():
        hidden = te(input_ids=torch.from_numpy(ids)).last_hidden_state
        x = torch.from_numpy(rng.standard_normal((2, 4, 8, 8)).astype(np.float32))
        eps = unet(x, torch.tensor(500.0), encoder_hidden_states=hidden).sample
        img = vae.decode(eps).sample
    te_s, un_s, va_s = (ref.session(out / s / "model.onnx") for s in ("text_encoder", "unet", "vae_decoder"))
    got_h = te_s.run(None, {"input_ids": ids})[0]
    record("pipeline.text_encoder.last_hidden_state", got_h, hidden.numpy())
    got_e = un_s.run(None, {"sample": x.numpy(), "timestep": np.array(500.0, np.float32), "encoder_hidden_states": hidden.numpy()})[0]
    record("pipeline.unet.out_sample", got_e, eps.numpy())
    record("pipeline.vae_decoder.sample", va_s.run(None, {"latent_sample": eps.numpy()})[0], img.numpy())


def test_random_tiny_pipeline_for_demo_bundles(tmp_path):
    """`export-sd pipeline --random-seed N --preset tiny`: the three graphs load with optimum's names
    and run on the real CLIP vocabulary's ids, and the config.json files are the reference
    libraries' formats (diffusers / transformers accept them)."""
    import json

    from diffusers import AutoencoderKL, UNet2DConditionModel

    out = tmp_path / "demo"
    r = ref.subprocess.run([str(ref.promptist_bin()), "export-sd", "pipeline", "--random-seed", "3", "--preset", "tiny", "--out", str(out)],
                           capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    UNet2DConditionModel.from_config(json.loads((out / "unet" / "config.json").read_text()))
    AutoencoderKL.from_config(json.loads((out / "vae_decoder" / "config.json").read_text()))
    tcfg = transformers.CLIPTextConfig(**json.loads((out / "text_encoder" / "config.json").read_text()))
    assert tcfg.vocab_size == 49408 and tcfg.max_position_embeddings == 77
    te, un, va = (ref.session(out / s / "model.onnx") for s in ("text_encoder", "unet", "vae_decoder"))
    ids = np.full((2, 77), 49407, np.int64)
    ids[:, 0] = 49406
    h = te.run(None, {"input_ids": ids})[0]
    eps = un.run(None, {"sample": np.ones((2, 4, 8, 8), np.float32), "timestep": np.array(10.0, np.float32), "encoder_hidden_states": h})[0]
    img = va.run(None, {"latent_sample": eps[:1]})[0]
    assert h.shape == (2, 77, 32) and eps.shape == (2, 4, 8, 8) and img.shape == (1, 3, 16, 16)
    assert np.isfinite(img).all()
