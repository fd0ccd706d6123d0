//! Flat decoding parameters shared by every front-end (C options struct, CLI flags, bindings):
//! one place for the defaults (the Promptist reference demo, docs/method.md §2, plus transformers'
//! sampling defaults) and for turning the flat form into a [`DecodingConfig`].

use crate::policy::config::{DecodingConfig, EarlyStopping, Strategy};

/// Which decoding strategy (the flat form of [`Strategy`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StrategyKind {
    Greedy,
    #[default]
    Beam,
    DiverseBeam,
    Sample,
}

/// Every decoding knob with a value; the fields the chosen strategy does not use are ignored.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodingParams {
    pub strategy: StrategyKind,
    pub num_beams: usize,
    pub num_beam_groups: usize,
    pub diversity_penalty: f32,
    pub length_penalty: f32,
    pub early_stopping: EarlyStopping,
    pub temperature: f32,
    /// 0 disables top-k.
    pub top_k: usize,
    /// 1.0 disables top-p.
    pub top_p: f32,
    /// None: the library draws a seed and reports it.
    pub seed: Option<u64>,
    pub max_new_tokens: usize,
    pub num_return_sequences: usize,
    /// Keep the front-end syntax of the prompt (`(word:1.2)`, `<lora:...>`, `{a|b}`, ...) intact:
    /// the policy sees the plain text and the result is the user's prompt, byte for byte, plus the
    /// rewrite's new phrases (`crate::text::syntax`). No effect on a prompt without syntax.
    pub keep_syntax: bool,
    /// Fit each rewrite into this many CLIP tokens (Stable Diffusion's window is 75), cut after the
    /// last whole comma-separated phrase that fits, never inside the user's own text
    /// (`crate::text::budget`); 0 turns it off.
    pub max_clip_tokens: usize,
}

impl Default for DecodingParams {
    /// The reference demo: beam search, 8 beams, length_penalty -1.0, 75 new tokens; diverse beam
    /// search with as many groups as beams and diversity 1.0 (the reference PPO rollouts);
    /// sampling with transformers' defaults (temperature 1, top-k 50, top-p 1).
    fn default() -> Self {
        DecodingParams {
            strategy: StrategyKind::Beam,
            num_beams: 8,
            num_beam_groups: 8,
            diversity_penalty: 1.0,
            length_penalty: -1.0,
            early_stopping: EarlyStopping::Heuristic,
            temperature: 1.0,
            top_k: 50,
            top_p: 1.0,
            seed: None,
            max_new_tokens: 75,
            num_return_sequences: 1,
            keep_syntax: true,
            max_clip_tokens: 75,
        }
    }
}

impl DecodingParams {
    /// The structured configuration (ranges are checked later by `validate_decoding`).
    pub fn to_config(&self) -> DecodingConfig {
        let strategy = match self.strategy {
            StrategyKind::Greedy => Strategy::Greedy,
            StrategyKind::Beam => Strategy::Beam {
                num_beams: self.num_beams,
                length_penalty: self.length_penalty,
                early_stopping: self.early_stopping,
            },
            StrategyKind::DiverseBeam => Strategy::DiverseBeam {
                num_beams: self.num_beams,
                num_beam_groups: self.num_beam_groups,
                diversity_penalty: self.diversity_penalty,
                length_penalty: self.length_penalty,
                early_stopping: self.early_stopping,
            },
            StrategyKind::Sample => Strategy::Sample { temperature: self.temperature, top_k: self.top_k, top_p: self.top_p, seed: self.seed },
        };
        DecodingConfig { strategy, max_new_tokens: self.max_new_tokens, num_return_sequences: self.num_return_sequences }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_reference_demo() {
        assert_eq!(DecodingParams::default().to_config(), DecodingConfig::default());
    }
}
