//! A diffusers Stable Diffusion 1.x/2.x pipeline folder (`model_index.json` layout:
//! `text_encoder/`, `unet/`, `vae/`, `tokenizer/`, `scheduler/`, each with its `config.json` and
//! weights) exported to optimum's ONNX layout: `text_encoder/model.onnx`, `unet/model.onnx`,
//! `vae_decoder/model.onnx` (+ `model.onnx_data`, + the component's `config.json`), with
//! `tokenizer/` and `scheduler/` copied. The graphs have optimum's input/output names, so the
//! result and an optimum export load through the same code.

use std::path::{Path, PathBuf};

use super::clip_text::{build_clip_text_encoder, SdExportOptions};
use super::onnx::{save_model, Model, SaveOptions};
use super::sd_config::{read_config, ClipTextConfig, UNetConfig, VaeConfig};
use super::unet::build_unet;
use super::vae::build_vae_decoder;
use crate::weights::WeightMap;
use crate::{Error, Result};

/// Component folders of the optimum layout.
pub const TEXT_ENCODER_DIR: &str = "text_encoder";
pub const UNET_DIR: &str = "unet";
pub const VAE_DECODER_DIR: &str = "vae_decoder";
pub const TOKENIZER_DIR: &str = "tokenizer";
pub const SCHEDULER_DIR: &str = "scheduler";
/// Model file name inside each component folder.
pub const MODEL_FILE: &str = "model.onnx";

/// The expected graph I/O of each ONNX component folder of the optimum layout (and of the
/// scorer's `clip/` and `aesthetic/` graphs): (folder / file, input names, output names), for the
/// runtime's load-time checks.
pub const SD_GRAPH_IO: &[(&str, &[&str], &[&str])] = &[
    ("text_encoder/model.onnx", super::clip_text::TEXT_ENCODER_INPUTS, super::clip_text::TEXT_ENCODER_OUTPUTS),
    ("unet/model.onnx", super::unet::UNET_INPUTS, super::unet::UNET_OUTPUTS),
    ("vae_decoder/model.onnx", super::vae::VAE_DECODER_INPUTS, super::vae::VAE_DECODER_OUTPUTS),
];

pub use crate::weights::read_weights_file;

/// The weights of one component folder: the first of `stems` x (`.safetensors`, `.fp16.safetensors`,
/// `.bin`) that exists.
pub fn component_weights(dir: &Path, stems: &[&str]) -> Result<WeightMap> {
    for stem in stems {
        for ext in [".safetensors", ".fp16.safetensors", ".bin"] {
            let p = dir.join(format!("{stem}{ext}"));
            if p.is_file() {
                return read_weights_file(&p);
            }
        }
    }
    Err(Error::ModelFormat(format!("{}: no weights found (looked for {} .safetensors / .bin)", dir.display(), stems.join(", "))))
}

/// What [`export_sd_pipeline`] wrote: every file, relative to the output folder.
#[derive(Debug, Clone, Default)]
pub struct SdPipelineFiles {
    pub files: Vec<PathBuf>,
}

fn save_component(model: &Model, out: &Path, sub: &str, config_src: &Path, files: &mut SdPipelineFiles) -> Result<()> {
    let dir = out.join(sub);
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
    let saved = save_model(model, &dir.join(MODEL_FILE), &SaveOptions::default())?;
    files.files.push(PathBuf::from(sub).join(MODEL_FILE));
    if let Some(d) = saved.data_path {
        let name = d.file_name().map(PathBuf::from).unwrap_or_default();
        files.files.push(PathBuf::from(sub).join(name));
    }
    let cfg = dir.join("config.json");
    std::fs::copy(config_src, &cfg).map_err(|e| Error::io(format!("copying {}", config_src.display()), e))?;
    files.files.push(PathBuf::from(sub).join("config.json"));
    Ok(())
}

fn copy_dir(src: &Path, dst: &Path, rel: &Path, files: &mut SdPipelineFiles) -> Result<()> {
    std::fs::create_dir_all(dst).map_err(|e| Error::io(format!("creating {}", dst.display()), e))?;
    let entries = std::fs::read_dir(src).map_err(|e| Error::io(format!("reading {}", src.display()), e))?;
    let mut names: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.is_file()).collect();
    names.sort();
    for p in names {
        let Some(name) = p.file_name() else { continue };
        std::fs::copy(&p, dst.join(name)).map_err(|e| Error::io(format!("copying {}", p.display()), e))?;
        files.files.push(rel.join(name));
    }
    Ok(())
}

