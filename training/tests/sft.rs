//! SFT on the CPU: the loss on a fixed tiny (synthetic) corpus falls below a stated bound within a
//! fixed number of steps with a fixed seed, and a run resumed from its `last/` checkpoint continues
//! the same loss curve bit for bit (one libtorch thread).

mod common;

use std::path::Path;

use promptist::export::gpt2_config::Gpt2Config;
use promptist::text::gpt2::Gpt2Tokenizer;
use promptist_train::data::prepare::{prepare, Prepared};
use promptist_train::model::Params;
use promptist_train::sft::checkpoint::load_state;
use promptist_train::sft::optim::{AdamW, AdamWConfig};
use promptist_train::sft::{train, Metric, SftConfig};
use tch::Device;

const SEED: u64 = 1;
const STEPS: u64 = 200;

fn setup(dir: &Path, n_targets: usize) -> (Gpt2Config, Gpt2Tokenizer, Prepared) {
    let (opts, tok) = common::synthetic_sft_data(dir, n_targets, SEED);
    let mut cfg = Gpt2Config::tiny();
    cfg.vocab_size = tok.vocab_size();
    cfg.n_positions = Some(128);
    let data = prepare(&opts, &tok).unwrap();
    (cfg, tok, data)
}

fn sft_cfg(max_steps: u64) -> SftConfig {
    SftConfig {
        adamw: AdamWConfig { lr: 3e-3, ..Default::default() },
        batch_size: 16,
        micro_batch: 8,
        max_steps,
        eval_every: 20,
        save_every: 3,
        seed: SEED,
        progress: false,
        synthetic: true,
        ..Default::default()
    }
}

fn metrics(out: &Path) -> Vec<Metric> {
    std::fs::read_to_string(out.join("metrics.jsonl")).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// Learning test: 200 steps of 16 examples (lr 3e-3, seed 1) take the target-token loss of a
/// 2-layer width-64 GPT-2 from about ln(vocab) to below 1.5 on the synthetic corpus.
#[test]
fn loss_falls_below_bound() {
    let dir = tempfile::tempdir().unwrap();
    let (cfg, tok, data) = setup(dir.path(), 300);
    let params = Params::random(&cfg, SEED, Device::Cpu).unwrap();
    let mut opt = AdamW::new(AdamWConfig { lr: 3e-3, ..Default::default() }, &params).unwrap();
    let mut c = sft_cfg(STEPS);
    c.save_every = STEPS;
    let out = dir.path().join("run");
    let s = train(&params, &mut opt, &tok, &data, &out, &c, None).unwrap();
    let first = s.losses[0];
    let last = *s.losses.last().unwrap();
    let val = s.state.last_val_loss.unwrap();
    eprintln!("loss: step 1 {first:.4}, step {STEPS} {last:.4}, validation {val:.4} (vocab {})", cfg.vocab_size);
    assert!(first > 5.0, "initial loss {first} should be near ln(vocab)");
    assert!(last < 1.5, "train loss after {STEPS} steps is {last}, bound 1.5");
    assert!(val < 1.5, "validation loss after {STEPS} steps is {val}, bound 1.5");
    for f in ["last/model.safetensors", "last/optimizer.safetensors", "best/model.safetensors", "underfit/model.safetensors", "loss.png"] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    // the best checkpoint reloads and exports
    let st = load_state(&out.join("best")).unwrap();
    assert_eq!(st.best_step, Some(STEPS));
    let m = promptist_train::export::export_bundle(&out.join("best"), &dir.path().join("bundle"), &Default::default()).unwrap();
    assert!(m.provenance.synthetic_training_data);
}

/// Resume: 6 steps straight vs 3 steps, "interruption", and 3 more from last/: the same losses
/// and the same final weights, bit for bit.
#[test]
fn resume_continues_the_same_curve_bitwise() {
    let dir = tempfile::tempdir().unwrap();
    let (cfg, tok, data) = setup(dir.path(), 60);
    let a = dir.path().join("a");
    let params = Params::random(&cfg, SEED, Device::Cpu).unwrap();
    let mut opt = AdamW::new(sft_cfg(6).adamw, &params).unwrap();
    train(&params, &mut opt, &tok, &data, &a, &sft_cfg(6), None).unwrap();

    let b = dir.path().join("b");
    let params = Params::random(&cfg, SEED, Device::Cpu).unwrap();
    let mut opt = AdamW::new(sft_cfg(3).adamw, &params).unwrap();
    train(&params, &mut opt, &tok, &data, &b, &sft_cfg(3), None).unwrap();
    drop((params, opt));
    // a fresh process would do exactly this: load last/ and go on
    let last = b.join("last");
    let (params, _) = Params::load_dir(&last, Device::Cpu).unwrap();
    let st = load_state(&last).unwrap();
    assert_eq!(st.step, 3);
    let mut opt = AdamW::new(sft_cfg(6).adamw, &params).unwrap();
    opt.load(&last.join("optimizer.safetensors"), st.step, &params).unwrap();
    train(&params, &mut opt, &tok, &data, &b, &sft_cfg(6), Some(st)).unwrap();

    let (ma, mb) = (metrics(&a), metrics(&b));
    assert_eq!(ma.len(), 6);
    assert_eq!(mb.len(), 6);
    for (x, y) in ma.iter().zip(&mb) {
        assert_eq!(x.step, y.step);
        assert_eq!(x.train_loss.to_bits(), y.train_loss.to_bits(), "step {}: {} vs {}", x.step, x.train_loss, y.train_loss);
        assert_eq!(x.grad_norm.to_bits(), y.grad_norm.to_bits(), "step {}", x.step);
    }
    let wa = std::fs::read(a.join("last/model.safetensors")).unwrap();
    let wb = std::fs::read(b.join("last/model.safetensors")).unwrap();
    assert!(wa == wb, "final weights differ");
    let oa = std::fs::read(a.join("last/optimizer.safetensors")).unwrap();
    let ob = std::fs::read(b.join("last/optimizer.safetensors")).unwrap();
    assert!(oa == ob, "final optimizer state differs");
}

/// Gradient accumulation: micro-batches of 4 and one micro-batch of 16 give the same step (the
/// loss is the mean over all target tokens of the optimizer batch), up to float rounding.
#[test]
fn accumulation_matches_one_big_batch() {
    let dir = tempfile::tempdir().unwrap();
    let (cfg, tok, data) = setup(dir.path(), 60);
    let mut losses = Vec::new();
    for micro in [4, 16] {
        let params = Params::random(&cfg, SEED, Device::Cpu).unwrap();
        let mut opt = AdamW::new(sft_cfg(3).adamw, &params).unwrap();
        let mut c = sft_cfg(3);
        c.micro_batch = micro;
        let s = train(&params, &mut opt, &tok, &data, &dir.path().join(format!("m{micro}")), &c, None).unwrap();
        losses.push(s.losses);
    }
    for (x, y) in losses[0].iter().zip(&losses[1]) {
        assert!((x - y).abs() < 1e-4, "{x} vs {y}");
    }
}
