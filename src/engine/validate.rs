//! Argument checks of the engine, done in the Rust core so every front-end (C, CLI, bindings)
//! reports the same codes. Decoding rules are the decoder's (transformers' `generate()` checks).

use crate::capi::limits::{check_range, PROMPTIST_MAX_PROMPT_BYTES, PROMPTIST_MAX_THREADS};
use crate::engine::EngineOptions;
use crate::error::{Error, Result};
use crate::policy::config::DecodingConfig;

/// Check engine options that do not need the bundle.
pub fn validate_engine_options(o: &EngineOptions) -> Result<()> {
    if o.device_id < 0 {
        return Err(Error::InvalidOptions(format!("device_id must be >= 0, got {}", o.device_id)));
    }
    check_range("intra_op_threads", o.intra_op_threads, 0, PROMPTIST_MAX_THREADS)

}

/// Reject an empty (after trimming) prompt and one holding a NUL character (the tokenizers cannot
/// take it). Length against the context needs the tokenizer and is
/// checked by the engine.
pub fn check_prompt_text(prompt: &str) -> Result<()> {
    if prompt.trim().is_empty() {
        return Err(Error::EmptyPrompt);
    }
    check_range("prompt length in bytes", prompt.len(), 1, PROMPTIST_MAX_PROMPT_BYTES)?;
    if prompt.contains('\0') {
        return Err(Error::InvalidOptions("a prompt contains a NUL character".into()));
    }
    Ok(())
}

/// Check a decoding configuration (ranges and combinations) before any model work; the rules are
/// the decoder's own (`policy::generate::validate`), so every front-end gets the same answer.
pub fn validate_decoding(c: &DecodingConfig) -> Result<()> {
    crate::policy::generate::validate(c)
}

#[cfg(test)]
#[allow(clippy::field_reassign_with_default)]
mod tests {
    use super::*;
    use crate::error::Code;
    use crate::policy::config::{EarlyStopping, Strategy};

    fn code(c: &DecodingConfig) -> Code {
        validate_decoding(c).err().map(|e| e.code()).unwrap_or(Code::Ok)
    }

    #[test]
    fn prompt_text_rules() {
        assert!(check_prompt_text("a cat").is_ok());
        assert_eq!(check_prompt_text("  \n").unwrap_err().code(), Code::EmptyPrompt);
        assert_eq!(check_prompt_text("a\0cat").unwrap_err().code(), Code::InvalidOptions);
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
