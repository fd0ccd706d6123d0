//! The score engine (Rust API) on a tiny random bundle: bit-for-bit reproducible rewards and
//! images for a seed, the cached x-baseline, batched candidates agreeing with single ones,
//! best-of-n ranking, bad input codes, NOT_IN_BUNDLE without score components (optimize still
//! works), a graph with wrong tensor names failing at load naming file and tensor, and cancel.
//! Needs ORT_DYLIB_PATH (fails with a clear message without it).

mod common;
mod score_engine_common;

use promptist::diffusion::pipeline::{SdSettings, Stage};
use promptist::engine::{Engine, EngineOptions, OptimizeOptions, ScoreOptions};
use promptist::Code;
use score_engine_common::{bundles, copy_dir};

fn small(seed: u64) -> ScoreOptions {
    ScoreOptions { sd: SdSettings { width: 64, height: 64, steps: 3, ..Default::default() }, images_per_prompt: 2, seed, return_images: true, ..Default::default() }
}

fn open(p: &std::path::Path) -> Engine {
    Engine::open(p, &EngineOptions::default()).unwrap()
}

fn bits(r: &promptist::engine::ScoreResult) -> Vec<u64> {
    let mut v = Vec::new();
    for c in &r.candidates {
        v.push(c.reward.reward.to_bits());
        v.extend(c.reward.similarity.iter().map(|x| x.to_bits()));
        v.extend(c.reward.aesthetic_y.iter().map(|x| x.to_bits()));
        v.extend(c.reward.aesthetic_x.iter().map(|x| x.to_bits()));
    }
    v
}

#[test]
fn score_engine_reproducible_bit_for_bit() {
    let b = bundles();
    let (e1, e2) = (open(&b.score), open(&b.score));
    let mut none = |_: Stage, _: usize, _: usize| true;
    let r1 = e1.score("a cat", "a cat, highly detailed, artstation", &small(7), &mut none).unwrap();
    let r2 = e2.score("a cat", "a cat, highly detailed, artstation", &small(7), &mut none).unwrap();
    assert_eq!(bits(&r1), bits(&r2));
    assert_eq!(r1.candidates[0].images, r2.candidates[0].images);
    assert_eq!(r1.user_images, r2.user_images);
    let c = &r1.candidates[0];
    assert_eq!(c.images.len(), 2);
    assert_eq!((c.images[0].width, c.images[0].height, c.images[0].rgb8.len()), (64, 64, 64 * 64 * 3));
    assert_ne!(c.images[0].rgb8, c.images[1].rgb8, "two images of a prompt come from different latent streams");
    assert!(c.reward.reward.is_finite() && r1.random_weights);
    assert!((c.reward.reward - (c.reward.aesthetic_gain + c.reward.relevance)).abs() < 1e-12);
    let r3 = e1.score("a cat", "a cat, highly detailed, artstation", &small(8), &mut none).unwrap();
    assert_ne!(r3.candidates[0].images[0].rgb8, c.images[0].rgb8, "another seed gives other images");
    // The x-baseline was cached once per seed.
    assert_eq!(e1.cached_baselines(), 2);
}

#[test]
fn score_engine_batched_candidates_and_best_of_n() {
    let b = bundles();
    let e = open(&b.score);
    let mut none = |_: Stage, _: usize, _: usize| true;
    let cands = ["a dog, 8k", "a dog in the snow, concept art", "a dog"];
    let mut o = small(3);
    o.sd.max_batch = 4;
    let many = e.score_many("a dog", &cands, &o, &mut none).unwrap();
    assert_eq!(many.candidates.len(), 3);
    for (i, c) in cands.iter().enumerate() {
        let one = e.score("a dog", c, &o, &mut none).unwrap();
        let (a, b) = (&many.candidates[i].reward, &one.candidates[0].reward);
        assert_eq!(many.candidates[i].prompt, *c);
        assert!((a.reward - b.reward).abs() < 1e-4, "{c}: batched {} vs single {}", a.reward, b.reward);
        for (x, y) in a.similarity.iter().zip(&b.similarity) {
            assert!((x - y).abs() < 1e-5);
        }
    }
    assert_eq!(e.cached_baselines(), 1);

    let mut oo = OptimizeOptions::default();
    oo.decoding.max_new_tokens = 8;
    oo.decoding.num_return_sequences = 3;
    let best = e.optimize_best_of_n("a dog", &oo, &small(3), &mut none).unwrap();
    let rewards: Vec<f64> = best.scores.candidates.iter().map(|c| c.reward.reward).collect();
    assert!(rewards.windows(2).all(|w| w[0] >= w[1]), "ranked best first: {rewards:?}");
    for (r, s) in best.ranked.iter().zip(&best.scores.candidates) {
        assert_eq!(r.text, s.prompt);
    }
}

