//! The policy component of a bundle: its files (`policy/model.onnx`, `tokenizer.json`, `config.json`)
//! and the GPT-2 model config (Hugging Face `GPT2Config` field names).

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::export::gpt2_config::Gpt2Config;

/// The policy component's name in the manifest.
pub const POLICY: &str = "policy";
/// Its kind.
pub const POLICY_KIND: &str = "gpt2-policy";
/// File paths relative to the bundle root.
pub const POLICY_MODEL: &str = "policy/model.onnx";
pub const POLICY_TOKENIZER: &str = "policy/tokenizer.json";
pub const POLICY_CONFIG: &str = "policy/config.json";
/// The policy graph's external data file, when it has one.
pub const POLICY_MODEL_DATA: &str = "policy/model.onnx_data";
/// Key added to the policy's manifest config: "float32" or "float16" (the graph's weight/KV type).
pub const ONNX_DTYPE_KEY: &str = "promptist_onnx_dtype";

/// Where the policy's ONNX graph comes from when a bundle is written.
pub enum PolicyGraph<'a> {
    /// A graph built in memory (the GPT-2 builder), saved with `save`.
    Built { model: &'a crate::export::onnx::Model, save: crate::export::onnx::SaveOptions },
    /// An ONNX file (an optimum export) copied with its external data files (names relative to
    /// the file's folder).
    Copied { model: &'a Path, external: &'a [String] },
}

/// Write the policy component into `bundle`: `policy/model.onnx` (+ its external data),
/// `policy/tokenizer.json`, `policy/config.json`, registered in the manifest with the config, the
/// graph's element type (`dtype`, under [`ONNX_DTYPE_KEY`]) and the `extra` keys. The one writer
/// of a policy component: the converter and the trainer's export both call it.
pub fn write_policy(
    bundle: &mut super::writer::BundleWriter,
    graph: PolicyGraph<'_>,
    dtype: crate::export::onnx::DType,
    tokenizer: &crate::text::Gpt2Tokenizer,
    cfg: &Gpt2Config,
    extra: serde_json::Map<String, serde_json::Value>,
) -> Result<()> {
    let dir = bundle.component_dir(POLICY)?;
    let mut files = vec![POLICY_MODEL.to_string(), POLICY_TOKENIZER.into(), POLICY_CONFIG.into()];
    match graph {
        PolicyGraph::Built { model, save } => {
            let saved = crate::export::onnx::save_model(model, &bundle.root().join(POLICY_MODEL), &save)?;
            if saved.data_path.is_some() {
                files.push(POLICY_MODEL_DATA.into());
            }
        }
        PolicyGraph::Copied { model, external } => {
            let copy = |from: &Path, to: &Path| {
                std::fs::copy(from, to).map(|_| ()).map_err(|e| Error::io(format!("copying {}", from.display()), e))
            };
            copy(model, &bundle.root().join(POLICY_MODEL))?;
            let src_dir = model.parent().unwrap_or(Path::new("."));
            for f in external {
                copy(&src_dir.join(f), &dir.join(f))?;
                files.push(format!("{POLICY}/{f}"));
            }
        }
    }
    let write = |rel: &str, text: &str| {
        let p = bundle.root().join(rel);
        std::fs::write(&p, text).map_err(|e| Error::io(format!("writing {}", p.display()), e))
    };
    write(POLICY_TOKENIZER, &tokenizer.to_json()?)?;
    write(POLICY_CONFIG, &(cfg.to_json_pretty()? + "\n"))?;
    let mut config = serde_json::to_value(cfg).map_err(|e| Error::Internal(format!("config to JSON: {e}")))?;
    if let Some(obj) = config.as_object_mut() {
        let name = if dtype == crate::export::onnx::DType::F16 { "float16" } else { "float32" };
        obj.insert(ONNX_DTYPE_KEY.into(), name.into());
        obj.extend(extra);
    }
    let files: Vec<&str> = files.iter().map(String::as_str).collect();
    bundle.add_component(POLICY, POLICY_KIND, config, &files)?;
    bundle.mark_random(POLICY, cfg.random_init())
}

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

impl PolicyConfig {
    /// The policy's view of a GPT-2 config.
    pub fn from_gpt2(c: &Gpt2Config) -> Self {
        PolicyConfig {
            n_ctx: c.context(),
            vocab_size: c.vocab_size,
            n_layer: c.n_layer,
            n_head: c.n_head,
            n_embd: c.n_embd,
            eos_token_id: c.eos_id(),
        }
    }

    /// Parse the GPT-2 fields of a Hugging Face `config.json` value (through the one GPT-2 config
    /// reader, [`Gpt2Config::from_value`]); `origin` names it in errors (BundleInvalid).
    pub fn from_json(v: &serde_json::Value, origin: &str) -> Result<Self> {
        let c = Gpt2Config::from_value(v).map_err(|e| Error::BundleInvalid(format!("{origin}: {e}")))?;
        let cfg = Self::from_gpt2(&c);
        // Decoding stops at EOS, so the policy's EOS must be one of its tokens.
        if cfg.eos_token_id as usize >= cfg.vocab_size {
            return Err(Error::BundleInvalid(format!("{origin}: eos_token_id {} is outside vocab_size {}", cfg.eos_token_id, cfg.vocab_size)));
        }
        Ok(cfg)
    }

    /// Read and parse a `config.json` file.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = crate::io::read_text(path)?;
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
