//! Supervised fine-tuning (docs/method.md §4): teacher forcing on
//! `"{source} Rephrase: {target}<|endoftext|>"` with the loss on the target tokens only (mean over
//! all target tokens of an optimizer batch, so gradient accumulation over micro-batches gives the
//! same update as one big batch); AdamW with the paper's defaults; validation loss every
//! `eval_every` steps; the best and the slightly under-fitted checkpoints kept; a resumable
//! `last/` checkpoint; metrics as JSONL and a PNG loss curve.
//!
//! The example order is a pure function of (seed, step): epoch e is a ChaCha8 permutation of the
//! training set (stream e), and step s takes stream positions [s*B, (s+1)*B). So a resumed run
//! sees the same batches, and on the CPU (same thread count) reproduces the same losses bit for bit.

pub mod batch;
pub mod checkpoint;
pub mod optim;
pub mod plot;
pub mod progress;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use promptist::text::gpt2::Gpt2Tokenizer;
use serde::{Deserialize, Serialize};
use tch::Kind;

use crate::data::prepare::{Example, Prepared};
use crate::device::Precision;
use crate::error::{Result, TrainError};
use crate::model::{Gpt2, Params};
use batch::{micro_batch_tensors, Order};
use checkpoint::{save_checkpoint, TrainerState};
use optim::{grad_norm, scale_grads, AdamW, AdamWConfig};
use progress::Progress;

/// SFT options (defaults: the paper's, docs/method.md §4).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SftConfig {
    pub adamw: AdamWConfig,
    /// Examples per optimizer step (the paper's 256).
    pub batch_size: usize,
    /// Examples per forward/backward (gradient accumulation = batch_size / micro_batch).
    pub micro_batch: usize,
    pub max_steps: u64,
    /// Linear warm-up steps, then a constant learning rate.
    pub warmup_steps: u64,
    /// Clip the global gradient norm to this (0: no clipping).
    pub max_grad_norm: f64,
    pub eval_every: u64,
    pub save_every: u64,
    pub seed: u64,
    #[serde(skip, default = "default_precision")]
    pub precision: Precision,
    /// The under-fitted checkpoint: the earliest evaluated one whose validation loss is within
    /// this relative margin of the best seen so far.
    pub underfit_tolerance: f64,
    pub progress: bool,
    /// Mark checkpoints as trained on synthetic data.
    pub synthetic: bool,
}

fn default_precision() -> Precision {
    Precision::Fp32
}

impl Default for SftConfig {
    fn default() -> Self {
        Self {
            adamw: AdamWConfig::default(),
            batch_size: 256,
            micro_batch: 8,
            max_steps: 15_000,
            warmup_steps: 0,
            max_grad_norm: 1.0,
            eval_every: 500,
            save_every: 500,
            seed: 42,
            precision: Precision::Fp32,
            underfit_tolerance: 0.02,
            progress: true,
            synthetic: false,
        }
    }
}

/// One metrics line.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Metric {
    pub step: u64,
    pub train_loss: f64,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub val_loss: Option<f64>,
    pub lr: f64,
    pub grad_norm: f64,
    pub tokens: u64,
    pub tokens_per_s: f64,
    pub elapsed_s: f64,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub skipped: Option<bool>,
}

/// Result of a run.
#[derive(Debug, Clone)]
pub struct Summary {
    pub state: TrainerState,
    pub losses: Vec<f64>,
    pub last_dir: PathBuf,
}

/// Validation loss (mean over target tokens) of `examples`.
pub fn evaluate(params: &Params, compute: Kind, examples: &[Example], micro: usize, pad: i64) -> Result<Option<f64>> {
    if examples.is_empty() {
        return Ok(None);
    }
    let _g = tch::no_grad_guard();
    let model = Gpt2::new(params, compute);
    let (mut sum, mut n) = (0f64, 0i64);
    for chunk in examples.chunks(micro.max(1)) {
        let refs: Vec<&Example> = chunk.iter().collect();
        let (ids, labels) = micro_batch_tensors(&refs, pad, params.device)?;
        let (l, k) = model.loss_sum(&ids, &labels)?;
        sum += l.f_double_value(&[])?;
        n += k;
    }
    Ok(Some(sum / n.max(1) as f64))
}

fn lr_at(cfg: &SftConfig, step: u64) -> f64 {
    if cfg.warmup_steps > 0 && step < cfg.warmup_steps {
        cfg.adamw.lr * (step + 1) as f64 / cfg.warmup_steps as f64
    } else {
        cfg.adamw.lr
    }
}

