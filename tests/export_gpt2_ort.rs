//! The exported GPT-2 graph run from Rust through promptist::runtime (ONNX Runtime, CPU): it loads
//! with external data, has optimum's I/O names, and the KV cache is consistent: prefill + decode
//! steps give the same logits as one full pass (max abs <= 1e-5, fp32), with left padding.
//! fp16 runs too and stays within 5e-3 * (1 + max |logit|) of fp32. Needs ORT_DYLIB_PATH.

mod common;

use std::path::Path;

use half::f16;
use ort::session::Session;
use ort::value::{DynValue, Tensor};
use promptist::export::gpt2::{self, Gpt2ExportOptions};
use promptist::export::onnx::{save_model, DType, SaveOptions};
use promptist::export::{build_gpt2, random_gpt2_weights, Gpt2Config, LmHead};
use promptist::runtime::{IoNames, ProviderChoice, Runtime, SessionOptions};

fn cfg() -> Gpt2Config {
    let mut c = Gpt2Config::tiny();
    c.vocab_size = 211;
    c.n_positions = Some(32);
    c
}

fn runtime() -> Runtime {
    assert!(
        std::env::var_os("ORT_DYLIB_PATH").is_some(),
        "set ORT_DYLIB_PATH to libonnxruntime.so.1.31.1 (tests/fetch-ort.sh prints it)"
    );
    Runtime::get(None).unwrap()
}

fn export(dir: &Path, dtype: DType) -> std::path::PathBuf {
    let c = cfg();
    let w = random_gpt2_weights(&c, 11, LmHead::Untied { scale: 30.0 }).unwrap();
    let model = build_gpt2(&c, &w, &Gpt2ExportOptions { dtype, ..Default::default() }).unwrap();
    let path = dir.join(format!("{dtype:?}.onnx"));
    let saved = save_model(&model, &path, &SaveOptions { external_threshold_bytes: Some(1024) }).unwrap();
    assert!(saved.data_path.is_some());
    path
}

fn io_names(n_layer: usize) -> IoNames {
    let mut ins = vec![gpt2::INPUT_IDS.to_string(), gpt2::ATTENTION_MASK.into(), gpt2::POSITION_IDS.into()];
    let mut outs = vec![gpt2::LOGITS.to_string()];
    for i in 0..n_layer {
        ins.extend([gpt2::past_key_name(i), gpt2::past_value_name(i)]);
        outs.extend([gpt2::present_key_name(i), gpt2::present_value_name(i)]);
    }
    IoNames::new(ins, outs)
}

/// One graph call; returns logits [B, S, V] (flattened) and the presents.
fn step(s: &mut Session, ids: &[i64], mask: &[i64], pos: &[i64], b: usize, past: Vec<DynValue>) -> (Vec<f32>, Vec<DynValue>) {
    common::gpt2_step(s, cfg().n_layer, ids, mask, pos, b, past)
}

fn empty_past(b: usize, dtype: DType) -> Vec<DynValue> {
    let c = cfg();
    let shape = [b, c.n_head, 0, c.head_dim()];
    (0..2 * c.n_layer)
        .map(|_| match dtype {
            DType::F16 => Tensor::from_array((shape, Vec::<f16>::new())).unwrap().into_dyn(),
            _ => Tensor::from_array((shape, Vec::<f32>::new())).unwrap().into_dyn(),
        })
        .collect()
}

/// Row 0: 7 real tokens; row 1: 3 padding + 4 real tokens.
fn batch() -> (Vec<i64>, Vec<i64>, Vec<i64>) {
    let ids = vec![5, 17, 42, 99, 3, 150, 7, 0, 0, 0, 8, 64, 120, 33];
    let mask = vec![1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 1, 1, 1, 1];
    let pos = vec![0, 1, 2, 3, 4, 5, 6, 1, 1, 1, 0, 1, 2, 3];
    (ids, mask, pos)
}

fn cols(v: &[i64], b: usize, from: usize, to: usize) -> Vec<i64> {
    let w = v.len() / b;
    (0..b).flat_map(|r| v[r * w + from..r * w + to].to_vec()).collect()
}

fn max_abs(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

/// Logits of a full pass, and of prefill (first 5 positions) + 2 single-token decode steps.
fn full_and_cached(s: &mut Session, dtype: DType) -> (Vec<f32>, Vec<Vec<f32>>) {
    let (ids, mask, pos) = batch();
    let (full, _) = step(s, &ids, &mask, &pos, 2, empty_past(2, dtype));
    let (pre, mut past) =
        step(s, &cols(&ids, 2, 0, 5), &cols(&mask, 2, 0, 5), &cols(&pos, 2, 0, 5), 2, empty_past(2, dtype));
    let mut parts = vec![pre];
    for t in 5..7 {
        let (l, p) = step(s, &cols(&ids, 2, t, t + 1), &cols(&mask, 2, 0, t + 1), &cols(&pos, 2, t, t + 1), 2, past);
        past = p;
        parts.push(l);
    }
    (full, parts)
}

#[test]
fn kv_cache_matches_full_pass_fp32_and_fp16_is_close() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime();
    let opts = SessionOptions { provider: ProviderChoice::Cpu, intra_op_threads: 1, ..Default::default() };
    let c = cfg();
    let v = c.vocab_size;

    let (mut s32, _) = rt.session(&export(dir.path(), DType::F32), &opts, Some(&io_names(c.n_layer))).unwrap();
    let (full, parts) = full_and_cached(&mut s32, DType::F32);
    assert_eq!(full.len(), 2 * 7 * v);
    // reassemble [B, 7, V] from the prefill [B, 5, V] and two [B, 1, V] steps
    let mut cached = vec![0f32; full.len()];
    for r in 0..2 {
        cached[r * 7 * v..r * 7 * v + 5 * v].copy_from_slice(&parts[0][r * 5 * v..(r + 1) * 5 * v]);
        for (k, p) in parts[1..].iter().enumerate() {
            cached[r * 7 * v + (5 + k) * v..r * 7 * v + (6 + k) * v].copy_from_slice(&p[r * v..(r + 1) * v]);
        }
    }
    let d = max_abs(&full, &cached);
    assert!(d <= 1e-5, "cached vs full max abs diff {d}");
    assert!(full.iter().all(|x| x.is_finite()));

    let (mut s16, _) = rt.session(&export(dir.path(), DType::F16), &opts, Some(&io_names(c.n_layer))).unwrap();
    let (full16, _) = full_and_cached(&mut s16, DType::F16);
    let peak = full.iter().fold(0f32, |m, x| m.max(x.abs()));
    let d16 = max_abs(&full, &full16);
    assert!(d16 <= 5e-3 * (1.0 + peak), "fp16 vs fp32 max abs diff {d16} (peak |logit| {peak})");
    eprintln!("cached-vs-full fp32 max abs {d:e}; fp16-vs-fp32 max abs {d16:e} (peak |logit| {peak})");
}