/// Which built-in SD configs [`export_sd_random`] uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SdPreset {
    /// Tiny text encoder (real CLIP vocabulary), UNet and VAE: demo bundles and tests.
    Tiny,
    /// SD 1.5 sizes (UNet 860M parameters): benchmarks and shape checks.
    Sd15,
}

fn write_json<T: serde::Serialize>(value: &T, path: &Path) -> Result<()> {
    let text = serde_json::to_string_pretty(value).map_err(|e| Error::Internal(format!("serializing {}: {e}", path.display())))?;
    std::fs::write(path, text).map_err(|e| Error::io(format!("writing {}", path.display()), e))
}

/// Write text_encoder/, unet/ and vae_decoder/ (each `model.onnx` + `config.json` in the reference
/// library's format) from seeded random weights ([`super::nn::RandomWeights`]); the tokenizer and
/// scheduler folders are the caller's. The graphs are the same as from a checkpoint.
pub fn export_sd_random(out: &Path, preset: SdPreset, seed: u64, opts: &SdExportOptions) -> Result<SdPipelineFiles> {
    let w = super::nn::RandomWeights::new(seed);
    let (te, un, vae) = match preset {
        SdPreset::Tiny => (ClipTextConfig::tiny(), UNetConfig::tiny(), VaeConfig::tiny()),
        SdPreset::Sd15 => (ClipTextConfig::sd15(), UNetConfig::sd15(), VaeConfig::sd15()),
    };
    let mut files = SdPipelineFiles::default();
    let tmp = out.join(".configs");
    std::fs::create_dir_all(&tmp).map_err(|e| Error::io(format!("creating {}", tmp.display()), e))?;
    let cfg_path = tmp.join("config.json");
    write_json(&te, &cfg_path)?;
    save_component(&build_clip_text_encoder(&te, &w, opts)?, out, TEXT_ENCODER_DIR, &cfg_path, &mut files)?;
    write_json(&un, &cfg_path)?;
    save_component(&build_unet(&un, &w, opts)?, out, UNET_DIR, &cfg_path, &mut files)?;
    write_json(&vae, &cfg_path)?;
    save_component(&build_vae_decoder(&vae, &w, opts)?, out, VAE_DECODER_DIR, &cfg_path, &mut files)?;
    std::fs::remove_dir_all(&tmp).map_err(|e| Error::io(format!("removing {}", tmp.display()), e))?;
    Ok(files)
}

