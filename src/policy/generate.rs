//! The decoding entry point: validates a `DecodingConfig`, runs the chosen strategy over a
//! `CausalLm` for a batch of tokenised prompts, and returns n-best hypotheses per prompt
//! (generated tokens only, EOS excluded), like transformers' `generate()`.

use crate::policy::config::{DecodingConfig, Strategy};
use crate::policy::model::CausalLm;
use crate::{Error, Result};

/// Per-call controls beside the decoding configuration.
pub struct Controls<'a> {
    pub eos_token_id: u32,
    pub pad_token_id: u32,
    /// transformers' `min_new_tokens`: EOS is suppressed (log-prob -inf) until this many tokens
    /// were generated. Setting it to `max_new_tokens` forces the full length (benchmarks).
    pub min_new_tokens: usize,
    /// Called after every decoding step with (step, max_new_tokens); returning false cancels.
    pub progress: Option<&'a mut dyn FnMut(usize, usize) -> bool>,
}

impl Controls<'_> {
    /// GPT-2's ids: EOS = PAD = 50256 (docs/method.md §1).
    pub fn gpt2() -> Self {
        Controls { eos_token_id: 50256, pad_token_id: 50256, min_new_tokens: 0, progress: None }
    }

    pub(crate) fn tick(&mut self, step: usize, total: usize) -> Result<()> {
        if let Some(cb) = self.progress.as_mut() {
            if !cb(step, total) {
                return Err(Error::Cancelled);
            }
        }
        Ok(())
    }
}

/// One returned sequence.
#[derive(Debug, Clone, PartialEq)]
pub struct Hypothesis {
    /// Generated token ids (prompt excluded, EOS excluded).
    pub tokens: Vec<u32>,
    /// Beam strategies: the length-penalised beam score; greedy and sampling: the sum of the
    /// model's log-probabilities of the generated tokens (EOS included when generated).
    pub score: f32,
    /// Whether the sequence ended with EOS (false: it hit `max_new_tokens`).
    pub finished: bool,
}

/// The closest call the search made for one prompt: the smallest RELATIVE gap
/// `|a - b| / max(1, |a|, |b|)` between two scores whose order decided what was kept (the last
/// running beam kept vs the best one dropped, an EOS continuation inside vs outside the top
/// `num_beams`, a finished hypothesis kept vs dropped, the early-stop test, the order of the
/// returned list). Parity tests use it to tell float-level ties from real differences.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Margin {
    pub gap: f32,
    /// Decoding step (0-based) where it happened; `usize::MAX` for the final ranking.
    pub step: usize,
}

impl Margin {
    pub(crate) fn none() -> Self {
        Margin { gap: f32::INFINITY, step: 0 }
    }
    pub(crate) fn note(&mut self, a: f32, b: f32, step: usize) {
        // Scores at -1e9 are transformers' "no beam" placeholders, not decisions.
        if a <= -1.0e8 || b <= -1.0e8 {
            return;
        }
        let g = (a - b).abs() / 1f32.max(a.abs()).max(b.abs());
        if g.is_finite() && g < self.gap {
            self.gap = g;
            self.step = step;
        }
    }
}

/// The result for one prompt: hypotheses best first.
#[derive(Debug, Clone, PartialEq)]
pub struct PromptOutput {
    pub hypotheses: Vec<Hypothesis>,
    pub margin: Margin,
}

/// The result of one `generate` call.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerateOutput {
    pub prompts: Vec<PromptOutput>,
    /// The sampling seed used (drawn when the configuration gave none); None when deterministic.
    pub seed: Option<u64>,
}

