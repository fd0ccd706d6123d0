//! The reward stage (docs/method.md §3): R(x, y) from the library's own scorer, the code behind
//! `promptist_score` (`Engine::score_pairs`): SD images of each y, CLIP relevance to x, aesthetic
//! gain over x's images, every pair of a rollout batched together. x's baseline (its images'
//! aesthetics and its CLIP text embedding) is cached in the engine across steps, since x's seeded
//! images never change. Input and output are plain data.

use std::path::Path;
use std::time::Instant;

use promptist::diffusion::pipeline::{SdSettings, Stage};
use promptist::engine::{check_prompt_text, Engine, EngineOptions, ScoreOptions};
use promptist::runtime::ProviderChoice;
use serde::{Deserialize, Serialize};

use super::config::PpoConfig;
use crate::error::{Result, TrainError};

/// Rewards of one batch of (x, y) pairs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Rewards {
    pub reward: Vec<f64>,
    pub aesthetic_gain: Vec<f64>,
    pub relevance: Vec<f64>,
    /// Mean CLIP similarity of y's images to x.
    pub similarity: Vec<f64>,
    /// Pairs whose y the scorer cannot take (empty after trimming, or holding a NUL character);
    /// they get `empty_response_reward`.
    pub empty: usize,
    /// x-baselines found in the cache / computed in this call.
    pub baselines_hit: usize,
    pub baselines_computed: usize,
    pub user_images: usize,
    pub candidate_images: usize,
    pub seconds: f64,
}

/// The scorer with its options.
pub struct RewardStage {
    engine: Engine,
    options: ScoreOptions,
    empty_reward: f64,
}

/// Baselines the trainer's engine keeps (x's without their images: a few KB each).
pub const TRAIN_BASELINE_CAPACITY: usize = 1 << 16;

impl RewardStage {
    /// Open the score components of `bundle` (a promptist bundle with SD + CLIP + aesthetic).
    pub fn open(bundle: &Path, cfg: &PpoConfig, provider: ProviderChoice, threads: usize, use_cache: bool) -> Result<Self> {
        let eo = EngineOptions {
            provider,
            intra_op_threads: threads,
            baseline_cache_capacity: TRAIN_BASELINE_CAPACITY,
            ..Default::default()
        };
        let engine = Engine::open(bundle, &eo)?;
        if !engine.can_score() {
            return Err(TrainError::Options(format!(
                "{}: the reward needs a bundle with score components (add them with `promptist add-score`)",
                bundle.display()
            )));
        }
        let options = ScoreOptions {
            sd: SdSettings {
                width: cfg.image_size,
                height: cfg.image_size,
                steps: cfg.sd_steps,
                guidance_scale: cfg.guidance_scale,
                max_batch: cfg.sd_max_batch,
                ..Default::default()
            },
            images_per_prompt: cfg.images_per_prompt,
            seed: cfg.image_seed,
            return_images: false,
            use_baseline_cache: use_cache,
        };
        options.sd.validate()?;
        Ok(Self { engine, options, empty_reward: cfg.empty_response_reward })
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Score `pairs` (x, y) with the configured image seed.
    pub fn score(&self, pairs: &[(String, String)]) -> Result<Rewards> {
        self.score_seeded(pairs, self.options.seed)
    }

    /// Score `pairs` (x, y) with the images of `seed`. A y the scorer cannot take (empty after
    /// trimming, or with a NUL character) gets `empty_response_reward`.
    pub fn score_seeded(&self, pairs: &[(String, String)], seed: u64) -> Result<Rewards> {
        let t0 = Instant::now();
        let n = pairs.len();
        let mut out = Rewards {
            reward: vec![self.empty_reward; n],
            aesthetic_gain: vec![0.0; n],
            relevance: vec![self.empty_reward; n],
            similarity: vec![0.0; n],
            ..Default::default()
        };
        let scorable: Vec<usize> = (0..n).filter(|&i| check_prompt_text(&pairs[i].1).is_ok()).collect();
        out.empty = n - scorable.len();
        if !scorable.is_empty() {
            let refs: Vec<(&str, &str)> = scorable.iter().map(|&i| (pairs[i].0.as_str(), pairs[i].1.as_str())).collect();
            let mut none = |_: Stage, _: usize, _: usize| true;
            let opts = ScoreOptions { seed, ..self.options.clone() };
            let s = self.engine.score_pairs(&refs, &opts, &mut none)?;
            for (&i, p) in scorable.iter().zip(&s.pairs) {
                out.reward[i] = p.reward.reward;
                out.aesthetic_gain[i] = p.reward.aesthetic_gain;
                out.relevance[i] = p.reward.relevance;
                out.similarity[i] = p.reward.similarity.iter().sum::<f64>() / p.reward.similarity.len().max(1) as f64;
            }
            out.baselines_hit = s.stats.baselines_hit;
            out.baselines_computed = s.stats.baselines_computed;
            out.user_images = s.stats.user_images_generated;
            out.candidate_images = s.stats.candidate_images_generated;
        }
        out.seconds = t0.elapsed().as_secs_f64();
        Ok(out)
    }
}
