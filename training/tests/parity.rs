//! Parity of the tch GPT-2 with transformers' GPT2LMHeadModel on identical weights (every logit
//! within 1e-5), and of the ONNX graph exported by `promptist-train export` with tch (1e-4).
//! Needs the reference Python (torch, transformers, onnxruntime).

mod common;

use std::path::Path;

use promptist::export::gpt2_config::Gpt2Config;
use promptist::export::tiny::LmHead;
use promptist_train::model::{Gpt2, Params};
use tch::{Device, Kind, Tensor};

fn tch_logits(ckpt: &Path, ids: &[Vec<i64>]) -> Vec<f32> {
    let (params, unused) = Params::load_dir(ckpt, Device::Cpu).unwrap();
    assert!(unused.is_empty(), "unused keys {unused:?}");
    let flat: Vec<i64> = ids.iter().flatten().copied().collect();
    let t = Tensor::from_slice(&flat).view([ids.len() as i64, ids[0].len() as i64]);
    let _g = tch::no_grad_guard();
    let l = Gpt2::new(&params, Kind::Float).logits(&t).unwrap();
    Vec::<f32>::try_from(&l.reshape([-1])).unwrap()
}

fn check(cfg: Gpt2Config, seed: u64, head: LmHead, ids: Vec<Vec<i64>>) {
    tch::set_num_threads(1);
    let dir = tempfile::tempdir().unwrap();
    let ck = dir.path().join("ck");
    promptist::export::write_random_checkpoint(&ck, &cfg, seed, head).unwrap();
    let ours = tch_logits(&ck, &ids);
    // export through the trainer's exporter (inline ONNX)
    let bundle = dir.path().join("bundle");
    let opts = promptist_train::export::ExportOptions { external_threshold_bytes: None, ..Default::default() };
    promptist_train::export::export_bundle(&ck, &bundle, &opts).unwrap();
    let ids_path = dir.path().join("ids.json");
    std::fs::write(&ids_path, serde_json::to_string(&ids).unwrap()).unwrap();
    let out = dir.path().join("ref.safetensors");
    common::run_py("train_parity_ref.py", &[&ck, &ids_path, &out, &bundle.join("policy/model.onnx")]);
    let r = promptist::weights::read_safetensors(&out).unwrap();
    let hf = r.get("hf_logits").unwrap();
    let onnx = r.get("onnx_logits").unwrap();
    assert_eq!(hf.shape, vec![ids.len(), ids[0].len(), cfg.vocab_size]);
    let d_hf = common::max_abs_diff(&ours, &hf.data);
    let d_onnx = common::max_abs_diff(&ours, &onnx.data);
    let amax = ours.iter().fold(0f32, |m, x| m.max(x.abs()));
    eprintln!("parity {}L/{}d: max |tch - transformers| = {d_hf:.3e}, max |tch - onnx| = {d_onnx:.3e} (max |logit| {amax:.2})", cfg.n_layer, cfg.n_embd);
    assert!(d_hf <= 1e-5, "tch vs transformers: max diff {d_hf}");
    assert!(d_onnx <= 1e-4, "tch vs ONNX: max diff {d_onnx}");
}

#[test]
fn tiny_gpt2_logits_match_transformers_and_onnx() {
    let ids = vec![vec![464, 2266, 21831, 287, 262, 6729, 11, 4047, 6496, 30003, 383, 25], vec![50256, 0, 1, 2, 50255, 7, 8, 9, 10, 11, 12, 13]];
    // untied head of scale 30: peaked logits (std about 5), so the bounds are tested on large values
    check(Gpt2Config::tiny(), 11, LmHead::Untied { scale: 30.0 }, ids.clone());
    // the real GPT-2 layout: head tied to wte
    check(Gpt2Config::tiny(), 12, LmHead::Tied, ids);
}

#[test]
fn small_vocab_wider_model_matches() {
    // the demo policy's kind of shape: own small vocabulary, 4 layers, width 128
    let mut cfg = Gpt2Config::tiny();
    cfg.vocab_size = 700;
    cfg.n_layer = 4;
    cfg.n_embd = 128;
    cfg.n_positions = Some(128);
    cfg.eos_token_id = Some(699);
    cfg.bos_token_id = Some(699);
    let ids: Vec<Vec<i64>> = (0..3).map(|r| (0..40).map(|j| ((r * 97 + j * 31) % 700) as i64).collect()).collect();
    check_small(cfg, ids);
}

