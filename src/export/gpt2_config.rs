//! The Hugging Face GPT-2 `config.json` (transformers `GPT2Config` field names and defaults), with
//! the presets the project uses: `tiny` (tests) and `gpt2` (the 117M "gpt2" checkpoint's shape).
//!
//! This is the one reader of a GPT-2 config in the project: the converter, the bundle loader
//! (`bundle::PolicyConfig`) and the decoder (`policy::Gpt2Dims`) all parse through
//! [`Gpt2Config::from_value`] and so accept and reject the same files.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// GPT-2 hyper-parameters as stored in `config.json`. Unknown fields are kept in `extra` so a
/// converted bundle carries the original config unchanged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Gpt2Config {
    #[serde(default = "default_model_type")]
    pub model_type: String,
    pub vocab_size: usize,
    /// Context length; older configs also carry `n_ctx` (used when `n_positions` is absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n_positions: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n_ctx: Option<usize>,
    pub n_embd: usize,
    pub n_layer: usize,
    pub n_head: usize,
    /// MLP width; `null`/absent means 4 * n_embd.
    #[serde(default)]
    pub n_inner: Option<usize>,
    #[serde(default = "default_eps")]
    pub layer_norm_epsilon: f64,
    #[serde(default = "default_activation")]
    pub activation_function: String,
    #[serde(default = "default_true")]
    pub scale_attn_weights: bool,
    #[serde(default)]
    pub scale_attn_by_inverse_layer_idx: bool,
    #[serde(default)]
    pub reorder_and_upcast_attn: bool,
    #[serde(default = "default_eos")]
    pub bos_token_id: Option<u32>,
    #[serde(default = "default_eos")]
    pub eos_token_id: Option<u32>,
    #[serde(default = "default_true")]
    pub tie_word_embeddings: bool,
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

fn default_model_type() -> String {
    "gpt2".into()
}
fn default_eps() -> f64 {
    1e-5
}
fn default_activation() -> String {
    "gelu_new".into()
}
fn default_true() -> bool {
    true
}
fn default_eos() -> Option<u32> {
    Some(50256)
}

/// The GPT-2 vocabulary size (50,000 merges + 256 bytes + `<|endoftext|>`).
pub const GPT2_VOCAB_SIZE: usize = 50257;

impl Gpt2Config {
    fn base(n_layer: usize, n_head: usize, n_embd: usize, n_positions: usize) -> Self {
        let mut extra = serde_json::Map::new();
        extra.insert("architectures".into(), serde_json::json!(["GPT2LMHeadModel"]));
        Self {
            model_type: default_model_type(),
            vocab_size: GPT2_VOCAB_SIZE,
            n_positions: Some(n_positions),
            n_ctx: None,
            n_embd,
            n_layer,
            n_head,
            n_inner: None,
            layer_norm_epsilon: default_eps(),
            activation_function: default_activation(),
            scale_attn_weights: true,
            scale_attn_by_inverse_layer_idx: false,
            reorder_and_upcast_attn: false,
            bos_token_id: default_eos(),
            eos_token_id: default_eos(),
            tie_word_embeddings: true,
            extra,
        }
    }
    /// Tiny test model: 2 layers, 4 heads, width 64, context 256, the real vocabulary.
    pub fn tiny() -> Self {
        Self::base(2, 4, 64, 256)
    }
    /// The shape of OpenAI's 117M "gpt2" (12 layers, 12 heads, width 768, context 1024).
    pub fn gpt2() -> Self {
        Self::base(12, 12, 768, 1024)
    }
    /// A preset by name: "tiny" or "gpt2".
    pub fn preset(name: &str) -> Result<Self> {
        match name {
            "tiny" => Ok(Self::tiny()),
            "gpt2" => Ok(Self::gpt2()),
            other => Err(Error::InvalidOptions(format!("unknown GPT-2 preset {other:?} (expected tiny or gpt2)"))),
        }
    }

