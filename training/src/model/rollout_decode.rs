//! PPO rollouts by diverse beam search on the tch policy: the library's decoder
//! (`promptist::policy::generate` with `Strategy::DiverseBeam`, transformers 4.53.3
//! `_group_beam_search` semantics) driven through [`TchLm`], so the trainer and the library share
//! one definition of the search. Inputs are docs/method.md §1's `source.strip() + " Rephrase:"`
//! without BOS; EOS = PAD = the tokenizer's `<|endoftext|>`; all prompts run as one left-padded
//! batch. The PPO rollout defaults (docs/method.md §5): beams = groups = returned sequences = 16, diversity penalty 1.0, no
//! sampling; length penalty 1.0 and heuristic early stopping (transformers' defaults).

use promptist::policy::config::{DecodingConfig, EarlyStopping, Strategy};
use promptist::policy::{generate, Controls, GenerateOutput, Margin};
use promptist::text::gpt2::Gpt2Tokenizer;
use tch::Kind;

use super::lm::TchLm;
use super::params::Params;
use crate::error::Result;

/// Options of [`diverse_decode`].
#[derive(Debug, Clone, PartialEq)]
pub struct DiverseOptions {
    pub num_beams: usize,
    pub num_beam_groups: usize,
    pub diversity_penalty: f32,
    pub length_penalty: f32,
    pub early_stopping: EarlyStopping,
    pub max_new_tokens: usize,
    /// Returned sequences per prompt (at most `num_beams`).
    pub num_return_sequences: usize,
}

impl Default for DiverseOptions {
    fn default() -> Self {
        Self::new(16, 1.0, 75)
    }
}

impl DiverseOptions {
    /// `num_beams` beams in as many groups, all returned; length penalty 1.0, heuristic stop.
    pub fn new(num_beams: usize, diversity_penalty: f32, max_new_tokens: usize) -> Self {
        Self {
            num_beams,
            num_beam_groups: num_beams,
            diversity_penalty,
            length_penalty: 1.0,
            early_stopping: EarlyStopping::Heuristic,
            max_new_tokens,
            num_return_sequences: num_beams,
        }
    }

    /// The library decoding configuration of these options.
    pub fn config(&self) -> DecodingConfig {
        DecodingConfig {
            strategy: Strategy::DiverseBeam {
                num_beams: self.num_beams,
                num_beam_groups: self.num_beam_groups,
                diversity_penalty: self.diversity_penalty,
                length_penalty: self.length_penalty,
                early_stopping: self.early_stopping,
            },
            max_new_tokens: self.max_new_tokens,
            num_return_sequences: self.num_return_sequences,
        }
    }
}

/// One returned sequence.
#[derive(Debug, Clone, PartialEq)]
pub struct Rollout {
    /// Generated ids (prompt and final EOS excluded).
    pub tokens: Vec<u32>,
    /// True when the sequence ended with EOS (false: it hit `max_new_tokens`).
    pub finished: bool,
    /// The length-penalised beam score.
    pub score: f32,
}

/// The returned sequences of one prompt, best first, and the search's closest decision (parity
/// tests use it to tell float-level ties from real differences).
#[derive(Debug, Clone, PartialEq)]
pub struct PromptRollouts {
    pub sequences: Vec<Rollout>,
    pub margin: Margin,
}

/// The library's search (`promptist::policy::generate`, any strategy) over the tch model, for
/// token-id prompts (no BOS, non-empty) with `eos` as EOS and PAD; one left-padded batch.
pub fn decode_ids(params: &Params, compute: Kind, prompts: &[Vec<u32>], eos: u32, cfg: &DecodingConfig) -> Result<GenerateOutput> {
    let mut lm = TchLm::new(params, compute);
    let mut ctl = Controls { eos_token_id: eos, pad_token_id: eos, min_new_tokens: 0, progress: None };
    Ok(generate(&mut lm, prompts, cfg, &mut ctl)?)
}

/// Diverse beam search over token-id prompts (no BOS, non-empty) with `eos` as EOS and PAD.
pub fn diverse_decode_ids(params: &Params, compute: Kind, prompts: &[Vec<u32>], eos: u32, opts: &DiverseOptions) -> Result<Vec<PromptRollouts>> {
    let out = decode_ids(params, compute, prompts, eos, &opts.config())?;
    Ok(out
        .prompts
        .into_iter()
        .map(|p| PromptRollouts {
            sequences: p.hypotheses.into_iter().map(|h| Rollout { tokens: h.tokens, finished: h.finished, score: h.score }).collect(),
            margin: p.margin,
        })
        .collect())
}

/// The token ids of `source` in docs/method.md §1's input format.
pub fn prompt_ids(tok: &Gpt2Tokenizer, source: &str) -> Result<Vec<u32>> {
    Ok(tok.encode(&promptist::policy::prompt::format_input(source)?)?)
}

/// Diverse beam search of every source (one batch).
pub fn diverse_decode(params: &Params, compute: Kind, tok: &Gpt2Tokenizer, sources: &[String], opts: &DiverseOptions) -> Result<Vec<PromptRollouts>> {
    let prompts = sources.iter().map(|s| prompt_ids(tok, s)).collect::<Result<Vec<_>>>()?;
    diverse_decode_ids(params, compute, &prompts, tok.eos_id(), opts)
}

/// The PPO rollouts: per source, the generated ids of all `num_beams` returned sequences (best
/// first), with `num_beams` groups, length penalty 1.0 and heuristic early stopping.
pub fn diverse_rollouts(
    params: &Params,
    compute: Kind,
    tok: &Gpt2Tokenizer,
    sources: &[String],
    num_beams: usize,
    diversity_penalty: f32,
    max_new_tokens: usize,
) -> Result<Vec<Vec<Vec<u32>>>> {
    let out = diverse_decode(params, compute, tok, sources, &DiverseOptions::new(num_beams, diversity_penalty, max_new_tokens))?;
    Ok(out.into_iter().map(|p| p.sequences.into_iter().map(|r| r.tokens).collect()).collect())
}
