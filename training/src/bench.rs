//! SFT throughput benchmark: tokens/s of this trainer's training step (forward, backward, AdamW)
//! on random tokens, against a plain PyTorch + transformers `GPT2LMHeadModel` step with the same
//! config, batch and thread count (tests/python/train_bench_ref.py), run in the same process tree
//! one after the other; prints both and the ratio.

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use promptist::export::gpt2_config::Gpt2Config;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tch::{Device, Kind, Tensor};

use crate::error::{Result, TrainError};
use crate::model::{Gpt2, Params};
use crate::sft::optim::{AdamW, AdamWConfig};

#[derive(Debug, Clone)]
pub struct BenchOptions {
    pub preset: String,
    pub batch: usize,
    pub seq: usize,
    pub steps: usize,
    pub warmup: usize,
    pub threads: usize,
    pub device: Device,
    pub python: Option<PathBuf>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct BenchResult {
    pub preset: String,
    pub batch: usize,
    pub seq: usize,
    pub threads: usize,
    pub tch_tokens_per_s: f64,
    pub torch_tokens_per_s: Option<f64>,
    pub ratio: Option<f64>,
}

/// The reference script (in the repository's tests/python).
pub fn reference_script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join("tests").join("python").join("train_bench_ref.py")
}

/// Time this trainer's step.
pub fn bench_tch(cfg: &Gpt2Config, o: &BenchOptions) -> Result<f64> {
    let params = Params::random(cfg, 0, o.device)?;
    let mut opt = AdamW::new(AdamWConfig::default(), &params)?;
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let ids: Vec<i64> = (0..o.batch * o.seq).map(|_| rng.random_range(0..cfg.vocab_size as i64)).collect();
    let ids = Tensor::f_from_slice(&ids)?.f_view([o.batch as i64, o.seq as i64])?.f_to_device(o.device)?;
    // labels: next token everywhere (as transformers' labels=input_ids), last position ignored
    let labels = ids.f_narrow(1, 1, o.seq as i64 - 1)?.f_pad(&[0, 1], "constant", -100.0)?;
    let model = Gpt2::new(&params, Kind::Float);
    let mut elapsed = 0f64;
    for s in 0..(o.warmup + o.steps) {
        let t0 = Instant::now();
        for (_, p) in params.named() {
            let mut g = p.grad();
            if g.defined() {
                let _ = g.zero_();
            }
        }
        let (l, n) = model.loss_sum(&ids, &labels)?;
        let loss = l.f_div_scalar(n as f64)?;
        loss.f_backward()?;
        opt.step(&params, 5e-5)?;
        if o.device != Device::Cpu {
            tch::Cuda::synchronize(match o.device {
                Device::Cuda(i) => i as i64,
                _ => 0,
            });
        }
        let _ = loss.f_double_value(&[])?;
        if s >= o.warmup {
            elapsed += t0.elapsed().as_secs_f64();
        }
    }
    Ok((o.batch * o.seq * o.steps) as f64 / elapsed.max(1e-9))
}

/// Run the PyTorch + transformers reference; `None` python means "no reference".
pub fn bench_torch(cfg: &Gpt2Config, o: &BenchOptions) -> Result<Option<f64>> {
    let Some(py) = &o.python else { return Ok(None) };
    let script = reference_script();
    let dev = match o.device {
        Device::Cpu => "cpu".to_string(),
        Device::Cuda(i) => format!("cuda:{i}"),
        _ => "cpu".to_string(),
    };
    let out = Command::new(py)
        .arg(&script)
        .args(["--n-layer", &cfg.n_layer.to_string(), "--n-head", &cfg.n_head.to_string(), "--n-embd", &cfg.n_embd.to_string()])
        .args(["--n-positions", &cfg.context().to_string(), "--vocab-size", &cfg.vocab_size.to_string()])
        .args(["--batch", &o.batch.to_string(), "--seq", &o.seq.to_string(), "--steps", &o.steps.to_string(), "--warmup", &o.warmup.to_string()])
        .args(["--threads", &o.threads.to_string(), "--device", &dev])
        .output()
        .map_err(|e| TrainError::io(format!("running {} {}", py.display(), script.display()), e))?;
    if !out.status.success() {
        return Err(TrainError::External(format!("{} failed: {}", script.display(), String::from_utf8_lossy(&out.stderr))));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let last = text.lines().last().unwrap_or("");
    let v: serde_json::Value = serde_json::from_str(last).map_err(|e| TrainError::External(format!("reference output {last:?}: {e}")))?;
    Ok(v.get("tokens_per_s").and_then(|x| x.as_f64()))
}

pub fn run(o: &BenchOptions) -> Result<BenchResult> {
    let cfg = Gpt2Config::preset(&o.preset)?;
    if o.seq > cfg.context() || o.seq < 2 {
        return Err(TrainError::Options(format!("--seq {} must be in 2..={}", o.seq, cfg.context())));
    }
    tch::set_num_threads(o.threads as i32);
    let ours = bench_tch(&cfg, o)?;
    let theirs = bench_torch(&cfg, o)?;
    Ok(BenchResult {
        preset: o.preset.clone(),
        batch: o.batch,
        seq: o.seq,
        threads: o.threads,
        tch_tokens_per_s: ours,
        torch_tokens_per_s: theirs,
        ratio: theirs.map(|t| ours / t),
    })
}