#[test]
fn score_engine_bad_input() {
    let b = bundles();
    let e = open(&b.score);
    let mut none = |_: Stage, _: usize, _: usize| true;
    let code = |o: &ScoreOptions, x: &str, y: &[&str]| e.score_many(x, y, o, &mut |_, _, _| true).unwrap_err().code();
    let mut o = small(0);
    o.sd.width = 60;
    assert_eq!(code(&o, "a", &["b"]), Code::InvalidOptions);
    o = small(0);
    o.sd.steps = 0;
    assert_eq!(code(&o, "a", &["b"]), Code::InvalidOptions);
    o = small(0);
    o.images_per_prompt = 0;
    assert_eq!(code(&o, "a", &["b"]), Code::InvalidOptions);
    assert_eq!(code(&small(0), "a", &[]), Code::InvalidOptions);
    assert_eq!(code(&small(0), "  ", &["b"]), Code::EmptyPrompt);
    assert_eq!(code(&small(0), "a", &["b", ""]), Code::EmptyPrompt);
    assert!(e.score("a", "b", &small(0), &mut none).is_ok());
}

#[test]
fn score_engine_not_in_bundle_keeps_optimize() {
    let b = bundles();
    let e = open(&b.policy_only);
    assert!(!e.can_score());
    let err = e.score("a cat", "a cat, 8k", &small(0), &mut |_, _, _| true).unwrap_err();
    assert_eq!(err.code(), Code::NotInBundle);
    assert!(err.to_string().contains("score components"), "{err}");
    let mut oo = OptimizeOptions::default();
    oo.decoding.max_new_tokens = 4;
    assert!(!e.optimize("a cat", &oo).unwrap().candidates.is_empty());
}

#[test]
fn score_engine_wrong_tensor_names_fail_at_load() {
    let b = bundles();
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad");
    copy_dir(&b.score, &bad);
    // Put the text encoder where the UNet belongs and fix the manifest's hashes.
    for f in ["model.onnx", "model.onnx_data"] {
        std::fs::copy(bad.join("text_encoder").join(f), bad.join("unet").join(f)).unwrap();
    }
    let mut m = promptist::bundle::read_manifest(&bad).unwrap();
    for (rel, entry) in m.components.get_mut("unet").unwrap().files.iter_mut() {
        *entry = promptist::bundle::writer::file_entry(&bad.join(rel)).unwrap();
    }
    std::fs::write(bad.join("promptist.json"), serde_json::to_string(&m).unwrap()).unwrap();
    let err = Engine::open(&bad, &EngineOptions::default()).unwrap_err();
    assert_eq!(err.code(), Code::ModelFormat, "{err}");
    let msg = err.to_string();
    assert!(msg.contains("unet/model.onnx") && msg.contains("`sample`"), "{msg}");
}

#[test]
fn score_engine_cancel() {
    let b = bundles();
    let e = open(&b.score);
    let mut seen = Vec::new();
    let mut cancel_at_2 = |s: Stage, step: usize, _: usize| {
        seen.push((s, step));
        !(s == Stage::Denoise && step == 2)
    };
    let err = e.score("a bird", "a bird, 8k", &small(1), &mut cancel_at_2).unwrap_err();
    assert_eq!(err.code(), Code::Cancelled);
    assert_eq!(seen.last(), Some(&(Stage::Denoise, 2)), "stopped right at the cancelling step: {seen:?}");
    assert_eq!(e.cached_baselines(), 0, "a cancelled baseline is not cached");
    // The engine keeps working after a cancel.
    let mut steps = 0;
    let mut count = |s: Stage, _: usize, _: usize| {
        steps += usize::from(s == Stage::Denoise);
        true
    };
    e.score("a bird", "a bird, 8k", &small(1), &mut count).unwrap();
    assert_eq!(steps, 6, "3 steps for x's images and 3 for y's");
}

