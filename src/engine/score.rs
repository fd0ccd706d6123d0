//! Scoring prompts with the Promptist reward (docs/method.md §3) on the engine: images of the
//! ORIGINAL prompt x and of each candidate y from the same seeded latent streams (image i of any
//! prompt uses stream i of the seed), CLIP similarity of y's images to x's text, aesthetic of y's
//! images minus the mean over x's images. The x-baseline is cached (bounded LRU, see `pairs.rs`,
//! which does the scoring); best-of-n ranks the policy's n-best candidates by this reward.

use super::baseline_cache::BaselineCache;
use super::validate::check_prompt_text;
use super::{Candidate, Engine, OptimizeOptions, OptimizeResult};
use crate::bundle::Bundle;
use crate::bundle::layout::score_paths;
use crate::diffusion::pipeline::{Image, Progress, SdPipeline, SdSettings};
use crate::error::{Error, Result};
use crate::reward::math::Reward;
use crate::reward::scorer::{ClipScorer, ScorerFiles};
use crate::runtime::{ProviderKind, Runtime, SessionOptions};

/// Default number of x-baselines kept.
pub const BASELINE_CACHE_CAPACITY: usize = 8;

/// Options of one score call.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreOptions {
    pub sd: SdSettings,
    /// Images per prompt (x and each y); docs/method.md §3: 2 in the reference code.
    pub images_per_prompt: usize,
    /// Base seed of the latent streams.
    pub seed: u64,
    /// Keep the RGB8 images in the result.
    pub return_images: bool,
    /// Take x-baselines from the engine's cache and add new ones to it (default). False recomputes
    /// x's images every call (same numbers; for measuring what the cache saves).
    pub use_baseline_cache: bool,
}

impl Default for ScoreOptions {
    fn default() -> Self {
        ScoreOptions { sd: SdSettings::default(), images_per_prompt: 2, seed: 0, return_images: false, use_baseline_cache: true }
    }
}

/// The score of one candidate y.
#[derive(Debug, Clone, PartialEq)]
pub struct CandidateScore {
    pub prompt: String,
    /// Reward, relevance term, per-image similarity, aesthetic of y and of x.
    pub reward: Reward,
    /// y's images (only with `return_images`).
    pub images: Vec<Image>,
}

/// The result of a score call.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreResult {
    pub user_prompt: String,
    /// One per candidate, in the order given (best-of-n: best first).
    pub candidates: Vec<CandidateScore>,
    /// Base seed; image i of every prompt used latent stream i of it.
    pub seed: u64,
    pub images_per_prompt: usize,
    /// x's images (only with `return_images`).
    pub user_images: Vec<Image>,
    pub provider: ProviderKind,
    /// True when any model of the reward has random weights (for best-of-n: or the policy).
    pub random_weights: bool,
}

/// Best-of-n: the policy's candidates ranked by the real reward (best first).
#[derive(Debug, Clone, PartialEq)]
pub struct BestOfN {
    pub optimize: OptimizeResult,
    /// `optimize.candidates` reordered by reward, best first.
    pub ranked: Vec<Candidate>,
    /// The scores, in the same order as `ranked`.
    pub scores: ScoreResult,
}

/// The loaded score models.
pub(crate) struct ScoreEngine {
    pub(super) pipeline: SdPipeline,
    pub(super) scorer: ClipScorer,
    pub(super) cache: BaselineCache,
}

impl ScoreEngine {
    /// Load the score components when the bundle has them (None when it has none).
    /// `cache_capacity`: most x-baselines kept (0 disables the cache).
    pub(crate) fn open(bundle: &Bundle, rt: &Runtime, opts: &SessionOptions, cache_capacity: usize) -> Result<Option<ScoreEngine>> {
        let Some(p) = score_paths(bundle)? else { return Ok(None) };
        let sd = p.sd_files();
        let pipeline = SdPipeline::load(rt, &sd, opts)?;
        let files = ScorerFiles { text_model: &p.clip_text, vision_model: &p.clip_vision, merges: &p.clip_merges, aesthetic: &p.aesthetic };
        let scorer = ClipScorer::load(rt, &files, opts)?;
        Ok(Some(ScoreEngine { pipeline, scorer, cache: BaselineCache::new(cache_capacity) }))
    }
}