fn check_small(cfg: Gpt2Config, ids: Vec<Vec<i64>>) {
    tch::set_num_threads(1);
    let dir = tempfile::tempdir().unwrap();
    let ck = dir.path().join("ck");
    promptist::export::write_random_checkpoint(&ck, &cfg, 5, LmHead::Tied).unwrap();
    // the random checkpoint carries the GPT-2 tokenizer: replace it by a small one of our own
    let texts: Vec<String> = (0..200).map(|i| format!("a red fox number {i} in the snow, highly detailed Rephrase: x")).collect();
    let tok = promptist_train::demo::bpe::train_tokenizer(&texts, 700, &dir.path().join("tok")).unwrap();
    assert!(tok.vocab_size() <= 700);
    std::fs::write(ck.join("tokenizer.json"), tok.to_json().unwrap()).unwrap();
    let ours = tch_logits(&ck, &ids);
    let bundle = dir.path().join("bundle");
    promptist_train::export::export_bundle(&ck, &bundle, &Default::default()).unwrap();
    let ids_path = dir.path().join("ids.json");
    std::fs::write(&ids_path, serde_json::to_string(&ids).unwrap()).unwrap();
    let out = dir.path().join("ref.safetensors");
    common::run_py("train_parity_ref.py", &[&ck, &ids_path, &out, &bundle.join("policy/model.onnx")]);
    let r = promptist::weights::read_safetensors(&out).unwrap();
    let d_hf = common::max_abs_diff(&ours, &r.get("hf_logits").unwrap().data);
    let d_onnx = common::max_abs_diff(&ours, &r.get("onnx_logits").unwrap().data);
    eprintln!("parity small vocab: max |tch - transformers| = {d_hf:.3e}, max |tch - onnx| = {d_onnx:.3e}");
    assert!(d_hf <= 1e-5, "tch vs transformers: max diff {d_hf}");
    assert!(d_onnx <= 1e-4, "tch vs ONNX: max diff {d_onnx}");
    // the manifest records what the engine needs for a non-GPT-2 vocabulary
    let m: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(bundle.join("promptist.json")).unwrap()).unwrap();
    let c = &m["components"]["policy"]["config"];
    assert_eq!(c["vocab_size"], 700);
    assert_eq!(c["eos_token_id"], tok.eos_id());
    assert_eq!(c["promptist_tokenizer_vocab_size"], tok.vocab_size());
}

/// `pytorch_model.bin` (torch.save zip pickle, with the tied `lm_head.weight`) loads through the
/// library's reader into the same parameters as `model.safetensors`, bit for bit, and a model
/// trained from it gives transformers' logits.
#[test]
fn pytorch_bin_checkpoint_loads_like_safetensors() {
    tch::set_num_threads(1);
    let dir = tempfile::tempdir().unwrap();
    let st = dir.path().join("st");
    promptist::export::write_random_checkpoint(&st, &Gpt2Config::tiny(), 3, LmHead::Tied).unwrap();
    let bin = dir.path().join("bin");
    common::run_py("train_to_bin.py", &[&st, &bin]);
    assert!(bin.join("pytorch_model.bin").is_file() && !bin.join("model.safetensors").exists());
    let (a, _) = Params::load_dir(&st, Device::Cpu).unwrap();
    let (b, unused) = Params::load_dir(&bin, Device::Cpu).unwrap();
    assert!(unused.is_empty(), "{unused:?}");
    let (wa, wb) = (a.to_weights().unwrap(), b.to_weights().unwrap());
    assert_eq!(wa.len(), wb.len());
    for (name, t) in &wa.tensors {
        let u = wb.get(name).unwrap();
        assert_eq!(t.shape, u.shape, "{name}");
        assert!(t.data.iter().zip(&u.data).all(|(x, y)| x.to_bits() == y.to_bits()), "{name} differs");
    }
}
