//! The rollout stage (docs/method.md §5): batched diverse beam search of the policy in tch (beams =
//! groups = returned sequences, Hamming diversity penalty, no sampling) through the library's own
//! search (`promptist::policy::generate` over [`crate::model::lm::TchLm`]), `max_new_tokens` drawn
//! uniformly from [min, max] per batch, and one of the returned sequences picked uniformly at
//! random per prompt. The output is plain data (ids and texts), so the stage can run elsewhere.

use promptist::policy::prompt::finish_output;
use promptist::text::gpt2::Gpt2Tokenizer;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use tch::Kind;

use super::config::PpoConfig;
use crate::error::{Result, TrainError};
use crate::model::rollout_decode::{diverse_decode_ids, prompt_ids, DiverseOptions};
use crate::model::Params;

/// One rollout batch.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Rollout {
    /// The user prompts x.
    pub sources: Vec<String>,
    /// Domain index of each prompt.
    pub domains: Vec<usize>,
    /// Tokenised `x Rephrase:` inputs.
    pub queries: Vec<Vec<i64>>,
    /// The picked sequence's generated ids, with the EOS when the search ended there.
    pub responses: Vec<Vec<i64>>,
    /// The picked sequences decoded (the y to score).
    pub texts: Vec<String>,
    /// Which of the returned sequences was picked.
    pub picked: Vec<usize>,
    pub max_new_tokens: usize,
}

/// The step's random choices: a ChaCha8 stream that is a pure function of (seed, step).
pub fn step_rng(seed: u64, step: u64) -> ChaCha8Rng {
    let mut r = ChaCha8Rng::seed_from_u64(seed ^ 0x5050_4f5f_726f_6c6c);
    r.set_stream(step);
    r
}

/// Diverse beam search over `sources` (chunks of `cfg.micro_batch` prompts per search), then the
/// random pick. The `rng` draws the length first, then one pick per prompt.
pub fn rollout(policy: &Params, compute: Kind, tok: &Gpt2Tokenizer, sources: &[(usize, String)], cfg: &PpoConfig, rng: &mut ChaCha8Rng) -> Result<Rollout> {
    let drawn = rng.random_range(cfg.min_new_tokens..=cfg.max_new_tokens);
    let mut queries = Vec::with_capacity(sources.len());
    for (_, s) in sources {
        queries.push(prompt_ids(tok, s)?);
    }
    let longest = queries.iter().map(Vec::len).max().unwrap_or(0);
    let ctx = policy.cfg.context();
    if longest >= ctx {
        return Err(TrainError::Data(format!("a prompt of {longest} tokens does not fit the policy's context of {ctx}")));
    }
    let max_new = drawn.min(ctx - longest);
    let opts = DiverseOptions::new(cfg.num_beams, cfg.diversity_penalty, max_new);
    let eos = tok.eos_id();
    let mut out = Rollout { max_new_tokens: max_new, ..Default::default() };
    for (chunk_q, chunk_s) in queries.chunks(cfg.micro_batch).zip(sources.chunks(cfg.micro_batch)) {
        let found = diverse_decode_ids(policy, compute, chunk_q, eos, &opts)?;
        for ((q, (d, s)), po) in chunk_q.iter().zip(chunk_s).zip(found) {
            if po.sequences.is_empty() {
                return Err(TrainError::Data(format!("the search returned no sequence for {s:?}")));
            }
            let k = rng.random_range(0..po.sequences.len());
            let h = &po.sequences[k];
            let mut r: Vec<i64> = h.tokens.iter().map(|&t| i64::from(t)).collect();
            if h.finished {
                r.push(i64::from(eos));
            }
            let text = finish_output(&tok.decode_skip_special(&h.tokens)?);
            out.sources.push(s.clone());
            out.domains.push(*d);
            out.queries.push(q.iter().map(|&t| i64::from(t)).collect());
            out.responses.push(r);
            out.texts.push(text);
            out.picked.push(k);
        }
    }
    Ok(out)
}
