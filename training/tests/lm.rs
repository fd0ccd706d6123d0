//! The padded teacher-forcing forward (`logits_masked`) and the KV-cached decoder (`TchLm`) against
//! the plain unpadded forward, on a tiny GPT-2 with a peaked (scale 30) untied head: every logit
//! within 1e-5. Rows have left padding (queries) and right padding (responses) at once; the cached
//! decoder is checked after prefill, after every step, after beam-style reorders (rows repeated and
//! dropped) and after an expansion to more rows.

mod decode_common;

use decode_common::{cache_case, masked_case, small_params, to_vec};
use promptist::policy::{CausalLm, PaddedBatch};
use promptist_train::model::{Gpt2, TchLm};
use tch::{Device, Kind, Tensor};

const TOL: f32 = 1e-5;

#[test]
fn logits_masked_match_unpadded_rows() {
    tch::set_num_threads(1);
    masked_case(&small_params(21, Device::Cpu), TOL);
}

#[test]
fn logits_masked_bf16_close_to_fp32() {
    tch::set_num_threads(1);
    let _g = tch::no_grad_guard();
    let p = small_params(22, Device::Cpu);
    let ids = Tensor::from_slice(&[999i64, 999, 5, 6, 7, 8, 9, 10, 999, 999]).view([1, 10]);
    let mask = Tensor::from_slice(&[0i64, 0, 1, 1, 1, 1, 1, 1, 0, 0]).view([1, 10]);
    let a = to_vec(&Gpt2::new(&p, Kind::Float).logits_masked(&ids, &mask).unwrap());
    let b = Gpt2::new(&p, Kind::BFloat16).logits_masked(&ids, &mask).unwrap();
    assert_eq!(b.kind(), Kind::Float);
    let b = to_vec(&b);
    let v = p.cfg.vocab_size;
    let amax = a[2 * v..8 * v].iter().fold(0f32, |m, x| m.max(x.abs()));
    let d = a[2 * v..8 * v].iter().zip(&b[2 * v..8 * v]).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
    eprintln!("bf16 vs fp32 logits_masked: max |diff| {d:.3e} (max |logit| {amax:.2})");
    assert!(d <= 0.05 * amax, "bf16 drifted: {d}");
}

#[test]
fn kv_cache_matches_full_forward() {
    tch::set_num_threads(1);
    cache_case(&small_params(23, Device::Cpu), TOL);
}

/// PPO trains through `logits_masked`: gradients through left and right padding are finite (a
/// fully padded query attends to itself, so no NaN reaches the backward pass).
#[test]
fn logits_masked_backward_is_finite() {
    tch::set_num_threads(1);
    let mut p = small_params(24, Device::Cpu);
    let ids = Tensor::from_slice(&[999i64, 999, 5, 6, 7, 8, 9, 10, 999, 999, 1, 2, 3, 4, 5, 6, 7, 8, 9, 999]).view([2, 10]);
    let mask = Tensor::from_slice(&[0i64, 0, 1, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0]).view([2, 10]);
    let logits = Gpt2::new(&p, Kind::Float).logits_masked(&ids, &mask).unwrap();
    let lp = logits.log_softmax(-1, Kind::Float).gather(2, &ids.unsqueeze(-1), false).squeeze_dim(-1);
    let loss = (lp * mask.to_kind(Kind::Float)).sum(Kind::Float);
    loss.backward();
    let mut n = 0;
    for (name, t) in p.named() {
        let g = t.grad();
        assert!(g.defined(), "{name} has no gradient");
        let finite = g.isfinite().all().int64_value(&[]) == 1;
        assert!(finite, "{name}: non-finite gradient");
        n += 1;
    }
    assert!(n > 0);
    p.zero_grad();
}

/// The cached decoder in bf16 (cache in bf16, logits in float32) stays close to fp32.
#[test]
fn kv_cache_bf16_close_to_fp32() {
    tch::set_num_threads(1);
    let p = small_params(25, Device::Cpu);
    let prompts: Vec<Vec<u32>> = vec![vec![5, 6, 7, 8], vec![9, 10]];
    let run = |kind: Kind| {
        let mut lm = TchLm::new(&p, kind);
        lm.prefill(&PaddedBatch::left_padded(&prompts, 999).unwrap()).unwrap();
        lm.select_rows(&[1, 0, 0]).unwrap();
        lm.step(&[3, 4, 5]).unwrap();
        lm.step(&[6, 7, 8]).unwrap();
        lm.logits().to_vec()
    };
    let (a, b) = (run(Kind::Float), run(Kind::BFloat16));
    let amax = a.iter().fold(0f32, |m, x| m.max(x.abs()));
    let d = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
    eprintln!("TchLm bf16 vs fp32 after 2 steps: max |diff| {d:.3e} (max |logit| {amax:.2})");
    assert!(d.is_finite() && d <= 0.05 * amax, "bf16 drifted: {d}");
}