fn validate(user: &str, candidates: &[&str], o: &ScoreOptions) -> Result<()> {
    super::pairs::validate_options(o)?;
    if candidates.is_empty() {
        return Err(Error::InvalidOptions("no candidate prompt to score".into()));
    }
    crate::capi::limits::check_range("candidates", candidates.len(), 1, crate::capi::limits::PROMPTIST_MAX_CANDIDATES)?;
    check_prompt_text(user)?;
    for c in candidates {
        check_prompt_text(c)?;
    }
    Ok(())
}

impl Engine {
    pub(super) fn score_engine(&self) -> Result<&ScoreEngine> {
        self.score.as_ref().ok_or_else(|| {
            Error::NotInBundle(format!(
                "the bundle at {} has no score components (text_encoder, unet, vae_decoder, tokenizer, scheduler, clip, aesthetic); optimize still works",
                self.bundle.root().display()
            ))
        })
    }

    /// True when the bundle has the score components.
    pub fn can_score(&self) -> bool {
        self.score.is_some()
    }

    /// Score `candidate` as a rewrite of `user_prompt` (docs/method.md §3).
    pub fn score(&self, user_prompt: &str, candidate: &str, options: &ScoreOptions, progress: Progress<'_>) -> Result<ScoreResult> {
        self.score_many(user_prompt, &[candidate], options, progress)
    }

    /// Score several candidates for one user prompt; their images go through the UNet together.
    /// The same computation as [`Engine::score_pairs`] with every pair sharing x.
    pub fn score_many(&self, user_prompt: &str, candidates: &[&str], options: &ScoreOptions, progress: Progress<'_>) -> Result<ScoreResult> {
        validate(user_prompt, candidates, options)?;
        let pairs: Vec<(&str, &str)> = candidates.iter().map(|&c| (user_prompt, c)).collect();
        let r = self.score_pairs(&pairs, options, progress)?;
        let user_images = r.users.into_iter().next().map(|u| u.images).unwrap_or_default();
        let candidates = r.pairs.into_iter().map(|p| CandidateScore { prompt: p.candidate, reward: p.reward, images: p.images }).collect();
        Ok(ScoreResult {
            user_prompt: user_prompt.to_string(),
            candidates,
            seed: r.seed,
            images_per_prompt: r.images_per_prompt,
            user_images,
            provider: r.provider,
            random_weights: r.random_weights,
        })
    }

    /// Best-of-n: generate the policy's n-best candidates (`optimize.decoding`'s
    /// `num_return_sequences`) and rank them by the real reward against `prompt`, best first
    /// (ties keep the decoder's order).
    pub fn optimize_best_of_n(&self, prompt: &str, optimize: &OptimizeOptions, score: &ScoreOptions, progress: Progress<'_>) -> Result<BestOfN> {
        self.score_engine()?;
        let opt = self.optimize(prompt, optimize)?;
        let texts: Vec<&str> = opt.candidates.iter().map(|c| c.text.as_str()).collect();
        // A candidate that is empty after trimming cannot be scored: it is left out of the ranking.
        let scorable: Vec<usize> = (0..texts.len()).filter(|&i| check_prompt_text(texts[i]).is_ok()).collect();
        if scorable.is_empty() {
            return Err(Error::EmptyPrompt);
        }
        let to_score: Vec<&str> = scorable.iter().map(|&i| texts[i]).collect();
        let mut scores = self.score_many(prompt, &to_score, score, progress)?;
        let mut order: Vec<usize> = (0..scorable.len()).collect();
        order.sort_by(|&a, &b| scores.candidates[b].reward.reward.total_cmp(&scores.candidates[a].reward.reward));
        let ranked = order.iter().map(|&k| opt.candidates[scorable[k]].clone()).collect();
        let mut cands: Vec<Option<CandidateScore>> = scores.candidates.drain(..).map(Some).collect();
        scores.candidates = order.iter().filter_map(|&k| cands[k].take()).collect();
        // The candidates came from the policy: random if it is, or if the reward's models are.
        scores.random_weights |= self.random_weights();
        Ok(BestOfN { optimize: opt, ranked, scores })
    }
}
