//! Argument checks of the engine, done in the Rust core so every front-end (C, CLI, bindings)
//! reports the same codes. Rules follow transformers' `generate()` argument validation.

use crate::engine::EngineOptions;
use crate::error::{Error, Result};
use crate::policy::config::{DecodingConfig, Strategy};

/// Check engine options that do not need the bundle.
pub fn validate_engine_options(o: &EngineOptions) -> Result<()> {
    if o.device_id < 0 {
        return Err(Error::InvalidOptions(format!("device_id must be >= 0, got {}", o.device_id)));
    }
    Ok(())
}

/// Reject an empty (after trimming) prompt. Length against the context needs the tokenizer and is
/// checked by the engine.
pub fn check_prompt_text(prompt: &str) -> Result<()> {
    if prompt.trim().is_empty() {
        return Err(Error::EmptyPrompt);
    }
    Ok(())
}

fn bad(msg: String) -> Result<()> {
    Err(Error::InvalidOptions(msg))
}

fn check_penalty(name: &str, v: f32) -> Result<()> {
    if !v.is_finite() {
        return bad(format!("{name} must be finite, got {v}"));
    }
    Ok(())
}

/// Check a decoding configuration (ranges and combinations), before any model work.
pub fn validate_decoding(c: &DecodingConfig) -> Result<()> {
    if c.max_new_tokens == 0 {
        return bad("max_new_tokens must be >= 1".into());
    }
    if c.num_return_sequences == 0 {
        return bad("num_return_sequences must be >= 1".into());
    }
    match &c.strategy {
        Strategy::Greedy => {
            if c.num_return_sequences != 1 {
                return bad(format!("greedy decoding returns 1 sequence, num_return_sequences is {}", c.num_return_sequences));
            }
        }
        Strategy::Beam { num_beams, length_penalty, .. } => {
            if *num_beams == 0 {
                return bad("num_beams must be >= 1".into());
            }
            check_penalty("length_penalty", *length_penalty)?;
            if c.num_return_sequences > *num_beams {
                return bad(format!("num_return_sequences ({}) must be <= num_beams ({num_beams})", c.num_return_sequences));
            }
        }
        Strategy::DiverseBeam { num_beams, num_beam_groups, diversity_penalty, length_penalty, .. } => {
            if *num_beams == 0 {
                return bad("num_beams must be >= 1".into());
            }
            if *num_beam_groups < 2 {
                return bad(format!("diverse beam search needs num_beam_groups >= 2, got {num_beam_groups}"));
            }
            if num_beams % num_beam_groups != 0 {
                return bad(format!("num_beams ({num_beams}) must be divisible by num_beam_groups ({num_beam_groups})"));
            }
            check_penalty("length_penalty", *length_penalty)?;
            if !diversity_penalty.is_finite() || *diversity_penalty < 0.0 {
                return bad(format!("diversity_penalty must be finite and >= 0, got {diversity_penalty}"));
            }
            if c.num_return_sequences > *num_beams {
                return bad(format!("num_return_sequences ({}) must be <= num_beams ({num_beams})", c.num_return_sequences));
            }
        }
        Strategy::Sample { temperature, top_p, .. } => {
            if !temperature.is_finite() || *temperature <= 0.0 {
                return bad(format!("temperature must be finite and > 0, got {temperature}"));
            }
            if !top_p.is_finite() || *top_p <= 0.0 || *top_p > 1.0 {
                return bad(format!("top_p must be in (0, 1], got {top_p}"));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Code;
    use crate::policy::config::EarlyStopping;

    fn code(c: &DecodingConfig) -> Code {
        validate_decoding(c).err().map(|e| e.code()).unwrap_or(Code::Ok)
    }

    #[test]
    fn defaults_are_valid() {
        assert_eq!(code(&DecodingConfig::default()), Code::Ok);
    }

    #[test]
    fn zero_beams_rejected() {
        let mut c = DecodingConfig::default();
        c.strategy = Strategy::Beam { num_beams: 0, length_penalty: -1.0, early_stopping: EarlyStopping::Heuristic };
        assert_eq!(code(&c), Code::InvalidOptions);
    }

    #[test]
    fn diverse_groups_must_divide_beams() {
        let mut c = DecodingConfig::default();
        c.strategy = Strategy::DiverseBeam {
            num_beams: 8,
            num_beam_groups: 3,
            diversity_penalty: 1.0,
            length_penalty: 1.0,
            early_stopping: EarlyStopping::Heuristic,
        };
        assert_eq!(code(&c), Code::InvalidOptions);
        c.strategy = Strategy::DiverseBeam {
            num_beams: 8,
            num_beam_groups: 4,
            diversity_penalty: 1.0,
            length_penalty: 1.0,
            early_stopping: EarlyStopping::Heuristic,
        };
        assert_eq!(code(&c), Code::Ok);
    }

    #[test]
    fn sampling_ranges() {
        let mut c = DecodingConfig::default();
        c.strategy = Strategy::Sample { temperature: 0.0, top_k: 50, top_p: 1.0, seed: None };
        assert_eq!(code(&c), Code::InvalidOptions);
        c.strategy = Strategy::Sample { temperature: 1.0, top_k: 50, top_p: 1.5, seed: None };
        assert_eq!(code(&c), Code::InvalidOptions);
        c.strategy = Strategy::Sample { temperature: 0.7, top_k: 0, top_p: 0.9, seed: Some(3) };
        assert_eq!(code(&c), Code::Ok);
    }

    #[test]
    fn counts_rejected() {
        let mut c = DecodingConfig::default();
        c.max_new_tokens = 0;
        assert_eq!(code(&c), Code::InvalidOptions);
        let mut c = DecodingConfig::default();
        c.num_return_sequences = 9;
        assert_eq!(code(&c), Code::InvalidOptions);
    }

    #[test]
    fn empty_prompt() {
        assert_eq!(check_prompt_text("  \n\t").unwrap_err().code(), Code::EmptyPrompt);
        assert!(check_prompt_text("a cat").is_ok());
    }
}
