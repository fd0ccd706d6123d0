//! Checkpoint -> bundle conversion: a Hugging Face GPT-2-architecture folder (config.json, weights,
//! tokenizer files) becomes a promptist bundle with `policy/model.onnx` (+ `model.onnx_data`),
//! `policy/tokenizer.json`, `policy/config.json` and the `promptist.json` manifest.

use std::path::Path;

use super::gpt2::{build_gpt2, Gpt2ExportOptions};
use super::gpt2_config::Gpt2Config;
use super::onnx::{save_model, DType, SaveOptions};
use crate::bundle::writer::BundleWriter;
use crate::bundle::{Manifest, Provenance};
use crate::text::gpt2::Gpt2Tokenizer;
use crate::weights::load_checkpoint_weights;
use crate::{Error, Result};

/// The policy component's name and kind in the manifest.
pub const POLICY_COMPONENT: &str = "policy";
pub const POLICY_KIND: &str = "gpt2-policy";
/// Key added to the policy's manifest config: "float32" or "float16" (the graph's weight/KV type).
pub const ONNX_DTYPE_KEY: &str = "promptist_onnx_dtype";

/// Options of [`convert_checkpoint`].
#[derive(Debug, Clone)]
pub struct ConvertOptions {
    /// `DType::F32` or `DType::F16`.
    pub dtype: DType,
    /// Bundle name for the manifest (default: the checkpoint folder's name).
    pub name: Option<String>,
    /// Tensors of at least this many bytes go to `model.onnx_data` (`None`: all inline).
    pub external_threshold_bytes: Option<usize>,
}

impl Default for ConvertOptions {
    fn default() -> Self {
        Self { dtype: DType::F32, name: None, external_threshold_bytes: SaveOptions::default().external_threshold_bytes }
    }
}

/// The tokenizer of a checkpoint folder: `tokenizer.json`, else `vocab.json` + `merges.txt`.
pub fn checkpoint_tokenizer(dir: &Path) -> Result<Gpt2Tokenizer> {
    let tj = dir.join("tokenizer.json");
    if tj.is_file() {
        return Gpt2Tokenizer::from_tokenizer_json(&tj);
    }
    let (vocab, merges) = (dir.join("vocab.json"), dir.join("merges.txt"));
    if vocab.is_file() && merges.is_file() {
        return Gpt2Tokenizer::from_vocab_merges(&vocab, &merges);
    }
    Err(Error::ModelFormat(format!("{}: no tokenizer.json, and no vocab.json + merges.txt", dir.display())))
}

/// Convert the checkpoint folder `checkpoint` into a bundle at `out`; `progress` receives one line
/// per stage (the CLI prints them to stderr).
pub fn convert_checkpoint(checkpoint: &Path, out: &Path, opts: &ConvertOptions, progress: &mut dyn FnMut(&str)) -> Result<Manifest> {
    if !checkpoint.is_dir() {
        return Err(Error::ModelFormat(format!("checkpoint folder {} does not exist", checkpoint.display())));
    }
    let cfg = Gpt2Config::from_file(&checkpoint.join("config.json"))?;
    progress(&format!(
        "config: {} layers, {} heads, width {}, context {}, vocab {}",
        cfg.n_layer,
        cfg.n_head,
        cfg.n_embd,
        cfg.context(),
        cfg.vocab_size
    ));
    let tokenizer = checkpoint_tokenizer(checkpoint)?;
    if tokenizer.vocab_size() > cfg.vocab_size {
        return Err(Error::ModelFormat(format!(
            "the tokenizer has {} tokens but the model's vocab_size is {}",
            tokenizer.vocab_size(),
            cfg.vocab_size
        )));
    }
    let (weights, format) = load_checkpoint_weights(checkpoint)?;
    progress(&format!("weights: {} tensors from {}", weights.len(), format.path().display()));

    let model = build_gpt2(&cfg, &weights, &Gpt2ExportOptions { dtype: opts.dtype })?;
    drop(weights);
    let name = opts.name.clone().unwrap_or_else(|| {
        checkpoint.canonicalize().ok().and_then(|p| p.file_name().map(|f| f.to_string_lossy().into_owned())).unwrap_or_else(|| "promptist".into())
    });
    let random = cfg.random_init();
    let source = match (random, cfg.extra.get("promptist_init_seed")) {
        (true, Some(seed)) => format!("random seed {seed} ({})", checkpoint.display()),
        _ => checkpoint.display().to_string(),
    };
    let provenance = Provenance {
        source,
        producer: format!("promptist {} convert", crate::VERSION),
        random_weights: random,
        synthetic_training_data: false,
    };
    let description = if random {
        "GPT-2 policy with RANDOM weights (made by promptist make-tiny): its outputs are meaningless".to_string()
    } else {
        format!("GPT-2 policy converted from {}", checkpoint.display())
    };
    let mut bundle = BundleWriter::create(out, &name, &description, provenance)?;
    let dir = bundle.component_dir(POLICY_COMPONENT)?;
    progress("writing policy/model.onnx");
    let saved = save_model(&model, &dir.join("model.onnx"), &SaveOptions { external_threshold_bytes: opts.external_threshold_bytes })?;
    drop(model);
    let write = |file: &str, text: &str| std::fs::write(dir.join(file), text).map_err(|e| Error::io(format!("writing {}", dir.join(file).display()), e));
    write("tokenizer.json", &tokenizer.to_json()?)?;
    write("config.json", &(cfg.to_json_pretty()? + "\n"))?;

    let mut files = vec!["policy/model.onnx", "policy/tokenizer.json", "policy/config.json"];
    if saved.data_path.is_some() {
        files.push("policy/model.onnx_data");
    }
    let mut config = serde_json::to_value(&cfg).map_err(|e| Error::Internal(format!("config to JSON: {e}")))?;
    let dtype_name = if opts.dtype == DType::F16 { "float16" } else { "float32" };
    if let Some(obj) = config.as_object_mut() {
        obj.insert(ONNX_DTYPE_KEY.into(), dtype_name.into());
    }
    progress("hashing files, writing promptist.json");
    bundle.add_component(POLICY_COMPONENT, POLICY_KIND, config, &files)?;
    bundle.finish()
}