/// Check a configuration; returns a clear `InvalidOptions` error.
pub fn validate(cfg: &DecodingConfig) -> Result<()> {
    let bad = |m: String| Err(Error::InvalidOptions(m));
    if cfg.max_new_tokens == 0 {
        return bad("max_new_tokens must be at least 1".into());
    }
    if cfg.num_return_sequences == 0 {
        return bad("num_return_sequences must be at least 1".into());
    }
    use crate::capi::limits::{check_range, PROMPTIST_MAX_BEAMS, PROMPTIST_MAX_NEW_TOKENS, PROMPTIST_MAX_RETURN_SEQUENCES};
    check_range("max_new_tokens", cfg.max_new_tokens, 1, PROMPTIST_MAX_NEW_TOKENS)?;
    check_range("num_return_sequences", cfg.num_return_sequences, 1, PROMPTIST_MAX_RETURN_SEQUENCES)?;
    match &cfg.strategy {
        Strategy::Beam { num_beams, .. } => check_range("num_beams", *num_beams, 1, PROMPTIST_MAX_BEAMS)?,
        Strategy::DiverseBeam { num_beams, num_beam_groups, .. } => {
            check_range("num_beams", *num_beams, 1, PROMPTIST_MAX_BEAMS)?;
            check_range("num_beam_groups", *num_beam_groups, 1, PROMPTIST_MAX_BEAMS)?;
        }
        Strategy::Greedy | Strategy::Sample { .. } => {}
    }
    match &cfg.strategy {
        Strategy::Greedy => {
            if cfg.num_return_sequences != 1 {
                return bad("greedy decoding returns one sequence (num_return_sequences must be 1)".into());
            }
        }
        Strategy::Beam { num_beams, length_penalty, .. } => {
            if *num_beams == 0 {
                return bad("num_beams must be at least 1".into());
            }
            if cfg.num_return_sequences > *num_beams {
                return bad(format!("num_return_sequences {} exceeds num_beams {num_beams}", cfg.num_return_sequences));
            }
            if !length_penalty.is_finite() {
                return bad("length_penalty must be finite".into());
            }
        }
        Strategy::DiverseBeam { num_beams, num_beam_groups, diversity_penalty, length_penalty, .. } => {
            if *num_beams == 0 || *num_beam_groups == 0 {
                return bad("num_beams and num_beam_groups must be at least 1".into());
            }
            if num_beams % num_beam_groups != 0 {
                return bad(format!("num_beams {num_beams} is not a multiple of num_beam_groups {num_beam_groups}"));
            }
            if cfg.num_return_sequences > *num_beams {
                return bad(format!("num_return_sequences {} exceeds num_beams {num_beams}", cfg.num_return_sequences));
            }
            if !(diversity_penalty.is_finite() && *diversity_penalty >= 0.0) {
                return bad("diversity_penalty must be finite and >= 0".into());
            }
            if !length_penalty.is_finite() {
                return bad("length_penalty must be finite".into());
            }
        }
        Strategy::Sample { temperature, top_k: _, top_p, .. } => {
            if !(temperature.is_finite() && *temperature > 0.0) {
                return bad("temperature must be > 0".into());
            }
            if !(top_p.is_finite() && *top_p > 0.0 && *top_p <= 1.0) {
                return bad("top_p must be in (0, 1]".into());
            }
        }
    }
    Ok(())
}

/// Decode every prompt (token ids, no BOS) with `cfg`. Prompts run as one batch, left-padded.
pub fn generate(model: &mut dyn CausalLm, prompts: &[Vec<u32>], cfg: &DecodingConfig, ctl: &mut Controls<'_>) -> Result<GenerateOutput> {
    validate(cfg)?;
    if prompts.is_empty() {
        return Err(Error::InvalidOptions("no prompts given".into()));
    }
    let longest = prompts.iter().map(|p| p.len()).max().unwrap_or(0);
    if longest == 0 {
        return Err(Error::EmptyPrompt);
    }
    if longest + cfg.max_new_tokens > model.max_positions() {
        return Err(Error::PromptTooLong { tokens: longest, new_tokens: cfg.max_new_tokens, context: model.max_positions() });
    }
    match &cfg.strategy {
        Strategy::Greedy => crate::policy::greedy::run(model, prompts, cfg, ctl),
        Strategy::Beam { .. } => crate::policy::beam::run(model, prompts, cfg, ctl),
        Strategy::DiverseBeam { .. } => crate::policy::diverse::run(model, prompts, cfg, ctl),
        Strategy::Sample { .. } => crate::policy::sample::run(model, prompts, cfg, ctl),
    }
}

/// End of one step of the row-per-sequence decoders (greedy, sample): report progress, then
/// drop the rows whose `next` token is EOS and feed the others to the model. `live` maps model
/// rows to output slots and shrinks with the batch. Returns false when decoding is over (the
/// last step was taken or every row finished).
pub(crate) fn advance_rows(model: &mut dyn CausalLm, ctl: &mut Controls<'_>, step: usize, max_new_tokens: usize, live: &mut Vec<usize>, mut next: Vec<u32>) -> Result<bool> {
    ctl.tick(step + 1, max_new_tokens)?;
    if step + 1 == max_new_tokens {
        return Ok(false);
    }
    let eos = ctl.eos_token_id;
    let keep: Vec<usize> = (0..live.len()).filter(|&r| next[r] != eos).collect();
    if keep.is_empty() {
        return Ok(false);
    }
    if keep.len() != live.len() {
        model.select_rows(&keep)?;
        *live = keep.iter().map(|&r| live[r]).collect();
        next = keep.iter().map(|&r| next[r]).collect();
    }
    model.step(&next)?;
    Ok(true)
}

/// Strip a trailing EOS (the decoders report whether it was there).
pub(crate) fn without_eos(mut tokens: Vec<u32>, eos: u32) -> (Vec<u32>, bool) {
    if tokens.last() == Some(&eos) {
        tokens.pop();
        (tokens, true)
    } else {
        (tokens, false)
    }
}
