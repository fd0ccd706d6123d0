//! Checkpoint -> bundle conversion: a Hugging Face GPT-2-architecture folder (config.json, weights,
//! tokenizer files) becomes a promptist bundle with `policy/model.onnx` (+ `model.onnx_data`),
//! `policy/tokenizer.json`, `policy/config.json` and the `promptist.json` manifest. A folder that
//! holds an optimum ONNX export of GPT-2 with past (model.onnx, no PyTorch weights) is validated
//! and copied instead (`--dtype` does not apply then: the graph keeps its own type).

use std::path::Path;

use super::gpt2::{build_gpt2, AttentionImpl, Gpt2ExportOptions};
use super::gpt2_config::Gpt2Config;
use super::onnx::{DType, SaveOptions};
use super::optimum_import::{find_optimum_onnx, inspect_optimum_gpt2};
use crate::bundle::policy::{write_policy, PolicyGraph};
use crate::bundle::writer::BundleWriter;
use crate::bundle::{Manifest, Provenance};
use crate::text::gpt2::Gpt2Tokenizer;
use crate::weights::load_checkpoint_weights;
use crate::{Error, Result};

pub use crate::bundle::policy::ONNX_DTYPE_KEY;

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
    /// A folder with the tokenizer files (`tokenizer.json`, or `vocab.json` + `merges.txt`);
    /// overrides the checkpoint's own (see [`resolve_tokenizer`]).
    pub tokenizer: Option<std::path::PathBuf>,
}

impl Default for ConvertOptions {
    fn default() -> Self {
        Self {
            dtype: DType::F32,
            name: None,
            external_threshold_bytes: SaveOptions::default().external_threshold_bytes,
            attention: AttentionImpl::Standard,
            tokenizer: None,
        }
    }
}

/// The tokenizer files of a folder: `tokenizer.json`, else `vocab.json` + `merges.txt`; `None`
/// when it has neither.
fn folder_tokenizer(dir: &Path) -> Result<Option<Gpt2Tokenizer>> {
    let tj = dir.join("tokenizer.json");
    if tj.is_file() {
        return Gpt2Tokenizer::from_tokenizer_json(&tj).map(Some);
    }
    let (vocab, merges) = (dir.join("vocab.json"), dir.join("merges.txt"));
    if vocab.is_file() && merges.is_file() {
        return Gpt2Tokenizer::from_vocab_merges(&vocab, &merges).map(Some);
    }
    Ok(None)
}

/// The tokenizer of a checkpoint folder: `tokenizer.json`, else `vocab.json` + `merges.txt`.
pub fn checkpoint_tokenizer(dir: &Path) -> Result<Gpt2Tokenizer> {
    folder_tokenizer(dir)?
        .ok_or_else(|| Error::ModelFormat(format!("{}: no tokenizer.json, and no vocab.json + merges.txt", dir.display())))
}

/// The tokenizer a conversion uses, in order: the `--tokenizer` folder when given (it must hold
/// tokenizer files); the checkpoint's own files; else, when the config has GPT-2's vocabulary
/// (50257 tokens, EOS 50256), the embedded GPT-2 tokenizer, said through `progress` (the published
/// Promptist checkpoint ships only `config.json` and `pytorch_model.bin`; its demo loads GPT-2's
/// tokenizer separately). Any other vocabulary without tokenizer files is an error.
pub fn resolve_tokenizer(
    checkpoint: &Path,
    cfg: &Gpt2Config,
    given: Option<&Path>,
    progress: &mut dyn FnMut(&str),
) -> Result<Gpt2Tokenizer> {
    if let Some(dir) = given {
        return checkpoint_tokenizer(dir);
    }
    if let Some(t) = folder_tokenizer(checkpoint)? {
        return Ok(t);
    }
    if cfg.vocab_size == crate::text::gpt2::VOCAB_SIZE && cfg.eos_id() == crate::text::gpt2::EOS_ID {
        progress(&format!(
            "{} has no tokenizer files; its config has GPT-2's vocabulary ({} tokens, EOS {}), so the embedded GPT-2 tokenizer is used (--tokenizer DIR overrides)",
            checkpoint.display(),
            cfg.vocab_size,
            cfg.eos_id()
        ));
        return Gpt2Tokenizer::embedded();
    }
    Err(Error::ModelFormat(format!(
        "{}: no tokenizer.json, and no vocab.json + merges.txt; the config's vocabulary ({} tokens, EOS {}) is not GPT-2's, so the embedded GPT-2 tokenizer cannot stand in: pass --tokenizer DIR",
        checkpoint.display(),
        cfg.vocab_size,
        cfg.eos_id()
    )))
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
    let tokenizer = resolve_tokenizer(checkpoint, &cfg, opts.tokenizer.as_deref(), progress)?;
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
    let (graph, dtype) = match (&model, &source_graph) {
        (Some(model), _) => {
            progress("writing policy/model.onnx");
            let save = SaveOptions { external_threshold_bytes: opts.external_threshold_bytes };
            (PolicyGraph::Built { model, save }, opts.dtype)
        }
        (None, Some((src, g))) => (PolicyGraph::Copied { model: src, external: &g.external_files }, g.kv_dtype),
        (None, None) => return Err(Error::Internal("no graph to write".into())),
    };
    write_policy(&mut bundle, graph, dtype, &tokenizer, &cfg, serde_json::Map::new())?;
    drop(model);
    progress("hashing files, writing promptist.json");
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
        let pol = &m.components[crate::bundle::POLICY];
        assert_eq!(pol.kind, crate::bundle::POLICY_KIND);
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
        let mut cfg: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(ck.join("config.json")).unwrap()).unwrap();
        cfg["vocab_size"] = 50300.into();
        std::fs::write(ck.join("config.json"), cfg.to_string()).unwrap();
        let e = convert_checkpoint(&ck, &out, &ConvertOptions::default(), &mut quiet).unwrap_err();
        assert!(e.to_string().contains("--tokenizer DIR"), "{e}");
        let opts = ConvertOptions { tokenizer: Some(dir.path().join("none")), ..Default::default() };
        let e = convert_checkpoint(&ck, &out, &opts, &mut quiet).unwrap_err();
        assert!(e.to_string().contains("no tokenizer.json"), "{e}");
        std::fs::remove_file(ck.join("config.json")).unwrap();
        let e = convert_checkpoint(&ck, &out, &ConvertOptions::default(), &mut quiet).unwrap_err();
        assert!(e.to_string().contains("config.json"), "{e}");
        let e = convert_checkpoint(&dir.path().join("nope"), &out, &ConvertOptions::default(), &mut quiet).unwrap_err();
        assert!(e.to_string().contains("does not exist"), "{e}");
    }
}
