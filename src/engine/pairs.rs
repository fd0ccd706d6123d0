//! Scoring many (x, y) pairs at once with the Promptist reward (docs/method.md §3), as a PPO reward
//! stage needs it (one candidate y for each of many user prompts x): the x-baselines missing from
//! the cache are generated as one image job list, all y images as another (the pipeline batches
//! each up to `sd.max_batch`), CLIP image embeddings likewise. `Engine::score_many` is this with
//! one x, so both give the same numbers for the same pair.

use std::collections::HashMap;
use std::sync::Arc;

use super::baseline_cache::{Baseline, BaselineKey};
use super::score::{ScoreEngine, ScoreOptions};
use super::validate::check_prompt_text;
use super::Engine;
use crate::diffusion::pipeline::{report, Image, ImageJob, Progress, Stage};
use crate::diffusion::scheduler::SchedulerKind;
use crate::error::{Error, Result};
use crate::reward::math::{cosine_similarity, promptist_reward, Reward};
use crate::runtime::ProviderKind;

/// The score of one (x, y) pair.
#[derive(Debug, Clone, PartialEq)]
pub struct PairScore {
    pub user_prompt: String,
    pub candidate: String,
    /// Index of x in [`PairScores::users`].
    pub user_index: usize,
    /// Reward, relevance term, per-image similarity, aesthetic of y and of x.
    pub reward: Reward,
    /// y's images (only with `return_images`).
    pub images: Vec<Image>,
}

/// One distinct user prompt x of a call.
#[derive(Debug, Clone, PartialEq)]
pub struct UserBaseline {
    pub prompt: String,
    /// True when its baseline came from the cache.
    pub cached: bool,
    /// x's images (only with `return_images`).
    pub images: Vec<Image>,
}

/// What a pairs call computed (for the PPO metrics and the cache's benchmark).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PairStats {
    /// Distinct x's whose baseline came from the cache.
    pub baselines_hit: usize,
    /// Distinct x's whose baseline was computed in this call.
    pub baselines_computed: usize,
    /// SD images generated for x's (baselines_computed * images_per_prompt).
    pub user_images_generated: usize,
    /// SD images generated for y's (pairs * images_per_prompt).
    pub candidate_images_generated: usize,
}

/// The result of [`Engine::score_pairs`].
#[derive(Debug, Clone, PartialEq)]
pub struct PairScores {
    /// One per pair, in the order given.
    pub pairs: Vec<PairScore>,
    /// The distinct x's, in order of first appearance.
    pub users: Vec<UserBaseline>,
    pub stats: PairStats,
    /// Base seed; image i of every prompt used latent stream i of it.
    pub seed: u64,
    pub images_per_prompt: usize,
    pub provider: ProviderKind,
    /// True when any model of the reward (SD, scorer CLIP, aesthetic head) has random weights.
    pub random_weights: bool,
}

/// The checks of a score call's options that do not depend on its prompts (shared by
/// `score_many`, which runs them before building its pairs).
pub(super) fn validate_options(o: &ScoreOptions) -> Result<()> {
    o.sd.validate()?;
    crate::capi::limits::check_range("images_per_prompt", o.images_per_prompt, 1, crate::capi::limits::PROMPTIST_MAX_IMAGES_PER_PROMPT)
}

fn validate(pairs: &[(&str, &str)], o: &ScoreOptions) -> Result<()> {
    validate_options(o)?;
    if pairs.is_empty() {
        return Err(Error::InvalidOptions("no (user prompt, candidate) pair to score".into()));
    }
    for (x, y) in pairs {
        check_prompt_text(x)?;
        check_prompt_text(y)?;
    }
    Ok(())
}

fn baseline_key(x: &str, o: &ScoreOptions) -> BaselineKey {
    BaselineKey {
        prompt: x.to_string(),
        seed: o.seed,
        images: o.images_per_prompt,
        width: o.sd.width,
        height: o.sd.height,
        steps: o.sd.steps,
        guidance_bits: o.sd.guidance_scale.to_bits(),
        scheduler: match o.sd.scheduler {
            SchedulerKind::DpmSolverMultistep => 0,
            SchedulerKind::Ddim => 1,
        },
    }
}