#[test]
fn score_engine_wrong_tensor_shape_fails_at_load() {
    use promptist::export::clip_text::SdExportOptions;
    use promptist::export::clip_vision::build_clip_vision_projection;
    use promptist::export::nn::RandomWeights;
    use promptist::export::onnx::{save_model, SaveOptions};
    use promptist::export::sd_config::ClipVisionConfig;

    let b = bundles();
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad");
    copy_dir(&b.score, &bad);
    // A scorer vision tower for 32-pixel images: right names, wrong pixel_values shape.
    let clip = bad.join("clip");
    for e in std::fs::read_dir(&clip).unwrap() {
        let p = e.unwrap().path();
        if p.file_name().unwrap().to_str().unwrap().starts_with("vision_model") {
            std::fs::remove_file(p).unwrap();
        }
    }
    let model = build_clip_vision_projection(&ClipVisionConfig::tiny(), 768, &RandomWeights::new(1), &SdExportOptions::default()).unwrap();
    save_model(&model, &clip.join("vision_model.onnx"), &SaveOptions::default()).unwrap();
    let mut m = promptist::bundle::read_manifest(&bad).unwrap();
    let files = &mut m.components.get_mut("clip").unwrap().files;
    files.clear();
    for e in std::fs::read_dir(&clip).unwrap() {
        let p = e.unwrap().path();
        let rel = format!("clip/{}", p.file_name().unwrap().to_str().unwrap());
        files.insert(rel, promptist::bundle::writer::file_entry(&p).unwrap());
    }
    std::fs::write(bad.join("promptist.json"), serde_json::to_string(&m).unwrap()).unwrap();
    let err = Engine::open(&bad, &EngineOptions::default()).unwrap_err();
    assert_eq!(err.code(), Code::ModelFormat, "{err}");
    let msg = err.to_string();
    assert!(msg.contains("clip/vision_model.onnx") && msg.contains("`pixel_values`") && msg.contains("224"), "{msg}");
}

#[test]
fn score_engine_vae_with_another_scale_factor_fails_at_open() {
    use promptist::export::clip_text::SdExportOptions;
    use promptist::export::nn::RandomWeights;
    use promptist::export::onnx::{save_model, SaveOptions};
    use promptist::export::sd_convert::tiny_vae_config;
    use promptist::export::vae::build_vae_decoder;

    let b = bundles();
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad");
    copy_dir(&b.score, &bad);
    // A VAE decoder with 3 blocks (factor 4) where the tiny UNet's 8x8 latents expect factor 8.
    let mut cfg = tiny_vae_config();
    cfg.block_out_channels.pop();
    assert_eq!(cfg.upscale(), 4);
    let vae = bad.join("vae_decoder");
    std::fs::remove_dir_all(&vae).unwrap();
    std::fs::create_dir_all(&vae).unwrap();
    let model = build_vae_decoder(&cfg, &RandomWeights::new(3), &SdExportOptions::default()).unwrap();
    save_model(&model, &vae.join("model.onnx"), &SaveOptions::default()).unwrap();
    std::fs::write(vae.join("config.json"), serde_json::to_string(&cfg).unwrap()).unwrap();
    let mut m = promptist::bundle::read_manifest(&bad).unwrap();
    let comp = m.components.get_mut("vae_decoder").unwrap();
    comp.config = serde_json::to_value(&cfg).unwrap();
    comp.files.clear();
    for e in std::fs::read_dir(&vae).unwrap() {
        let p = e.unwrap().path();
        comp.files.insert(format!("vae_decoder/{}", p.file_name().unwrap().to_str().unwrap()), promptist::bundle::writer::file_entry(&p).unwrap());
    }
    std::fs::write(bad.join("promptist.json"), serde_json::to_string(&m).unwrap()).unwrap();
    let err = Engine::open(&bad, &EngineOptions::default()).unwrap_err();
    assert_eq!(err.code(), Code::BundleInvalid, "{err}");
    let msg = err.to_string();
    assert!(msg.contains("scale factor is 4") && msg.contains("do not belong to one pipeline"), "{msg}");
}