/// Export the diffusers pipeline folder `src` to the optimum ONNX layout in `out`. Components are
/// built one at a time so only one component's weights are in memory at once.
pub fn export_sd_pipeline(src: &Path, out: &Path, opts: &SdExportOptions) -> Result<SdPipelineFiles> {
    let mut files = SdPipelineFiles::default();
    {
        let dir = src.join("text_encoder");
        let cfg_path = dir.join("config.json");
        let cfg: ClipTextConfig = read_config(&cfg_path)?;
        let w = component_weights(&dir, &["model", "pytorch_model"])?;
        let model = build_clip_text_encoder(&cfg, &w, opts)?;
        drop(w);
        save_component(&model, out, TEXT_ENCODER_DIR, &cfg_path, &mut files)?;
    }
    {
        let dir = src.join("unet");
        let cfg_path = dir.join("config.json");
        let cfg: UNetConfig = read_config(&cfg_path)?;
        let w = component_weights(&dir, &["diffusion_pytorch_model"])?;
        let model = build_unet(&cfg, &w, opts)?;
        drop(w);
        save_component(&model, out, UNET_DIR, &cfg_path, &mut files)?;
    }
    {
        let dir = src.join("vae");
        let cfg_path = dir.join("config.json");
        let cfg: VaeConfig = read_config(&cfg_path)?;
        let w = component_weights(&dir, &["diffusion_pytorch_model"])?;
        let model = build_vae_decoder(&cfg, &w, opts)?;
        drop(w);
        save_component(&model, out, VAE_DECODER_DIR, &cfg_path, &mut files)?;
    }
    for sub in [TOKENIZER_DIR, SCHEDULER_DIR] {
        let s = src.join(sub);
        if s.is_dir() {
            copy_dir(&s, &out.join(sub), Path::new(sub), &mut files)?;
        }
    }
    let index = src.join("model_index.json");
    if index.is_file() {
        std::fs::copy(&index, out.join("model_index.json")).map_err(|e| Error::io(format!("copying {}", index.display()), e))?;
        files.files.push(PathBuf::from("model_index.json"));
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use crate::weights::Tensor;
    use super::super::aesthetic::{AESTHETIC_INPUTS, AESTHETIC_OUTPUTS};
    use super::super::clip_text::{build_clip_text_projection, CLIP_TEXT_INPUTS, CLIP_TEXT_OUTPUTS};
    use super::super::clip_vision::{build_clip_vision_projection, CLIP_VISION_INPUTS, CLIP_VISION_OUTPUTS};
    use super::super::nn::RandomWeights;
    use super::super::onnx::{to_bytes_inline, DType};
    use super::super::sd_config::ClipConfig;
    use super::*;

    fn io(m: &Model) -> (Vec<String>, Vec<String>) {
        (m.graph.input.iter().map(|v| v.name.clone()).collect(), m.graph.output.iter().map(|v| v.name.clone()).collect())
    }

    #[test]
    fn tiny_graphs_have_the_declared_io_names_in_both_dtypes() {
        let w = RandomWeights::new(1);
        for dtype in [DType::F32, DType::F16] {
            let opts = SdExportOptions { dtype, fused_attention: dtype == DType::F16 };
            let models = [
                build_clip_text_encoder(&ClipTextConfig::tiny(), &w, &opts).unwrap(),
                build_unet(&UNetConfig::tiny(), &w, &opts).unwrap(),
                build_vae_decoder(&VaeConfig::tiny(), &w, &opts).unwrap(),
            ];
            for (m, (_, ins, outs)) in models.iter().zip(SD_GRAPH_IO) {
                let (i, o) = io(m);
                assert_eq!((i.iter().map(String::as_str).collect::<Vec<_>>(), o.iter().map(String::as_str).collect::<Vec<_>>()), (ins.to_vec(), outs.to_vec()));
                assert!(!to_bytes_inline(m).unwrap().is_empty());
            }
            let c = ClipConfig::tiny();
            let t = build_clip_text_projection(&c.text_config, c.projection_dim, &w, &opts).unwrap();
            let v = build_clip_vision_projection(&c.vision_config, c.projection_dim, &w, &opts).unwrap();
            assert_eq!(io(&t), (vec![CLIP_TEXT_INPUTS[0].to_string()], vec![CLIP_TEXT_OUTPUTS[0].to_string()]));
            assert_eq!(io(&v), (vec![CLIP_VISION_INPUTS[0].to_string()], vec![CLIP_VISION_OUTPUTS[0].to_string()]));
        }
        assert_eq!((AESTHETIC_INPUTS, AESTHETIC_OUTPUTS), (&["image_embeds"][..], &["score"][..]));
    }

    #[test]
    fn a_wrong_weight_shape_names_the_key() {
        let mut w = WeightMap::new();
        w.insert("post_quant_conv.weight", Tensor::new(vec![4, 4, 3, 3], vec![0.0; 144]).unwrap());
        let e = build_vae_decoder(&VaeConfig::tiny(), &w, &SdExportOptions::default()).unwrap_err();
        assert_eq!(e.code(), crate::Code::ModelFormat);
        assert!(e.to_string().contains("post_quant_conv.weight") && e.to_string().contains("[4, 4, 1, 1]"), "{e}");
        let e = build_unet(&UNetConfig::tiny(), &WeightMap::new(), &SdExportOptions::default()).unwrap_err();
        assert!(e.to_string().contains("is missing"), "{e}");
    }

    #[test]
    fn missing_component_weights_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let e = component_weights(dir.path(), &["diffusion_pytorch_model"]).unwrap_err();
        assert!(e.to_string().contains("no weights found"), "{e}");
    }
}
