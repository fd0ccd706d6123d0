//! PPO against the Promptist reward (docs/method.md §3 and §5; Hao et al., "Optimizing Prompts for
//! Text-to-Image Generation", section 2.2): each step is three stages with plain data between them:
//! a rollout (diverse beam search of the policy, one returned sequence picked per prompt), the
//! reward (the library's scorer on SD images, x's baseline cached across steps) and the update
//! (KL-penalised token rewards, GAE, clipped PPO on separate policy and value networks, the SFT
//! model frozen as the KL reference). Metrics go to JSONL and PNG curves, a resumable checkpoint
//! is written after every `save_every` steps, and the final policy can be exported as a bundle.

pub mod bench;
pub mod config;
pub mod eval;
pub mod experience;
pub mod math;
pub mod prompts;
pub mod reward;
pub mod rollout;
pub mod state;
pub mod update;
pub mod value;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};
use tch::{Device, Kind};

use crate::error::{Result, TrainError};
use crate::model::Params;
use crate::sft::optim::AdamW;
use crate::sft::plot::plot_losses;
use crate::sft::progress::Progress;
use config::PpoConfig;
use prompts::PromptMix;
use reward::RewardStage;
use rollout::{rollout, step_rng};
use state::PpoState;
use update::{update, Nets};

/// One metrics line per PPO step.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StepMetrics {
    pub step: u64,
    pub reward: f64,
    pub reward_std: f64,
    pub aesthetic_gain: f64,
    pub relevance: f64,
    pub similarity: f64,
    pub kl: f64,
    pub beta: f64,
    pub pg_loss: f64,
    pub vf_loss: f64,
    pub clip_frac: f64,
    pub vf_clip_frac: f64,
    pub approx_kl: f64,
    pub mean_value: f64,
    pub response_len: f64,
    pub max_new_tokens: usize,
    pub empty_responses: usize,
    /// Share of this step's distinct x's whose baseline came from the cache.
    pub cache_hit_rate: f64,
    pub user_images: usize,
    pub candidate_images: usize,
    pub rollout_s: f64,
    pub reward_s: f64,
    pub update_s: f64,
    pub elapsed_s: f64,
}

/// Inputs and outputs of a run.
pub struct PpoRun {
    pub cfg: PpoConfig,
    /// The SFT checkpoint folder (policy, value body and frozen reference start from it).
    pub sft: PathBuf,
    pub out: PathBuf,
    pub prompts: PromptMix,
    pub device: Device,
    pub compute: Kind,
    pub resume: bool,
    pub progress: bool,
    /// Mark the policy checkpoints as trained from synthetic data.
    pub synthetic: bool,
}

/// The outcome of [`train`].
pub struct Summary {
    pub state: PpoState,
    pub metrics: Vec<StepMetrics>,
    pub last_dir: PathBuf,
}

