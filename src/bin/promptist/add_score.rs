//! `promptist add-score`: add the score components (SD text encoder, UNet, VAE decoder, tokenizer,
//! scheduler, scorer CLIP, aesthetic head) to an existing bundle (`promptist::export::sd_convert`).
//! `--tiny` makes the demo's tiny RANDOM image models (plus the real aesthetic head).

use std::path::PathBuf;

use promptist::export::clip_text::SdExportOptions;
use promptist::export::onnx::DType;
use promptist::export::sd_convert::{add_score_components, ClipSource, ScoreSources, SdSource};
use promptist::{Error, Result};

#[derive(clap::Args)]
pub struct Args {
    /// The bundle to extend (must have a promptist.json).
    #[arg(long)]
    bundle: PathBuf,
    /// Tiny random SD + CLIP (demo / tests; the images are meaningless).
    #[arg(long)]
    tiny: bool,
    /// Random weights of this SD preset (tiny or sd15) and CLIP preset (tiny or vit-l14), for benchmarks.
    #[arg(long, num_args = 2, value_names = ["SD_PRESET", "CLIP_PRESET"])]
    random: Option<Vec<String>>,
    /// A diffusers Stable Diffusion folder (text_encoder/, unet/, vae/, scheduler/).
    #[arg(long)]
    diffusers: Option<PathBuf>,
    /// An optimum ONNX export of SD 1.x (text_encoder/, unet/, vae_decoder/, tokenizer/, scheduler/), copied unchanged.
    #[arg(long)]
    optimum: Option<PathBuf>,
    /// Scorer CLIP weights: transformers CLIPModel (model.safetensors / pytorch_model.bin next to config.json) or open_clip.
    #[arg(long)]
    clip: Option<PathBuf>,
    /// config.json of the scorer CLIP (default: next to --clip).
    #[arg(long)]
    clip_config: Option<PathBuf>,
    /// The aesthetic head (.pth or .safetensors). Default: the real LAION head embedded in the
    /// library (sac+logos+ava1-l14-linearMSE.pth).
    #[arg(long)]
    aesthetic: Option<PathBuf>,
    /// CLIP's bpe_simple_vocab_16e6.txt.gz. Default: the copy embedded in the library.
    #[arg(long)]
    clip_bpe: Option<PathBuf>,
    /// Seed of random weights.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Graph dtype: fp32 or fp16.
    #[arg(long, value_parser = ["fp32", "fp16"], default_value = "fp32")]
    dtype: String,
    /// Unmasked attention as ONNX Runtime's fused com.microsoft.MultiHeadAttention.
    #[arg(long)]
    fused_attention: bool,
    /// Size of random weights: small (uniform std 0.02) or torch (torch's default Linear/Conv
    /// init, 1/sqrt(fan_in): prompts change the images, as training tests need).
    #[arg(long, default_value = "small")]
    init: String,
}

pub fn run(a: Args) -> Result<()> {
    let (sd, clip_preset) = match (a.tiny, &a.random, &a.diffusers, &a.optimum) {
        (true, None, None, None) => (SdSource::Random { seed: a.seed, preset: "tiny".into() }, "tiny".to_string()),
        (false, Some(r), None, None) => (SdSource::Random { seed: a.seed, preset: r[0].clone() }, r[1].clone()),
        (false, None, Some(d), None) => (SdSource::Diffusers(d.clone()), String::new()),
        (false, None, None, Some(o)) => (SdSource::Optimum(o.clone()), String::new()),
        _ => return Err(Error::InvalidOptions("give exactly one of --tiny, --random, --diffusers, --optimum".into())),
    };
    let clip = match (&a.clip, clip_preset.is_empty()) {
        (Some(w), _) => ClipSource::Checkpoint { weights: w.clone(), config: a.clip_config.clone() },
        (None, false) => ClipSource::Random { seed: a.seed.wrapping_add(1), preset: clip_preset },
        (None, true) => return Err(Error::InvalidOptions("--clip is required with --diffusers / --optimum".into())),
    };
    let export = SdExportOptions { dtype: if a.dtype == "fp16" { DType::F16 } else { DType::F32 }, fused_attention: a.fused_attention };
    let random_init = promptist::export::nn::RandomInit::parse(&a.init)?;
    let src = ScoreSources { sd, clip, aesthetic: a.aesthetic, clip_bpe: a.clip_bpe, export, random_init };
    let random = matches!(src.sd, SdSource::Random { .. }) || matches!(src.clip, ClipSource::Random { .. });
    let names = add_score_components(&a.bundle, &src)?;
    eprintln!("add-score: wrote {} into {}", names.join(", "), a.bundle.display());
    if random {
        eprintln!("add-score: NOTE the image models (SD and/or CLIP) have RANDOM weights: images and rewards are meaningless (the aesthetic head is the real one)");
    }
    Ok(())
}
