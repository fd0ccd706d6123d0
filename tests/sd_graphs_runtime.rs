//! The SD / CLIP / aesthetic graphs built in Rust (tiny configs, seeded random weights; the real
//! aesthetic head) load through `promptist::runtime` with the builders' expected I/O names and run
//! one forward pass with the expected output shapes; a graph opened with another graph's names
//! fails at load, naming the file and the tensor. (Numerical parity with the reference libraries is
//! tests/python/test_sd_graphs.py.) Needs ORT_DYLIB_PATH.

mod common;

use std::path::{Path, PathBuf};

use ort::value::Tensor;
use promptist::export::aesthetic::{build_aesthetic_folded, load_aesthetic_weights, AESTHETIC_INPUTS, AESTHETIC_OUTPUTS};
use promptist::export::clip_text::{build_clip_text_encoder, build_clip_text_projection, SdExportOptions, CLIP_TEXT_INPUTS, CLIP_TEXT_OUTPUTS, TEXT_ENCODER_INPUTS, TEXT_ENCODER_OUTPUTS};
use promptist::export::clip_vision::{build_clip_vision_projection, CLIP_VISION_INPUTS, CLIP_VISION_OUTPUTS};
use promptist::export::nn::RandomWeights;
use promptist::export::onnx::{save_model, Model, SaveOptions};
use promptist::export::sd_config::{ClipConfig, ClipTextConfig, UNetConfig, VaeConfig};
use promptist::export::unet::{build_unet, UNET_INPUTS, UNET_OUTPUTS};
use promptist::export::vae::{build_vae_decoder, VAE_DECODER_INPUTS, VAE_DECODER_OUTPUTS};
use promptist::runtime::{IoNames, ProviderChoice, Runtime, SessionOptions};
use promptist::Code;

fn runtime() -> Runtime {
    assert!(
        std::env::var_os("ORT_DYLIB_PATH").is_some(),
        "set ORT_DYLIB_PATH to libonnxruntime.so.1.31.1 (tests/fetch-ort.sh prints it)"
    );
    Runtime::get(None).unwrap()
}

fn save(m: &Model, dir: &Path, name: &str) -> PathBuf {
    let p = dir.join(name).join("model.onnx");
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    save_model(m, &p, &SaveOptions::default()).unwrap();
    p
}

fn opts() -> SessionOptions {
    SessionOptions { provider: ProviderChoice::Cpu, intra_op_threads: 1, ..Default::default() }
}

fn ids(b: usize, s: usize, vocab: i64) -> Tensor<i64> {
    let mut v = vec![5i64; b * s];
    for r in 0..b {
        v[r * s + s - 1] = vocab - 1;
    }
    Tensor::from_array(([b, s], v)).unwrap()
}

fn shape_of(out: &ort::session::SessionOutputs, name: &str) -> Vec<i64> {
    let (shape, data) = out[name].try_extract_tensor::<f32>().unwrap();
    assert!(data.iter().all(|v| v.is_finite()), "{name} has non-finite values");
    shape.iter().copied().collect()
}

