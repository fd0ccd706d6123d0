//! `promptist-train export`: a trainer checkpoint folder becomes a complete promptist bundle
//! (`policy/model.onnx` built by the library's GPT-2 graph builder from the checkpoint's weights,
//! `policy/tokenizer.json`, `policy/config.json`, `promptist.json` with hashes and provenance).
//! The policy config records `vocab_size`, `eos_token_id` (= `bos_token_id` = pad) and the
//! tokenizer's own size, since a trained demo policy has its own small vocabulary.

use std::path::Path;

use promptist::bundle::writer::BundleWriter;
use promptist::bundle::{Manifest, Provenance};
use promptist::bundle::policy::{write_policy, PolicyGraph};
use promptist::export::convert::checkpoint_tokenizer;
use promptist::export::gpt2::{build_gpt2, AttentionImpl, Gpt2ExportOptions};
use promptist::export::gpt2_config::Gpt2Config;
use promptist::export::onnx::{DType, SaveOptions};

use crate::error::{Result, TrainError};
use crate::sft::checkpoint::SYNTHETIC_KEY;

/// Manifest policy-config key: the tokenizer's vocabulary size (may be below `vocab_size`).
pub const TOKENIZER_VOCAB_KEY: &str = "promptist_tokenizer_vocab_size";

/// Options of [`export_bundle`].
#[derive(Debug, Clone)]
pub struct ExportOptions {
    pub dtype: DType,
    /// Standard ONNX attention (any runtime) or ORT's fused MultiHeadAttention contrib op.
    pub attention: AttentionImpl,
    pub name: Option<String>,
    /// Tensors of at least this many bytes go to `model.onnx_data`; `None` keeps all inline.
    pub external_threshold_bytes: Option<usize>,
    pub description: Option<String>,
}

impl Default for ExportOptions {
    fn default() -> Self {
        Self { dtype: DType::F32, attention: AttentionImpl::Standard, name: None, external_threshold_bytes: SaveOptions::default().external_threshold_bytes, description: None }
    }
}

/// Export `checkpoint` (a folder written by the trainer, or any Hugging Face GPT-2 folder) to `out`.
pub fn export_bundle(checkpoint: &Path, out: &Path, opts: &ExportOptions) -> Result<Manifest> {
    let mut cfg = Gpt2Config::from_file(&checkpoint.join("config.json"))?;
    let tok = checkpoint_tokenizer(checkpoint)?;
    if tok.vocab_size() > cfg.vocab_size {
        return Err(TrainError::Checkpoint(format!("tokenizer has {} tokens, model vocab_size is {}", tok.vocab_size(), cfg.vocab_size)));
    }
    let eos = tok.eos_id();
    if cfg.eos_token_id != Some(eos) {
        eprintln!("export: config eos_token_id {:?} differs from the tokenizer's <|endoftext|> id {eos}; using {eos}", cfg.eos_token_id);
        cfg.eos_token_id = Some(eos);
        cfg.bos_token_id = Some(eos);
    }
    let (weights, format) = promptist::weights::load_checkpoint_weights(checkpoint)?;
    eprintln!("export: {} tensors from {}", weights.len(), format.path().display());
    let model = build_gpt2(&cfg, &weights, &Gpt2ExportOptions { dtype: opts.dtype, attention: opts.attention })?;
    drop(weights);
    let synthetic = cfg.extra.get(SYNTHETIC_KEY).and_then(|v| v.as_bool()).unwrap_or(false);
    let step = crate::sft::checkpoint::load_state(checkpoint).ok().map(|s| s.step);
    let name = opts.name.clone().unwrap_or_else(|| "promptist-policy".into());
    let mut description = opts.description.clone().unwrap_or_else(|| format!("GPT-2 policy trained by promptist-train ({})", checkpoint.display()));
    if synthetic && !description.to_ascii_lowercase().contains("synthetic") {
        description.push_str(" [trained on SYNTHETIC data]");
    }
    let provenance = Provenance {
        source: match step {
            Some(s) => format!("{} (step {s})", checkpoint.display()),
            None => checkpoint.display().to_string(),
        },
        producer: format!("promptist-train {} export", env!("CARGO_PKG_VERSION")),
        random_weights: cfg.random_init(),
        synthetic_training_data: synthetic,
    };
    let mut bundle = BundleWriter::create(out, &name, &description, provenance)?;
    let save = SaveOptions { external_threshold_bytes: opts.external_threshold_bytes };
    let mut extra = serde_json::Map::new();
    extra.insert(TOKENIZER_VOCAB_KEY.into(), tok.vocab_size().into());
    write_policy(&mut bundle, PolicyGraph::Built { model: &model, save }, opts.dtype, &tok, &cfg, extra)?;
    drop(model);
    Ok(bundle.finish()?)
}