/// Train. `reward` holds the opened scorer (its baseline cache lives as long as it does).
pub fn train(run: &PpoRun, reward: &RewardStage) -> Result<Summary> {
    run.cfg.validate()?;
    let out = &run.out;
    std::fs::create_dir_all(out).map_err(|e| TrainError::io(format!("creating {}", out.display()), e))?;
    let last_dir = out.join("last");
    let tok = promptist::export::convert::checkpoint_tokenizer(&run.sft)?;
    let eos = i64::from(tok.eos_id());
    let sft_fp = state::sft_fingerprint(&run.sft)?;
    let prompts_fp = run.prompts.fingerprint();
    let (reference, mut policy, mut value, mut popt, mut vopt, mut st) = match (run.resume, state::resumable(&last_dir)) {
        (true, Some(dir)) => {
            let s = state::load_state(&dir)?;
            if s.sft_fingerprint != sft_fp {
                return Err(TrainError::Checkpoint(format!("{}: the run being resumed started from another SFT model", dir.display())));
            }
            if s.prompts_fingerprint != prompts_fp {
                return Err(TrainError::Checkpoint("the prompts differ from the run being resumed (same files and weights are needed)".into()));
            }
            if s.config.seed != run.cfg.seed {
                return Err(TrainError::Checkpoint(format!("the run being resumed used seed {}, not {}", s.config.seed, run.cfg.seed)));
            }
            let (sft, _) = Params::load_dir(&run.sft, run.device)?;
            let reference = value::frozen_copy(&sft)?;
            let (policy, _) = Params::load_dir(&dir.join("policy"), run.device)?;
            let value = state::load_value(&dir, &policy.cfg, run.device)?;
            let mut popt = AdamW::new(run.cfg.adamw(), &policy)?;
            let mut vopt = AdamW::new(run.cfg.adamw(), &value)?;
            popt.load(&dir.join("policy_optimizer.safetensors"), s.step * run.cfg.ppo_epochs as u64, &policy)?;
            vopt.load(&dir.join("value_optimizer.safetensors"), s.step * run.cfg.ppo_epochs as u64, &value)?;
            (reference, policy, value, popt, vopt, s)
        }
        (true, None) => return Err(TrainError::Checkpoint(format!("--resume: no PPO checkpoint at {}", last_dir.display()))),
        (false, _) => {
            let n = value::FreshNetworks::from_sft(&run.sft, &run.cfg, run.device)?;
            let s = PpoState { step: 0, prompts_fingerprint: prompts_fp.clone(), sft_fingerprint: sft_fp.clone(), config: run.cfg.clone() };
            (n.reference, n.policy, n.value, n.policy_opt, n.value_opt, s)
        }
    };
    if let Some(k) = run.cfg.train_top_blocks {
        value::train_top_blocks(&policy, k)?;
    }
    st.config = run.cfg.clone();
    let metrics_path = out.join("metrics.jsonl");
    let mut metrics: Vec<StepMetrics> = crate::metrics::truncate_metrics(&metrics_path, st.step)?;
    let mut mfile = std::fs::OpenOptions::new()
        .append(true)
        .open(&metrics_path)
        .map_err(|e| TrainError::io(format!("opening {}", metrics_path.display()), e))?;
    let bar = Progress::new(run.cfg.steps, st.step, run.progress);
    let start = Instant::now();
    while st.step < run.cfg.steps {
        let mut rng = step_rng(run.cfg.seed, st.step);
        let sources = run.prompts.batch(run.cfg.seed, st.step, run.cfg.batch_size);
        let t0 = Instant::now();
        let roll = rollout(&policy, run.compute, &tok, &sources, &run.cfg, &mut rng)?;
        let rollout_s = t0.elapsed().as_secs_f64();
        let pairs: Vec<(String, String)> = roll.sources.iter().cloned().zip(roll.texts.iter().cloned()).collect();
        let rw = reward.score(&pairs)?;
        let mut nets = Nets { policy: &mut policy, reference: &reference, value: &mut value, policy_opt: &mut popt, value_opt: &mut vopt, compute: run.compute };
        let up = update(&mut nets, &roll, &rw.reward, &run.cfg, eos).map_err(|e| match e {
            TrainError::NonFinite(m) => TrainError::NonFinite(match state::resumable(&last_dir) {
                Some(d) => format!("step {}: {m}; the run stopped before the optimizer step and the last good checkpoint is {}", st.step + 1, d.display()),
                None => format!("step {}: {m}; the run stopped before the optimizer step (no checkpoint was written yet)", st.step + 1),
            }),
            other => other,
        })?;
        st.step += 1;
        let n = rw.reward.len().max(1) as f64;
        let mean = |v: &[f64]| v.iter().sum::<f64>() / n;
        let r_mean = mean(&rw.reward);
        let distinct = (rw.baselines_hit + rw.baselines_computed).max(1) as f64;
        let m = StepMetrics {
            step: st.step,
            reward: r_mean,
            reward_std: (rw.reward.iter().map(|r| (r - r_mean).powi(2)).sum::<f64>() / n).sqrt(),
            aesthetic_gain: mean(&rw.aesthetic_gain),
            relevance: mean(&rw.relevance),
            similarity: mean(&rw.similarity),
            kl: up.kl,
            beta: run.cfg.beta,
            pg_loss: up.pg_loss,
            vf_loss: up.vf_loss,
            clip_frac: up.clip_frac,
            vf_clip_frac: up.vf_clip_frac,
            approx_kl: up.approx_kl,
            mean_value: up.mean_value,
            response_len: up.response_len,
            max_new_tokens: roll.max_new_tokens,
            empty_responses: rw.empty,
            cache_hit_rate: rw.baselines_hit as f64 / distinct,
            user_images: rw.user_images,
            candidate_images: rw.candidate_images,
            rollout_s,
            reward_s: rw.seconds,
            update_s: up.seconds,
            elapsed_s: start.elapsed().as_secs_f64(),
        };
        let line = serde_json::to_string(&m).map_err(|e| TrainError::Data(format!("metrics: {e}")))?;
        writeln!(mfile, "{line}").map_err(|e| TrainError::io(format!("writing {}", metrics_path.display()), e))?;
        metrics.push(m.clone());
        bar.status(
            st.step,
            &format!("reward {:.4} kl {:.3}", m.reward, m.kl),
            &format!("[rollout {:.1}s reward {:.1}s update {:.1}s, cache {:.0}%]", m.rollout_s, m.reward_s, m.update_s, 100.0 * m.cache_hit_rate),
        );
        if st.step % run.cfg.save_every.max(1) == 0 || st.step == run.cfg.steps {
            state::save(&last_dir, &policy, &value, &popt, &vopt, &tok, &st, run.synthetic)?;
            plot(out, &metrics)?;
        }
    }
    bar.newline();
    plot(out, &metrics)?;
    Ok(Summary { state: st, metrics, last_dir })
}

impl crate::metrics::StepRecord for StepMetrics {
    fn step(&self) -> u64 {
        self.step
    }
}

/// `reward.png` (reward and its two parts) and `kl.png` (KL, policy and value loss).
fn plot(out: &Path, metrics: &[StepMetrics]) -> Result<()> {
    let s = |f: fn(&StepMetrics) -> f64| metrics.iter().map(|m| (m.step as f64, f(m))).collect::<Vec<_>>();
    plot_losses(&out.join("reward.png"), &[([200, 30, 30], s(|m| m.reward)), ([30, 120, 30], s(|m| m.aesthetic_gain)), ([30, 30, 200], s(|m| m.relevance))])?;
    plot_losses(&out.join("kl.png"), &[([200, 30, 30], s(|m| m.kl)), ([30, 120, 30], s(|m| m.pg_loss)), ([30, 30, 200], s(|m| m.vf_loss))])
}
