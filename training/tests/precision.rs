//! Mixed precision (the explicit autocast of model/gpt2.rs: matmuls and attention in bf16/fp16,
//! LayerNorm, residuals, loss and master weights in f32), checked on the CPU since no GPU is
//! needed for the arithmetic: logits stay close to fp32 and an SFT step runs and is finite.

use promptist::export::gpt2_config::Gpt2Config;
use promptist_train::device::Precision;
use promptist_train::model::{Gpt2, Params};
use tch::{Device, Tensor};

#[test]
fn bf16_and_fp16_logits_are_close_to_fp32_and_train() {
    tch::set_num_threads(1);
    let mut cfg = Gpt2Config::tiny();
    cfg.vocab_size = 300;
    let params = Params::random(&cfg, 9, Device::Cpu).unwrap();
    let ids: Vec<i64> = (0..64).map(|i| (i * 37 % 300) as i64).collect();
    let ids = Tensor::from_slice(&ids).view([2, 32]);
    let _g = tch::no_grad_guard();
    let f32_logits = Gpt2::new(&params, Precision::Fp32.compute_kind()).logits(&ids).unwrap();
    let amax = f32_logits.abs().max().double_value(&[]);
    for p in [Precision::Bf16, Precision::Fp16] {
        let l = Gpt2::new(&params, p.compute_kind()).logits(&ids).unwrap();
        assert_eq!(l.kind(), tch::Kind::Float, "logits come back in f32");
        let d = (&l - &f32_logits).abs().max().double_value(&[]);
        // bf16 keeps 8 mantissa bits: 2^-8 relative per op, a few ops deep
        let tol = 0.01 * (1.0 + amax);
        eprintln!("{}: max |logit - fp32| = {d:.3e} (max |logit| {amax:.3}, tolerance {tol:.3e})", p.name());
        assert!(d <= tol, "{}: {d} > {tol}", p.name());
    }
    drop(_g);
    // one bf16 training step: gradients reach the f32 master weights
    let labels = ids.narrow(1, 1, 31).pad([0, 1], "constant", Some(-100.0));
    let model = Gpt2::new(&params, Precision::Bf16.compute_kind());
    let (l, n) = model.loss_sum(&ids, &labels).unwrap();
    (l / n as f64).backward();
    let g = params.get("transformer.h.0.attn.c_attn.weight").unwrap().grad();
    assert_eq!(g.kind(), tch::Kind::Float);
    assert!(g.abs().sum(tch::Kind::Float).double_value(&[]) > 0.0);
    assert!(g.isfinite().all().int64_value(&[]) == 1);
}
