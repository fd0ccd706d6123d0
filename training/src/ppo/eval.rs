//! Held-out evaluation of a policy (docs/method.md §6): rewrite each prompt with the inference
//! decoding (by default the reference demo's beam search, docs/method.md §2), then score every
//! (x, y) with the reward under several image seeds. The spread of the per-seed means is the
//! seed noise a trained policy's gain is compared against.

use promptist::policy::config::DecodingConfig;
use promptist::policy::prompt::finish_output;
use promptist::text::gpt2::Gpt2Tokenizer;
use serde::{Deserialize, Serialize};
use tch::Kind;

use super::reward::RewardStage;
use crate::error::Result;
use crate::model::rollout_decode::{decode_ids, prompt_ids};
use crate::model::Params;

/// Mean rewards of one policy on a prompt set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    pub seeds: Vec<u64>,
    /// Mean reward over the prompts, per image seed.
    pub reward_per_seed: Vec<f64>,
    pub reward: f64,
    /// Standard deviation of the per-seed means (the seed noise).
    pub seed_std: f64,
    pub aesthetic_gain: f64,
    pub relevance: f64,
    pub rewrites: Vec<String>,
}

/// Rewrite `prompts` with `decoding` (chunks of `chunk` prompts per search).
pub fn rewrite(policy: &Params, compute: Kind, tok: &Gpt2Tokenizer, prompts: &[String], decoding: &DecodingConfig, chunk: usize) -> Result<Vec<String>> {
    let eos = tok.eos_id();
    let mut out = Vec::with_capacity(prompts.len());
    for c in prompts.chunks(chunk.max(1)) {
        let q = c.iter().map(|p| prompt_ids(tok, p)).collect::<Result<Vec<_>>>()?;
        let g = decode_ids(policy, compute, &q, eos, decoding)?;
        for po in g.prompts {
            let best = po.hypotheses.first().map(|h| h.tokens.clone()).unwrap_or_default();
            out.push(finish_output(&tok.decode_skip_special(&best)?));
        }
    }
    Ok(out)
}

/// Score fixed rewrites under each of `seeds`.
pub fn evaluate_rewrites(reward: &RewardStage, prompts: &[String], rewrites: Vec<String>, seeds: &[u64]) -> Result<Evaluation> {
    let pairs: Vec<(String, String)> = prompts.iter().cloned().zip(rewrites.iter().cloned()).collect();
    let (mut per, mut aes, mut rel) = (Vec::new(), 0.0, 0.0);
    for &s in seeds {
        let r = reward.score_seeded(&pairs, s)?;
        let n = r.reward.len().max(1) as f64;
        per.push(r.reward.iter().sum::<f64>() / n);
        aes += r.aesthetic_gain.iter().sum::<f64>() / n;
        rel += r.relevance.iter().sum::<f64>() / n;
    }
    let k = seeds.len().max(1) as f64;
    let mean = per.iter().sum::<f64>() / k;
    let var = if per.len() > 1 { per.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (k - 1.0) } else { 0.0 };
    Ok(Evaluation { seeds: seeds.to_vec(), reward_per_seed: per, reward: mean, seed_std: var.sqrt(), aesthetic_gain: aes / k, relevance: rel / k, rewrites })
}

/// Rewrite then score.
#[allow(clippy::too_many_arguments)]
pub fn evaluate(policy: &Params, compute: Kind, tok: &Gpt2Tokenizer, prompts: &[String], decoding: &DecodingConfig, chunk: usize, reward: &RewardStage, seeds: &[u64]) -> Result<Evaluation> {
    let rw = rewrite(policy, compute, tok, prompts, decoding, chunk)?;
    evaluate_rewrites(reward, prompts, rw, seeds)
}
