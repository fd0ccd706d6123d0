//! The policy component of a bundle: its files (`policy/model.onnx`, `tokenizer.json`, `config.json`)
//! and the GPT-2 model config (Hugging Face `GPT2Config` field names).

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Error, Result};

/// The policy component's name in the manifest.
pub const POLICY: &str = "policy";
/// Its kind.
pub const POLICY_KIND: &str = "gpt2-policy";
/// File paths relative to the bundle root.
pub const POLICY_MODEL: &str = "policy/model.onnx";
pub const POLICY_TOKENIZER: &str = "policy/tokenizer.json";
pub const POLICY_CONFIG: &str = "policy/config.json";

/// The GPT-2 shape the engine needs (from the Hugging Face `config.json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PolicyConfig {
    /// Context length (`n_positions`, or `n_ctx` in old configs).
    pub n_ctx: usize,
    pub vocab_size: usize,
    pub n_layer: usize,
    pub n_head: usize,
    pub n_embd: usize,
    /// `eos_token_id` (50256 for GPT-2).
    pub eos_token_id: u32,
}

#[derive(Deserialize)]
struct RawConfig {
    n_positions: Option<usize>,
    n_ctx: Option<usize>,
    vocab_size: Option<usize>,
    n_layer: Option<usize>,
    n_head: Option<usize>,
    n_embd: Option<usize>,
    eos_token_id: Option<u32>,
}

impl PolicyConfig {
    /// Parse the GPT-2 fields of a Hugging Face `config.json` value; `origin` names it in errors.
    pub fn from_json(v: &serde_json::Value, origin: &str) -> Result<Self> {
        let bad = |m: String| Error::BundleInvalid(format!("{origin}: {m}"));
        let raw: RawConfig = serde_json::from_value(v.clone()).map_err(|e| bad(e.to_string()))?;
        let need = |x: Option<usize>, name: &str| {
            x.filter(|&n| n > 0)
                .ok_or_else(|| bad(format!("`{name}` is missing or 0")))
        };
        let cfg = PolicyConfig {
            n_ctx: need(raw.n_positions.or(raw.n_ctx), "n_positions")?,
            vocab_size: need(raw.vocab_size, "vocab_size")?,
            n_layer: need(raw.n_layer, "n_layer")?,
            n_head: need(raw.n_head, "n_head")?,
            n_embd: need(raw.n_embd, "n_embd")?,
            eos_token_id: raw.eos_token_id.unwrap_or(crate::text::gpt2::EOS_ID),
        };
        if !cfg.n_embd.is_multiple_of(cfg.n_head) {
            return Err(bad(format!(
                "n_embd {} is not a multiple of n_head {}",
                cfg.n_embd, cfg.n_head
            )));
        }
        if cfg.eos_token_id as usize >= cfg.vocab_size {
            return Err(bad(format!(
                "eos_token_id {} is outside vocab_size {}",
                cfg.eos_token_id, cfg.vocab_size
            )));
        }
        Ok(cfg)
    }

    /// Read and parse a `config.json` file.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
        let v: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| Error::BundleInvalid(format!("{}: not valid JSON: {e}", path.display())))?;
        Self::from_json(&v, &path.display().to_string())
    }

    /// Size of one head.
    pub fn head_dim(&self) -> usize {
        self.n_embd / self.n_head
    }
}

/// The policy's files (absolute paths) and config.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyFiles {
    pub model: PathBuf,
    pub tokenizer: PathBuf,
    pub config_file: PathBuf,
    pub config: PolicyConfig,
}

impl PolicyFiles {
    /// Load the policy's `tokenizer.json`, checked against the config: the same EOS id and a
    /// vocabulary that fits the model's embedding (BundleInvalid otherwise).
    pub fn load_tokenizer(&self) -> Result<crate::text::Gpt2Tokenizer> {
        let tok = crate::text::Gpt2Tokenizer::from_tokenizer_json(&self.tokenizer)?;
        if tok.eos_id() != self.config.eos_token_id {
            return Err(Error::BundleInvalid(format!(
                "{}: <|endoftext|> is id {}, but the policy config says eos_token_id {}",
                self.tokenizer.display(),
                tok.eos_id(),
                self.config.eos_token_id
            )));
        }
        if tok.vocab_size() > self.config.vocab_size {
            return Err(Error::BundleInvalid(format!(
                "{}: {} tokens, more than the policy's vocab_size {}",
                self.tokenizer.display(),
                tok.vocab_size(),
                self.config.vocab_size
            )));
        }
        Ok(tok)
    }
}