#[test]
fn tiny_sd_graphs_load_with_their_names_and_run() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime();
    let w = RandomWeights::new(3);
    let o = SdExportOptions::default();

    let te = save(&build_clip_text_encoder(&ClipTextConfig::tiny(), &w, &o).unwrap(), dir.path(), "text_encoder");
    let (mut s, _) = rt.session(&te, &opts(), Some(&IoNames::new(TEXT_ENCODER_INPUTS.iter().copied(), TEXT_ENCODER_OUTPUTS.iter().copied()))).unwrap();
    let out = s.run(ort::inputs!["input_ids" => ids(2, 77, 1000)]).unwrap();
    assert_eq!(shape_of(&out, "last_hidden_state"), [2, 77, 32]);
    assert_eq!(shape_of(&out, "pooler_output"), [2, 32]);
    drop(out);

    let cfg = UNetConfig::tiny();
    let un = save(&build_unet(&cfg, &w, &o).unwrap(), dir.path(), "unet");
    let (mut s, _) = rt.session(&un, &opts(), Some(&IoNames::new(UNET_INPUTS.iter().copied(), UNET_OUTPUTS.iter().copied()))).unwrap();
    let sample = Tensor::from_array(([2usize, 4, 8, 8], vec![0.1f32; 512])).unwrap();
    let t = Tensor::from_array((Vec::<usize>::new(), vec![999f32])).unwrap();
    let ctx = Tensor::from_array(([2usize, 77, 32], vec![0.2f32; 2 * 77 * 32])).unwrap();
    let out = s.run(ort::inputs!["sample" => sample, "timestep" => t, "encoder_hidden_states" => ctx]).unwrap();
    assert_eq!(shape_of(&out, "out_sample"), [2, 4, 8, 8]);
    drop(out);

    let vae = save(&build_vae_decoder(&VaeConfig::tiny(), &w, &o).unwrap(), dir.path(), "vae_decoder");
    let (mut s, _) = rt.session(&vae, &opts(), Some(&IoNames::new(VAE_DECODER_INPUTS.iter().copied(), VAE_DECODER_OUTPUTS.iter().copied()))).unwrap();
    let z = Tensor::from_array(([1usize, 4, 4, 4], vec![0.3f32; 64])).unwrap();
    let out = s.run(ort::inputs!["latent_sample" => z]).unwrap();
    assert_eq!(shape_of(&out, "sample"), [1, 3, 8, 8]);
    drop(out);

    // a graph opened with another graph's names fails at load, naming the file and the tensor
    let e = rt.session(&un, &opts(), Some(&IoNames::new(VAE_DECODER_INPUTS.iter().copied(), VAE_DECODER_OUTPUTS.iter().copied()))).unwrap_err();
    assert_eq!(e.code(), Code::ModelFormat);
    let msg = e.to_string();
    assert!(msg.contains(&un.display().to_string()) && msg.contains("latent_sample"), "{msg}");
}

#[test]
fn tiny_scorer_graphs_and_real_aesthetic_head_run() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime();
    let w = RandomWeights::new(4);
    let o = SdExportOptions::default();
    let c = ClipConfig::tiny();
    let t = save(&build_clip_text_projection(&c.text_config, c.projection_dim, &w, &o).unwrap(), dir.path(), "clip_text");
    let (mut s, _) = rt.session(&t, &opts(), Some(&IoNames::new(CLIP_TEXT_INPUTS.iter().copied(), CLIP_TEXT_OUTPUTS.iter().copied()))).unwrap();
    let out = s.run(ort::inputs!["input_ids" => ids(3, 77, 1000)]).unwrap();
    assert_eq!(shape_of(&out, "text_embeds"), [3, 16]);
    drop(out);
    let v = save(&build_clip_vision_projection(&c.vision_config, c.projection_dim, &w, &o).unwrap(), dir.path(), "clip_vision");
    let (mut s, _) = rt.session(&v, &opts(), Some(&IoNames::new(CLIP_VISION_INPUTS.iter().copied(), CLIP_VISION_OUTPUTS.iter().copied()))).unwrap();
    let pix = Tensor::from_array(([2usize, 3, 32, 32], vec![0.5f32; 2 * 3 * 32 * 32])).unwrap();
    let out = s.run(ort::inputs!["pixel_values" => pix]).unwrap();
    assert_eq!(shape_of(&out, "image_embeds"), [2, 16]);
    drop(out);

    let pth = common::data_path("aesthetic/sac+logos+ava1-l14-linearMSE.pth");
    let a = save(&build_aesthetic_folded(&load_aesthetic_weights(&pth).unwrap()).unwrap(), dir.path(), "aesthetic");
    let (mut s, _) = rt.session(&a, &opts(), Some(&IoNames::new(AESTHETIC_INPUTS.iter().copied(), AESTHETIC_OUTPUTS.iter().copied()))).unwrap();
    let x = Tensor::from_array(([2usize, 768], (0..1536).map(|i| ((i * 37 % 101) as f32 - 50.0) / 50.0).collect::<Vec<_>>())).unwrap();
    let out = s.run(ort::inputs!["image_embeds" => x]).unwrap();
    assert_eq!(shape_of(&out, "score"), [2, 1]);
}