impl Engine {
    /// Score each (user prompt x, candidate y) pair (docs/method.md §3). Image i of every prompt uses
    /// latent stream i of `options.seed`. The baselines of x's not in the cache (or all x's when
    /// `options.use_baseline_cache` is false) are computed once per distinct x, their images in one
    /// job list; all y images go through the UNet as one job list. Errors as `score_many`
    /// (InvalidOptions for an empty list, EmptyPrompt for a blank x or y).
    pub fn score_pairs(&self, pairs: &[(&str, &str)], options: &ScoreOptions, progress: Progress<'_>) -> Result<PairScores> {
        validate(pairs, options)?;
        let se = self.score_engine()?;
        se.pipeline.check_settings(&options.sd)?;
        let n = options.images_per_prompt;
        // Both image lists (the user prompts', the candidates') within the budget before any work.
        crate::diffusion::pipeline::check_image_budget(pairs.len().saturating_mul(n), &options.sd)?;

        // Distinct x's in order of first appearance.
        let mut users: Vec<&str> = Vec::new();
        let mut index: HashMap<&str, usize> = HashMap::new();
        let user_of: Vec<usize> = pairs
            .iter()
            .map(|&(x, _)| {
                *index.entry(x).or_insert_with(|| {
                    users.push(x);
                    users.len() - 1
                })
            })
            .collect();

        let (bases, cached) = baselines(se, &users, options, &mut *progress)?;
        let mut stats = PairStats {
            baselines_hit: cached.iter().filter(|&&c| c).count(),
            ..PairStats::default()
        };
        stats.baselines_computed = users.len() - stats.baselines_hit;
        stats.user_images_generated = stats.baselines_computed * n;

        let jobs: Vec<ImageJob<'_>> = pairs.iter().map(|&(_, y)| ImageJob { prompt: y, seed: options.seed, first_index: 0, count: n }).collect();
        let images = se.pipeline.generate(&jobs, &options.sd, &mut *progress)?;
        stats.candidate_images_generated = images.len();
        let refs: Vec<&Image> = images.iter().collect();
        let embs = se.scorer.image_embeddings(&refs, &mut *progress)?;
        let mut images = images.into_iter();
        let mut out = Vec::with_capacity(pairs.len());
        for (pi, &(x, y)) in pairs.iter().enumerate() {
            let base = &bases[user_of[pi]];
            let e = &embs[pi * n..(pi + 1) * n];
            let sims = e.iter().map(|v| cosine_similarity(v, &base.text_embedding)).collect::<Result<Vec<_>>>()?;
            let aes = e.iter().map(|v| se.scorer.aesthetic(v)).collect::<Result<Vec<_>>>()?;
            let reward = promptist_reward(&aes, &base.aesthetic, &sims)?;
            let imgs: Vec<Image> = images.by_ref().take(n).collect();
            out.push(PairScore {
                user_prompt: x.to_string(),
                candidate: y.to_string(),
                user_index: user_of[pi],
                reward,
                images: if options.return_images { imgs } else { Vec::new() },
            });
        }
        let users = users
            .iter()
            .zip(&bases)
            .zip(&cached)
            .map(|((x, b), &c)| UserBaseline {
                prompt: x.to_string(),
                cached: c,
                images: if options.return_images { b.images.clone().unwrap_or_default() } else { Vec::new() },
            })
            .collect();
        Ok(PairScores {
            pairs: out,
            users,
            stats,
            seed: options.seed,
            images_per_prompt: n,
            provider: se.pipeline.provider(),
            random_weights: self.score_is_random(),
        })
    }

    /// Number of cached x-baselines (for tests and diagnostics).
    pub fn cached_baselines(&self) -> usize {
        self.score.as_ref().map_or(0, |s| s.cache.len())
    }

    /// Most x-baselines the engine keeps (`EngineOptions::baseline_cache_capacity`).
    pub fn baseline_cache_capacity(&self) -> usize {
        self.score.as_ref().map_or(0, |s| s.cache.capacity())
    }

    /// Cumulative (hits, misses) of the x-baseline cache over this engine's score calls: one
    /// lookup per distinct x per call (calls with `use_baseline_cache` false look nothing up).
    pub fn baseline_cache_stats(&self) -> (u64, u64) {
        self.score.as_ref().map_or((0, 0), |s| s.cache.stats())
    }
}

/// The baselines of `users` (and whether each came from the cache): those missing are generated
/// together (one job list), embedded together, then cached. Nothing is cached when a step fails or
/// is cancelled.
fn baselines(se: &ScoreEngine, users: &[&str], o: &ScoreOptions, progress: Progress<'_>) -> Result<(Vec<Arc<Baseline>>, Vec<bool>)> {
    let n = o.images_per_prompt;
    let found: Vec<Option<Arc<Baseline>>> =
        users.iter().map(|x| if o.use_baseline_cache { se.cache.get(&baseline_key(x, o), o.return_images) } else { None }).collect();
    let missing: Vec<usize> = (0..users.len()).filter(|&i| found[i].is_none()).collect();
    let mut computed: Vec<Option<Arc<Baseline>>> = vec![None; users.len()];
    if !missing.is_empty() {
        let jobs: Vec<ImageJob<'_>> = missing.iter().map(|&i| ImageJob { prompt: users[i], seed: o.seed, first_index: 0, count: n }).collect();
        let images = se.pipeline.generate(&jobs, &o.sd, &mut *progress)?;
        let refs: Vec<&Image> = images.iter().collect();
        let embs = se.scorer.image_embeddings(&refs, &mut *progress)?;
        let mut images = images.into_iter();
        for (k, &i) in missing.iter().enumerate() {
            let aesthetic = embs[k * n..(k + 1) * n].iter().map(|v| se.scorer.aesthetic(v)).collect::<Result<Vec<_>>>()?;
            let text_embedding = se.scorer.text_embedding(users[i])?;
            let imgs: Vec<Image> = images.by_ref().take(n).collect();
            computed[i] = Some(Arc::new(Baseline { text_embedding, aesthetic, images: o.return_images.then_some(imgs) }));
        }
        report(progress, Stage::Score, embs.len(), embs.len())?;
        if o.use_baseline_cache {
            for &i in &missing {
                if let Some(b) = &computed[i] {
                    se.cache.insert(baseline_key(users[i], o), b.clone());
                }
            }
        }
    }
    let cached: Vec<bool> = found.iter().map(Option::is_some).collect();
    let bases = found
        .into_iter()
        .zip(computed)
        .map(|(f, c)| f.or(c).ok_or_else(|| Error::Internal("an x-baseline was neither cached nor computed".into())))
        .collect::<Result<Vec<_>>>()?;
    Ok((bases, cached))
}
