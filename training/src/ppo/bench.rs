//! The PPO step benchmark: seconds per step split into rollout / reward / update, and the reward
//! work the x-baseline cache saves. Every step's pairs are scored twice, by a scorer that caches
//! x's baseline across steps (as training does) and by one that recomputes it on every call (the
//! reference code's behaviour); the rewards must agree bit for bit, and the seconds and SD images
//! of both are summed and compared.

use serde::{Deserialize, Serialize};

use super::config::PpoConfig;
use super::prompts::PromptMix;
use super::reward::RewardStage;
use super::rollout::{rollout, step_rng};
use super::update::{update, Nets};
use super::value::{train_top_blocks, FreshNetworks};
use crate::error::{Result, TrainError};

/// One benchmarked step.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BenchStep {
    pub step: u64,
    pub rollout_s: f64,
    pub reward_s: f64,
    pub update_s: f64,
    pub reward_nocache_s: f64,
    pub images: usize,
    pub images_nocache: usize,
    pub cache_hit_rate: f64,
    pub mean_reward: f64,
}

/// The summary printed at the end.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BenchSummary {
    pub steps: Vec<BenchStep>,
    pub mean_rollout_s: f64,
    pub mean_reward_s: f64,
    pub mean_update_s: f64,
    pub mean_step_s: f64,
    /// Reward seconds without the cache / with it, over all steps.
    pub reward_time_ratio: f64,
    /// SD images without the cache / with it, over all steps.
    pub image_ratio: f64,
}

/// Run `steps` PPO steps from the SFT folder `sft`, scoring each twice (cached and uncached).
pub fn bench(sft: &std::path::Path, prompts: &PromptMix, cfg: &PpoConfig, cached: &RewardStage, uncached: &RewardStage, compute: tch::Kind, device: tch::Device) -> Result<BenchSummary> {
    let tok = promptist::export::convert::checkpoint_tokenizer(sft)?;
    let eos = i64::from(tok.eos_id());
    let FreshNetworks { reference, mut policy, mut value, policy_opt: mut popt, value_opt: mut vopt } = FreshNetworks::from_sft(sft, cfg, device)?;
    if let Some(k) = cfg.train_top_blocks {
        train_top_blocks(&policy, k)?;
    }
    let mut steps = Vec::new();
    for step in 0..cfg.steps {
        let mut rng = step_rng(cfg.seed, step);
        let sources = prompts.batch(cfg.seed, step, cfg.batch_size);
        let t0 = std::time::Instant::now();
        let roll = rollout(&policy, compute, &tok, &sources, cfg, &mut rng)?;
        let rollout_s = t0.elapsed().as_secs_f64();
        let pairs: Vec<(String, String)> = roll.sources.iter().cloned().zip(roll.texts.iter().cloned()).collect();
        let a = cached.score(&pairs)?;
        let b = uncached.score(&pairs)?;
        if a.reward.iter().zip(&b.reward).any(|(x, y)| x.to_bits() != y.to_bits()) {
            return Err(TrainError::Data(format!("step {step}: cached and recomputed baselines give different rewards")));
        }
        let mut nets = Nets { policy: &mut policy, reference: &reference, value: &mut value, policy_opt: &mut popt, value_opt: &mut vopt, compute };
        let up = update(&mut nets, &roll, &a.reward, cfg, eos)?;
        let distinct = (a.baselines_hit + a.baselines_computed).max(1) as f64;
        steps.push(BenchStep {
            step: step + 1,
            rollout_s,
            reward_s: a.seconds,
            update_s: up.seconds,
            reward_nocache_s: b.seconds,
            images: a.user_images + a.candidate_images,
            images_nocache: b.user_images + b.candidate_images,
            cache_hit_rate: a.baselines_hit as f64 / distinct,
            mean_reward: a.reward.iter().sum::<f64>() / a.reward.len().max(1) as f64,
        });
    }
    let n = steps.len().max(1) as f64;
    let sum = |f: fn(&BenchStep) -> f64| steps.iter().map(f).sum::<f64>();
    Ok(BenchSummary {
        mean_rollout_s: sum(|s| s.rollout_s) / n,
        mean_reward_s: sum(|s| s.reward_s) / n,
        mean_update_s: sum(|s| s.update_s) / n,
        mean_step_s: sum(|s| s.rollout_s + s.reward_s + s.update_s) / n,
        reward_time_ratio: sum(|s| s.reward_nocache_s) / sum(|s| s.reward_s).max(1e-12),
        image_ratio: sum(|s| s.images_nocache as f64) / sum(|s| s.images as f64).max(1.0),
        steps,
    })
}