/// Score options beyond their caps (the sizes that once aborted the process) are INVALID_OPTIONS
/// naming the field, before any image is made.
#[test]
fn score_numbers_beyond_the_caps_are_refused() {
    use promptist::capi::limits::{PROMPTIST_MAX_CANDIDATES, PROMPTIST_MAX_IMAGES_PER_PROMPT, PROMPTIST_MAX_IMAGE_SIDE};
    let e = open(&bundles().score);
    let refused = |o: &ScoreOptions, cands: &[&str], field: &str| {
        let err = e.score_many("a bird", cands, o, &mut |_, _, _| true).unwrap_err();
        assert_eq!(err.code(), Code::InvalidOptions, "{err}");
        assert!(err.to_string().contains(&format!("{field} = ")) && err.to_string().contains("is out of range"), "{field}: {err}");
    };
    for side in [i32::MAX as usize, u32::MAX as usize, PROMPTIST_MAX_IMAGE_SIDE as usize + 8] {
        refused(&ScoreOptions { sd: SdSettings { width: side, ..small(0).sd }, ..small(0) }, &["a bird, 8k"], "width");
        refused(&ScoreOptions { sd: SdSettings { height: side, ..small(0).sd }, ..small(0) }, &["a bird, 8k"], "height");
    }
    for n in [i32::MAX as usize, u32::MAX as usize, PROMPTIST_MAX_IMAGES_PER_PROMPT as usize + 1] {
        refused(&ScoreOptions { images_per_prompt: n, ..small(0) }, &["a bird, 8k"], "images_per_prompt");
    }
    refused(&ScoreOptions { sd: SdSettings { guidance_scale: 1e9, ..small(0).sd }, ..small(0) }, &["a bird, 8k"], "guidance_scale");
    let many = vec!["a bird, 8k"; PROMPTIST_MAX_CANDIDATES as usize + 1];
    refused(&small(0), &many, "candidates");
    // Each number in range, their product too large: 256 candidates x 16 images of 2048x2048.
    let big = ScoreOptions { sd: SdSettings { width: 2048, height: 2048, ..small(0).sd }, images_per_prompt: 16, ..small(0) };
    let err = e.score_many("a bird", &many[..256], &big, &mut |_, _, _| true).unwrap_err();
    assert_eq!(err.code(), Code::InvalidOptions, "{err}");
    assert!(err.to_string().contains("PROMPTIST_MAX_PIXELS_PER_CALL"), "{err}");
}

/// Provenance is per component: a trained policy stays "not random" after `add-score` adds random
/// image models, while score results say their models are random.
#[test]
fn provenance_is_per_component() {
    use promptist::export::sd_convert::{add_score_components, ScoreSources};
    let dir = tempfile::tempdir().unwrap();
    let b = dir.path().join("demo");
    copy_dir(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("training/demo/bundle"), &b);
    let src = ScoreSources::tiny_random(5, Default::default());
    add_score_components(&b, &src).unwrap();
    let m = promptist::bundle::read_manifest(&b).unwrap();
    let flag = |c: &str| m.components[c].random_weights;
    assert_eq!(flag("policy"), Some(false), "the demo policy (its manifest predates per-component flags) keeps its provenance");
    assert_eq!((flag("unet"), flag("clip"), flag("aesthetic"), flag("tokenizer")), (Some(true), Some(true), Some(false), Some(false)));
    assert!(m.provenance.random_weights, "the bundle-wide flag says some component is random");
    let e = open(&b);
    assert!(!e.random_weights(), "the trained demo policy is not random");
    assert!(e.score_is_random());
    let r = e.optimize("a red fox", &OptimizeOptions::default()).unwrap();
    assert!(!r.random_weights);
    let s = e.score("a red fox", "a red fox, 8k", &small(0), &mut |_, _, _| true).unwrap();
    assert!(s.random_weights);
}

/// Prompts longer than CLIP's 77-token context are truncated, as diffusers' pipeline and
/// open_clip's tokenizer do: two candidates (and two user prompts) that differ only after the 75th
/// token get the same reward, bit for bit.
#[test]
fn prompts_past_clips_context_are_truncated() {
    let e = open(&bundles().score);
    let long = "a small red bird on a branch, ".repeat(20);
    let (a, b) = (format!("{long} ending one"), format!("{long} a different ending altogether"));
    let mut none = |_: Stage, _: usize, _: usize| true;
    let ra = e.score(&a, &a, &small(4), &mut none).unwrap();
    let rb = e.score(&b, &b, &small(4), &mut none).unwrap();
    assert_eq!(ra.candidates[0].reward, rb.candidates[0].reward, "only tokens past the context differ");
    let short = e.score(&a, "a small red bird", &small(4), &mut none).unwrap();
    assert_ne!(short.candidates[0].reward.aesthetic_y, ra.candidates[0].reward.aesthetic_y, "a prompt inside the context does change the images");
}