/// Keep metrics lines with step <= `step` (a resumed run rewrites what came after its checkpoint).
impl crate::metrics::StepRecord for Metric {
    fn step(&self) -> u64 {
        self.step
    }
}

fn plot(out: &Path, metrics: &[Metric]) -> Result<()> {
    let train: Vec<(f64, f64)> = metrics.iter().filter(|m| m.skipped != Some(true)).map(|m| (m.step as f64, m.train_loss)).collect();
    let val: Vec<(f64, f64)> = metrics.iter().filter_map(|m| m.val_loss.map(|v| (m.step as f64, v))).collect();
    plot::plot_losses(&out.join("loss.png"), &[([40, 90, 220], train), ([220, 40, 40], val)])
}

/// Train `params` on `data`, writing checkpoints and metrics into `out`. `resume` is the state of
/// the `last/` checkpoint whose weights and optimizer are already loaded into `params` / `opt`.
pub fn train(params: &Params, opt: &mut AdamW, tok: &Gpt2Tokenizer, data: &Prepared, out: &Path, cfg: &SftConfig, resume: Option<TrainerState>) -> Result<Summary> {
    if cfg.batch_size == 0 || cfg.micro_batch == 0 {
        return Err(TrainError::Options("batch size and micro-batch must be positive".into()));
    }
    std::fs::create_dir_all(out).map_err(|e| TrainError::io(format!("creating {}", out.display()), e))?;
    let pad = i64::from(tok.eos_id());
    let compute = cfg.precision.compute_kind();
    let options = serde_json::to_value(cfg).map_err(|e| TrainError::Data(format!("options to JSON: {e}")))?;
    let mut state = match resume {
        Some(s) => {
            if s.data_fingerprint != data.stats.fingerprint {
                return Err(TrainError::Checkpoint(format!(
                    "the data differ from the run being resumed (fingerprint {} vs {}): same files, columns, seed and options are needed",
                    &data.stats.fingerprint[..12],
                    &s.data_fingerprint[..12.min(s.data_fingerprint.len())]
                )));
            }
            if s.seed != cfg.seed {
                return Err(TrainError::Checkpoint(format!("the run being resumed used seed {}, not {}", s.seed, cfg.seed)));
            }
            s
        }
        None => TrainerState {
            step: 0,
            seed: cfg.seed,
            tokens_seen: 0,
            best_val_loss: None,
            best_step: None,
            underfit_val_loss: None,
            underfit_step: None,
            last_val_loss: None,
            loss_scale: if cfg.precision == Precision::Fp16 { 65536.0 } else { 1.0 },
            good_steps: 0,
            data_fingerprint: data.stats.fingerprint.clone(),
            options: options.clone(),
        },
    };
    state.options = options;
    let metrics_path = out.join("metrics.jsonl");
    let mut metrics: Vec<Metric> = crate::metrics::truncate_metrics(&metrics_path, state.step)?;
    let mut mfile = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(&metrics_path)
        .map_err(|e| TrainError::io(format!("opening {}", metrics_path.display()), e))?;
    let mut order = Order::new(data.train.len(), cfg.seed);
    let bar = Progress::new(cfg.max_steps, state.step, cfg.progress);
    let start = Instant::now();
    let mut losses = Vec::new();
    let last_dir = out.join("last");
    let mut last_saved = (state.step > 0).then_some(state.step);
    let model = Gpt2::new(params, compute);
    let mut params_mut = ParamsGrad { params };
    while state.step < cfg.max_steps {
        let t0 = Instant::now();
        let idx = order.batch(state.step, cfg.batch_size);
        let batch: Vec<&Example> = idx.iter().map(|&i| &data.train[i]).collect();
        let total_targets: usize = batch.iter().map(|e| e.target_tokens()).sum();
        let tokens: usize = batch.iter().map(|e| e.ids.len()).sum();
        params_mut.zero_grad();
        let mut loss_acc = 0f64;
        for chunk in batch.chunks(cfg.micro_batch) {
            let (ids, labels) = micro_batch_tensors(chunk, pad, params.device)?;
            let (l, _n) = model.loss_sum(&ids, &labels)?;
            let scaled = l.f_div_scalar(total_targets as f64)?;
            loss_acc += scaled.f_double_value(&[])?;
            let to_back = if state.loss_scale != 1.0 { scaled.f_mul_scalar(state.loss_scale)? } else { scaled };
            to_back.f_backward()?;
        }
        let mut skipped = false;
        if state.loss_scale != 1.0 {
            scale_grads(params, 1.0 / state.loss_scale)?;
        }
        let mut gn = grad_norm(params)?;
        // fp16's dynamic loss scale skips an overflowed step (halving the scale); otherwise, and
        // when the scale has fallen below 1 (the loss itself overflows), a NaN or infinite loss or
        // gradient stops the run before the optimizer step, leaving the last checkpoint good.
        if !gn.is_finite() || !loss_acc.is_finite() {
            if cfg.precision == Precision::Fp16 && state.loss_scale >= 1.0 {
                state.loss_scale /= 2.0;
                state.good_steps = 0;
                skipped = true;
            } else {
                bar.newline();
                let what = if loss_acc.is_finite() { "the gradient" } else { "the loss" };
                let kept = match last_saved {
                    Some(k) => format!("the last good checkpoint is {} (step {k})", last_dir.display()),
                    None => "no checkpoint was written yet".to_string(),
                };
                return Err(TrainError::NonFinite(format!(
                    "step {}: {what} is not finite (loss {loss_acc}, gradient norm {gn}); the run stopped before the optimizer step and {kept}; lower the learning rate or check the data",
                    state.step + 1
                )));
            }
        }
        let lr = lr_at(cfg, state.step);
        if !skipped {
            if cfg.max_grad_norm > 0.0 && gn > cfg.max_grad_norm {
                scale_grads(params, cfg.max_grad_norm / (gn + 1e-6))?;
            }
            opt.step(params, lr)?;
            if cfg.precision == Precision::Fp16 {
                state.good_steps += 1;
                if state.good_steps % 2000 == 0 {
                    state.loss_scale *= 2.0;
                }
            }
        } else {
            gn = f64::NAN;
        }
        state.step += 1;
        state.tokens_seen += tokens as u64;
        let dt = t0.elapsed().as_secs_f64();
        let tps = tokens as f64 / dt.max(1e-9);
        losses.push(loss_acc);
        let mut m = Metric {
            step: state.step,
            train_loss: loss_acc,
            val_loss: None,
            lr,
            grad_norm: gn,
            tokens: state.tokens_seen,
            tokens_per_s: tps,
            elapsed_s: start.elapsed().as_secs_f64(),
            skipped: skipped.then_some(true),
        };
        let eval_now = cfg.eval_every > 0 && (state.step % cfg.eval_every == 0 || state.step == cfg.max_steps);
        if eval_now {
            let v = evaluate(params, compute, &data.val, cfg.micro_batch, pad)?;
            m.val_loss = v;
            state.last_val_loss = v;
            if let Some(v) = v {
                let best = state.best_val_loss.map_or(true, |b| v < b);
                if best {
                    state.best_val_loss = Some(v);
                    state.best_step = Some(state.step);
                    save_checkpoint(&out.join("best"), params, tok, &state, None, cfg.synthetic)?;
                }
                let b = state.best_val_loss.unwrap_or(v);
                let underfit_stale = state.underfit_val_loss.map_or(true, |u| u > b * (1.0 + cfg.underfit_tolerance));
                if underfit_stale && v <= b * (1.0 + cfg.underfit_tolerance) {
                    state.underfit_val_loss = Some(v);
                    state.underfit_step = Some(state.step);
                    save_checkpoint(&out.join("underfit"), params, tok, &state, None, cfg.synthetic)?;
                }
            }
        }
        let line = serde_json::to_string(&m).map_err(|e| TrainError::Data(format!("metrics: {e}")))?;
        writeln!(mfile, "{line}").map_err(|e| TrainError::io(format!("writing {}", metrics_path.display()), e))?;
        metrics.push(m);
        let extra = match state.last_val_loss {
            Some(v) => format!("val {v:.4}"),
            None => String::new(),
        };
        bar.update(state.step, loss_acc, tps, &extra);
        let save_now = (cfg.save_every > 0 && state.step % cfg.save_every == 0) || state.step == cfg.max_steps;
        if save_now {
            save_checkpoint(&last_dir, params, tok, &state, Some(opt), cfg.synthetic)?;
            last_saved = Some(state.step);
            plot(out, &metrics)?;
        }
    }
    bar.newline();
    plot(out, &metrics)?;
    Ok(Summary { state, losses, last_dir })
}

/// Zeroing gradients through a shared reference (tch tensors are handles).
struct ParamsGrad<'a> {
    params: &'a Params,
}

impl ParamsGrad<'_> {
    fn zero_grad(&mut self) {
        for (_, p) in self.params.named() {
            let mut g = p.grad();
            if g.defined() {
                let _ = g.detach_();
                let _ = g.zero_();
            }
        }
    }
}
