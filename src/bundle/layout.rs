//! Where the score components live in a bundle (docs/bundle-format.md): Stable Diffusion
//! in optimum's ONNX layout (`text_encoder/`, `unet/`, `vae_decoder/`, `tokenizer/`,
//! `scheduler/scheduler_config.json`), the scorer CLIP towers in `clip/`, the aesthetic head in
//! `aesthetic/`; one manifest component per folder.

use std::path::PathBuf;

use crate::bundle::Bundle;
use crate::{Error, Result};

pub const TEXT_ENCODER: &str = "text_encoder";
pub const UNET: &str = "unet";
pub const VAE_DECODER: &str = "vae_decoder";
pub const TOKENIZER: &str = "tokenizer";
pub const SCHEDULER: &str = "scheduler";
pub const CLIP: &str = "clip";
pub const AESTHETIC: &str = "aesthetic";

/// Every component `score` needs.
pub const SCORE_COMPONENTS: [&str; 7] = [TEXT_ENCODER, UNET, VAE_DECODER, TOKENIZER, SCHEDULER, CLIP, AESTHETIC];

pub const TEXT_ENCODER_MODEL: &str = "text_encoder/model.onnx";
pub const UNET_MODEL: &str = "unet/model.onnx";
pub const VAE_DECODER_MODEL: &str = "vae_decoder/model.onnx";
pub const VAE_DECODER_CONFIG: &str = "vae_decoder/config.json";
pub const UNET_CONFIG: &str = "unet/config.json";
pub const TOKENIZER_MERGES: &str = "tokenizer/merges.txt";
pub const SCHEDULER_CONFIG: &str = "scheduler/scheduler_config.json";
pub const CLIP_TEXT_MODEL: &str = "clip/text_model.onnx";
pub const CLIP_VISION_MODEL: &str = "clip/vision_model.onnx";
pub const CLIP_MERGES: &str = "clip/merges.txt";
pub const AESTHETIC_SAFETENSORS: &str = "aesthetic/model.safetensors";
pub const AESTHETIC_PTH: &str = "aesthetic/model.pth";

/// Component kinds written to the manifest.
pub fn kind_of(component: &str) -> &'static str {
    match component {
        TEXT_ENCODER => "sd-text-encoder",
        UNET => "sd-unet",
        VAE_DECODER => "sd-vae-decoder",
        TOKENIZER => "clip-tokenizer",
        SCHEDULER => "sd-scheduler",
        CLIP => "clip-scorer",
        AESTHETIC => "laion-aesthetic-head",
        _ => "unknown",
    }
}

/// Resolved absolute paths of the score files.
#[derive(Debug, Clone)]
pub struct ScorePaths {
    pub text_encoder: PathBuf,
    pub unet: PathBuf,
    pub vae_decoder: PathBuf,
    pub vae_config: Option<PathBuf>,
    /// The UNet's diffusers config: the manifest's copy, else `unet/config.json` when listed.
    pub unet_config: Option<serde_json::Value>,
    pub tokenizer_merges: PathBuf,
    pub scheduler_config: PathBuf,
    pub clip_text: PathBuf,
    pub clip_vision: PathBuf,
    pub clip_merges: PathBuf,
    pub aesthetic: PathBuf,
}

/// Which score components the bundle has: `None` when it has none of them (score is then
/// NOT_IN_BUNDLE); BundleInvalid when it has some but not all, or a component lacks a file.
pub fn score_paths(bundle: &Bundle) -> Result<Option<ScorePaths>> {
    let present: Vec<&str> = SCORE_COMPONENTS.iter().copied().filter(|c| bundle.has_component(c)).collect();
    if present.is_empty() {
        return Ok(None);
    }
    let missing: Vec<&str> = SCORE_COMPONENTS.iter().copied().filter(|c| !bundle.has_component(c)).collect();
    if !missing.is_empty() {
        return Err(Error::BundleInvalid(format!(
            "the bundle at {} has score components ({}) but lacks {}",
            bundle.root().display(),
            present.join(", "),
            missing.join(", ")
        )));
    }
    let f = |c: &str, rel: &str| bundle.file(c, rel);
    let listed = |c: &str, rel: &str| bundle.component(c).map(|comp| comp.files.contains_key(rel)).unwrap_or(false);
    let aesthetic = if listed(AESTHETIC, AESTHETIC_SAFETENSORS) {
        f(AESTHETIC, AESTHETIC_SAFETENSORS)?
    } else {
        f(AESTHETIC, AESTHETIC_PTH)?
    };
    let unet_config = match bundle.component(UNET).ok().map(|c| &c.config) {
        Some(v) if v.is_object() => Some(v.clone()),
        _ if listed(UNET, UNET_CONFIG) => {
            let p = f(UNET, UNET_CONFIG)?;
            let text = crate::io::read_text(&p)?;
            Some(serde_json::from_str(&text).map_err(|e| Error::BundleInvalid(format!("{}: not valid JSON: {e}", p.display())))?)
        }
        _ => None,
    };
    Ok(Some(ScorePaths {
        text_encoder: f(TEXT_ENCODER, TEXT_ENCODER_MODEL)?,
        unet: f(UNET, UNET_MODEL)?,
        vae_decoder: f(VAE_DECODER, VAE_DECODER_MODEL)?,
        unet_config,
        vae_config: if listed(VAE_DECODER, VAE_DECODER_CONFIG) { Some(f(VAE_DECODER, VAE_DECODER_CONFIG)?) } else { None },
        tokenizer_merges: f(TOKENIZER, TOKENIZER_MERGES)?,
        scheduler_config: f(SCHEDULER, SCHEDULER_CONFIG)?,
        clip_text: f(CLIP, CLIP_TEXT_MODEL)?,
        clip_vision: f(CLIP, CLIP_VISION_MODEL)?,
        clip_merges: f(CLIP, CLIP_MERGES)?,
        aesthetic,
    }))
}

impl ScorePaths {
    /// The Stable Diffusion pipeline's files.
    pub fn sd_files(&self) -> crate::diffusion::pipeline::SdFiles<'_> {
        crate::diffusion::pipeline::SdFiles {
            text_encoder: &self.text_encoder,
            unet: &self.unet,
            vae_decoder: &self.vae_decoder,
            vae_config: self.vae_config.as_deref(),
            unet_config: self.unet_config.as_ref(),
            merges: &self.tokenizer_merges,
            scheduler_config: &self.scheduler_config,
        }
    }
}