    /// Parse `config.json` text and validate it.
    pub fn from_json(text: &str) -> Result<Self> {
        let v: serde_json::Value =
            serde_json::from_str(text).map_err(|e| Error::ModelFormat(format!("GPT-2 config.json is not valid JSON: {e}")))?;
        Self::from_value(&v)
    }
    /// Parse a `config.json` value (e.g. a manifest's copy) and validate it.
    pub fn from_value(v: &serde_json::Value) -> Result<Self> {
        let c = Self::deserialize(v).map_err(|e| Error::ModelFormat(format!("GPT-2 config.json: {e}")))?;
        c.validate()?;
        Ok(c)
    }
    /// Read and validate a `config.json` file.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = crate::io::read_text(path)?;
        Self::from_json(&text).map_err(|e| Error::ModelFormat(format!("{}: {e}", path.display())))
    }
    pub fn to_json_pretty(&self) -> Result<String> {
        serde_json::to_string_pretty(self).map_err(|e| Error::Internal(format!("serializing GPT-2 config: {e}")))
    }

    /// The end-of-text id (`eos_token_id`; GPT-2's 50256 when the config has none).
    pub fn eos_id(&self) -> u32 {
        self.eos_token_id.unwrap_or(crate::text::gpt2::EOS_ID)
    }
    /// The context length (`n_positions`, else `n_ctx`, else transformers' default 1024).
    pub fn context(&self) -> usize {
        self.n_positions.or(self.n_ctx).unwrap_or(1024)
    }
    pub fn head_dim(&self) -> usize {
        self.n_embd / self.n_head.max(1)
    }
    pub fn inner(&self) -> usize {
        self.n_inner.unwrap_or(4 * self.n_embd)
    }
    /// True when the config says the weights are random (written by `promptist make-tiny`).
    pub fn random_init(&self) -> bool {
        self.extra.get(RANDOM_INIT_KEY).and_then(|v| v.as_bool()).unwrap_or(false)
    }

    /// Check that the graph builder supports this config.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::ModelFormat(format!("GPT-2 config: {m}")));
        if self.model_type != "gpt2" {
            return bad(format!("model_type is {:?}, expected \"gpt2\"", self.model_type));
        }
        if self.n_layer == 0 || self.n_head == 0 || self.n_embd == 0 || self.vocab_size == 0 || self.context() == 0 {
            return bad("n_layer, n_head, n_embd, vocab_size and n_positions must be positive".into());
        }
        if !self.n_embd.is_multiple_of(self.n_head) {
            return bad(format!("n_embd {} is not divisible by n_head {}", self.n_embd, self.n_head));
        }
        if !matches!(self.activation_function.as_str(), "gelu_new" | "gelu_pytorch_tanh" | "gelu") {
            return bad(format!(
                "activation_function {:?} is not supported (gelu_new, gelu_pytorch_tanh, gelu)",
                self.activation_function
            ));
        }
        if self.layer_norm_epsilon.is_nan() || self.layer_norm_epsilon <= 0.0 {
            return bad("layer_norm_epsilon must be positive".into());
        }
        Ok(())
    }
}

/// The `config.json` key `promptist make-tiny` sets to `true`; `convert` carries it into the
/// manifest's `provenance.random_weights`.
pub const RANDOM_INIT_KEY: &str = "promptist_random_init";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_hf_config_with_n_ctx_and_keeps_extra() {
        let text = r#"{"activation_function":"gelu_new","architectures":["GPT2LMHeadModel"],"n_ctx":1024,
            "n_positions":1024,"n_embd":768,"n_head":12,"n_layer":12,"vocab_size":50257,"model_type":"gpt2",
            "summary_type":"cls_index","task_specific_params":{"text-generation":{"max_length":50}}}"#;
        let c = Gpt2Config::from_json(text).unwrap();
        assert_eq!(c.context(), 1024);
        assert_eq!(c.head_dim(), 64);
        assert_eq!(c.inner(), 3072);
        assert!(c.extra.contains_key("task_specific_params"));
        let back: serde_json::Value = serde_json::from_str(&c.to_json_pretty().unwrap()).unwrap();
        assert_eq!(back["summary_type"], "cls_index");
        assert!(!c.random_init());
    }

    #[test]
    fn rejects_bad_configs() {
        let mut c = Gpt2Config::tiny();
        c.n_head = 3;
        assert!(c.validate().is_err());
        let mut c = Gpt2Config::tiny();
        c.activation_function = "relu".into();
        assert_eq!(c.validate().unwrap_err().code(), crate::Code::ModelFormat);
        assert!(Gpt2Config::preset("huge").is_err());
        let mut v = serde_json::to_value(Gpt2Config::tiny()).unwrap();
        v["eos_token_id"] = 60000.into();
        let e = crate::bundle::PolicyConfig::from_json(&v, "t").unwrap_err();
        assert!(e.to_string().contains("outside vocab_size"), "{e}");
    }

    #[test]
    fn old_configs_with_only_n_ctx_are_read_alike_everywhere() {
        let v = serde_json::json!({"n_ctx": 512, "n_embd": 64, "n_head": 4, "n_layer": 2, "vocab_size": 50257});
        let c = Gpt2Config::from_value(&v).unwrap();
        assert_eq!(c.context(), 512);
        let p = crate::bundle::PolicyConfig::from_json(&v, "test").unwrap();
        assert_eq!((p.n_ctx, p.eos_token_id), (512, 50256));
        let d = crate::policy::Gpt2Dims::from_config_json(&v.to_string()).unwrap();
        assert_eq!((d.n_positions, d.head_dim), (512, 16));
    }
}
