//! Checkpoint -> bundle conversion: a Hugging Face GPT-2-architecture folder (config.json, weights,
//! tokenizer files) becomes a promptist bundle with `policy/model.onnx` (+ `model.onnx_data`),
//! `policy/tokenizer.json`, `policy/config.json` and the `promptist.json` manifest. A folder that
//! holds an optimum ONNX export of GPT-2 with past (model.onnx, no PyTorch weights) is validated
//! and copied instead (`--dtype` does not apply then: the graph keeps its own type).

use std::path::Path;

use super::gpt2::{build_gpt2, AttentionImpl, Gpt2ExportOptions};
use super::gpt2_config::Gpt2Config;
use super::onnx::{save_model, DType, SaveOptions};
use super::optimum_import::{find_optimum_onnx, inspect_optimum_gpt2};
use crate::bundle::writer::BundleWriter;
use crate::bundle::{Manifest, Provenance};
use crate::text::gpt2::Gpt2Tokenizer;
use crate::weights::load_checkpoint_weights;
use crate::{Error, Result};

/// The policy component's name and kind in the manifest (defined by the bundle reader).
pub use crate::bundle::policy::{POLICY as POLICY_COMPONENT, POLICY_KIND};
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
    /// Attention ops of the graph (standard ONNX ops by default).
    pub attention: AttentionImpl,
}

impl Default for ConvertOptions {
    fn default() -> Self {
        Self {
            dtype: DType::F32,
            name: None,
            external_threshold_bytes: SaveOptions::default().external_threshold_bytes,
            attention: AttentionImpl::Standard,
        }
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
pub fn convert_checkpoint(
    checkpoint: &Path,
    out: &Path,
    opts: &ConvertOptions,
    progress: &mut dyn FnMut(&str),
) -> Result<Manifest> {
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
    let onnx_in = find_optimum_onnx(checkpoint);
    let has_weights = ["model.safetensors", "model.safetensors.index.json", "pytorch_model.bin"]
        .iter()
        .any(|f| checkpoint.join(f).is_file());
    // An optimum export (ONNX, no PyTorch weights) is validated and copied; otherwise build the graph.
    let source_graph = match (&onnx_in, has_weights) {
        (Some(p), false) => {
            let g = inspect_optimum_gpt2(p, &cfg)?;
            progress(&format!("importing the ONNX export {} (KV cache {:?})", p.display(), g.kv_dtype));
            Some((p.clone(), g))
        }
        _ => None,
    };
    let model = match &source_graph {
        Some(_) => None,
        None => {
            let (weights, format) = load_checkpoint_weights(checkpoint)?;
            progress(&format!("weights: {} tensors from {}", weights.len(), format.path().display()));
            Some(build_gpt2(&cfg, &weights, &Gpt2ExportOptions { dtype: opts.dtype, attention: opts.attention })?)
        }
    };
    let name = opts.name.clone().unwrap_or_else(|| {
        checkpoint
            .canonicalize()
            .ok()
            .and_then(|p| p.file_name().map(|f| f.to_string_lossy().into_owned()))
            .unwrap_or_else(|| "promptist".into())
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
    let mut files = vec!["policy/model.onnx".to_string(), "policy/tokenizer.json".into(), "policy/config.json".into()];
    let dtype = match (&model, &source_graph) {
        (Some(model), _) => {
            progress("writing policy/model.onnx");
            let save = SaveOptions { external_threshold_bytes: opts.external_threshold_bytes };
            let saved = save_model(model, &dir.join("model.onnx"), &save)?;
            if saved.data_path.is_some() {
                files.push("policy/model.onnx_data".into());
            }
            opts.dtype
        }
        (None, Some((src, g))) => {
            let copy = |from: &Path, to: &str| {
                std::fs::copy(from, dir.join(to)).map_err(|e| Error::io(format!("copying {}", from.display()), e))
            };
            copy(src, "model.onnx")?;
            for f in &g.external_files {
                copy(&checkpoint.join(f), f)?;
                files.push(format!("policy/{f}"));
            }
            g.kv_dtype
        }
        (None, None) => return Err(Error::Internal("no graph to write".into())),
    };
    drop(model);
    let write = |file: &str, text: &str| {
        std::fs::write(dir.join(file), text).map_err(|e| Error::io(format!("writing {}", dir.join(file).display()), e))
    };
    write("tokenizer.json", &tokenizer.to_json()?)?;
    write("config.json", &(cfg.to_json_pretty()? + "\n"))?;

    let mut config = serde_json::to_value(&cfg).map_err(|e| Error::Internal(format!("config to JSON: {e}")))?;
    let dtype_name = if dtype == DType::F16 { "float16" } else { "float32" };
    if let Some(obj) = config.as_object_mut() {
        obj.insert(ONNX_DTYPE_KEY.into(), dtype_name.into());
    }
    progress("hashing files, writing promptist.json");
    let files: Vec<&str> = files.iter().map(|s| s.as_str()).collect();
    bundle.add_component(POLICY_COMPONENT, POLICY_KIND, config, &files)?;
    bundle.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::tiny::{write_random_checkpoint, LmHead};

    fn checkpoint(dir: &Path) -> std::path::PathBuf {
        let ck = dir.join("ck");
        let mut cfg = Gpt2Config::tiny();
        cfg.n_layer = 1;
        cfg.n_positions = Some(8);
        write_random_checkpoint(&ck, &cfg, 1, LmHead::Tied).unwrap();
        ck
    }

    #[test]
    fn converts_and_carries_random_flag() {
        let dir = tempfile::tempdir().unwrap();
        let ck = checkpoint(dir.path());
        let mut lines = Vec::new();
        let m = convert_checkpoint(&ck, &dir.path().join("b"), &ConvertOptions::default(), &mut |s| {
            lines.push(s.to_string())
        })
        .unwrap();
        assert!(m.provenance.random_weights);
        assert!(m.provenance.source.starts_with("random seed 1"));
        let pol = &m.components[POLICY_COMPONENT];
        assert_eq!(pol.kind, POLICY_KIND);
        assert_eq!(pol.config[ONNX_DTYPE_KEY], "float32");
        assert_eq!(pol.files.len(), 4);
        assert!(!lines.is_empty());
        // the bundle reader accepts what the writer wrote
        crate::bundle::Bundle::open(&dir.path().join("b"), crate::bundle::Checksums::Verify).unwrap();
    }

    #[test]
    fn missing_pieces_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let ck = checkpoint(dir.path());
        let out = dir.path().join("b");
        let mut quiet = |_: &str| {};
        std::fs::remove_file(ck.join("model.safetensors")).unwrap();
        let e = convert_checkpoint(&ck, &out, &ConvertOptions::default(), &mut quiet).unwrap_err();
        assert_eq!(e.code(), crate::Code::ModelFormat);
        assert!(e.to_string().contains("no weights found"), "{e}");
        std::fs::remove_file(ck.join("tokenizer.json")).unwrap();
        let e = convert_checkpoint(&ck, &out, &ConvertOptions::default(), &mut quiet).unwrap_err();
        assert!(e.to_string().contains("tokenizer"), "{e}");
        std::fs::remove_file(ck.join("config.json")).unwrap();
        let e = convert_checkpoint(&ck, &out, &ConvertOptions::default(), &mut quiet).unwrap_err();
        assert!(e.to_string().contains("config.json"), "{e}");
        let e = convert_checkpoint(&dir.path().join("nope"), &out, &ConvertOptions::default(), &mut quiet).unwrap_err();
        assert!(e.to_string().contains("does not exist"), "{e}");
    }
}
