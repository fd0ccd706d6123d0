//! The scorer's graphs written to bundle folders: `clip/text_model.onnx` + `clip/vision_model.onnx`
//! (+ `clip/config.json`, a transformers `CLIPConfig`) from transformers `CLIPModel` or open_clip
//! weights, and `aesthetic/model.onnx` from the aesthetic head's weights (the file names follow
//! optimum's split CLIP export: `text_model.onnx`, `vision_model.onnx`).

use std::path::{Path, PathBuf};

use super::aesthetic::{build_aesthetic_folded, build_aesthetic_unfolded, AESTHETIC_INPUTS, AESTHETIC_OUTPUTS};
use super::clip_open::{infer_open_clip_config, is_open_clip, open_clip_to_hf};
use super::clip_text::{build_clip_text_projection, SdExportOptions, CLIP_TEXT_INPUTS, CLIP_TEXT_OUTPUTS};
use super::clip_vision::{build_clip_vision_projection, CLIP_VISION_INPUTS, CLIP_VISION_OUTPUTS};
use super::nn::WeightSource;
use super::onnx::{save_model, Model, SaveOptions};
use super::sd_config::ClipConfig;
use crate::weights::WeightMap;
use crate::{Error, Result};

pub const CLIP_DIR: &str = "clip";
pub const CLIP_TEXT_FILE: &str = "clip/text_model.onnx";
pub const CLIP_VISION_FILE: &str = "clip/vision_model.onnx";
pub const CLIP_CONFIG_FILE: &str = "clip/config.json";
pub const AESTHETIC_DIR: &str = "aesthetic";
pub const AESTHETIC_FILE: &str = "aesthetic/model.onnx";

/// Expected graph I/O of the scorer's files (path in the bundle, inputs, outputs).
pub const SCORER_GRAPH_IO: &[(&str, &[&str], &[&str])] = &[
    (CLIP_TEXT_FILE, CLIP_TEXT_INPUTS, CLIP_TEXT_OUTPUTS),
    (CLIP_VISION_FILE, CLIP_VISION_INPUTS, CLIP_VISION_OUTPUTS),
    (AESTHETIC_FILE, AESTHETIC_INPUTS, AESTHETIC_OUTPUTS),
];

fn save(model: &Model, out: &Path, rel: &str, files: &mut Vec<PathBuf>) -> Result<()> {
    let path = out.join(rel);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
    }
    let saved = save_model(model, &path, &SaveOptions::default())?;
    files.push(PathBuf::from(rel));
    if let Some(d) = saved.data_path {
        let parent = Path::new(rel).parent().unwrap_or(Path::new(""));
        files.push(parent.join(d.file_name().unwrap_or_default()));
    }
    Ok(())
}

/// Export both CLIP towers with projection from transformers `CLIPModel` keys (map open_clip
/// checkpoints first with [`prepare_clip_weights`]) and write `cfg` as `clip/config.json`.
/// Returns the files written, relative to `out`.
pub fn export_clip_scorer(w: &dyn WeightSource, cfg: &ClipConfig, out: &Path, opts: &SdExportOptions) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let text = build_clip_text_projection(&cfg.text_config, cfg.projection_dim, w, opts)?;
    save(&text, out, CLIP_TEXT_FILE, &mut files)?;
    drop(text);
    let vision = build_clip_vision_projection(&cfg.vision_config, cfg.projection_dim, w, opts)?;
    save(&vision, out, CLIP_VISION_FILE, &mut files)?;
    let json = serde_json::to_string_pretty(cfg).map_err(|e| Error::Internal(format!("serializing CLIP config: {e}")))?;
    let cpath = out.join(CLIP_CONFIG_FILE);
    std::fs::write(&cpath, json).map_err(|e| Error::io(format!("writing {}", cpath.display()), e))?;
    files.push(PathBuf::from(CLIP_CONFIG_FILE));
    Ok(files)
}

/// Weights and config for [`export_clip_scorer`]: open_clip state dicts are mapped onto
/// transformers keys, and without `cfg` their config is inferred (QuickGELU, 64-wide heads:
/// OpenAI ViT-L/14); transformers checkpoints need `cfg`.
pub fn prepare_clip_weights(weights: WeightMap, cfg: Option<ClipConfig>) -> Result<(WeightMap, ClipConfig)> {
    if is_open_clip(&weights) {
        let cfg = match cfg {
            Some(c) => c,
            None => infer_open_clip_config(&weights, true, 64)?,
        };
        Ok((open_clip_to_hf(&weights)?, cfg))
    } else {
        let cfg = cfg.ok_or_else(|| Error::InvalidOptions("a transformers CLIPModel checkpoint needs its config.json".into()))?;
        Ok((weights, cfg))
    }
}

/// Export the aesthetic head (folded to one affine map, or every layer kept) to `aesthetic/model.onnx`.
pub fn export_aesthetic(weights: &WeightMap, out: &Path, folded: bool) -> Result<Vec<PathBuf>> {
    let model = if folded { build_aesthetic_folded(weights)? } else { build_aesthetic_unfolded(weights)? };
    let mut files = Vec::new();
    save(&model, out, AESTHETIC_FILE, &mut files)?;
    Ok(files)
}
