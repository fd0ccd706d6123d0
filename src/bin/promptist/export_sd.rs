//! `promptist export-sd` (hidden dev command): build one Stable Diffusion / CLIP / aesthetic ONNX
//! graph from a checkpoint (safetensors) or from seeded random weights, for parity tests and
//! real-size shape checks. The builders live in `promptist::export`.

use std::path::PathBuf;

use promptist::export::aesthetic::{build_aesthetic_folded, build_aesthetic_unfolded, load_aesthetic_weights};
use promptist::export::clip_open::{infer_open_clip_config, is_open_clip, open_clip_to_hf};
use promptist::export::clip_text::{build_clip_text_encoder, build_clip_text_projection, SdExportOptions};
use promptist::export::clip_vision::build_clip_vision_projection;
use promptist::export::nn::{RandomWeights, WeightSource};
use promptist::export::onnx::{save_model, DType, SaveOptions};
use promptist::export::scorer_export::{export_aesthetic, export_clip_scorer, prepare_clip_weights};
use promptist::export::sd_pipeline::{export_sd_pipeline, export_sd_random, SdPreset};
use promptist::export::sd_config::{read_config, ClipConfig, ClipTextConfig, UNetConfig, VaeConfig};
use promptist::export::unet::build_unet;
use promptist::export::vae::build_vae_decoder;
use promptist::weights::{read_safetensors, WeightMap};
use promptist::{Error, Result};

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum Graph {
    /// SD text encoder (CLIPTextModel): input_ids -> last_hidden_state, pooler_output.
    TextEncoder,
    /// UNet2DConditionModel: sample, timestep, encoder_hidden_states -> out_sample.
    Unet,
    /// AutoencoderKL decoder: latent_sample -> sample.
    VaeDecoder,
    /// Scorer CLIP text tower with projection: input_ids -> text_embeds.
    ClipText,
    /// Scorer CLIP vision tower with projection: pixel_values -> image_embeds.
    ClipVision,
    /// Aesthetic head, every Linear kept: image_embeds -> score.
    Aesthetic,
    /// Aesthetic head folded to one affine map.
    AestheticFolded,
    /// The scorer's graphs into the folder --out: clip/{text,vision}_model.onnx (+ config.json) from
    /// --weights (CLIPModel or open_clip) or --random-seed, and aesthetic/model.onnx from --aesthetic.
    Scorer,
    /// A whole diffusers SD pipeline folder (--diffusers), or seeded random weights (--random-seed,
    /// --preset tiny|sd15), to optimum's layout in the folder --out.
    Pipeline,
}

#[derive(clap::Args)]
pub struct Args {
    /// Which graph to build.
    #[arg(value_enum)]
    graph: Graph,
    /// Weights (.safetensors, or a torch.save .pth/.bin state dict). Omit with --random-seed.
    #[arg(long)]
    weights: Option<PathBuf>,
    /// Seeded random weights instead of a checkpoint (real-size shape checks, benchmarks).
    #[arg(long)]
    random_seed: Option<u64>,
    /// The reference config.json (diffusers UNet/VAE, transformers CLIPTextConfig or CLIPConfig).
    #[arg(long)]
    config: Option<PathBuf>,
    /// A built-in config instead: tiny, sd15 (UNet/VAE/text encoder) or vit-l14 (scorer CLIP).
    #[arg(long)]
    preset: Option<String>,
    /// Weight/activation type: fp32 or fp16.
    #[arg(long, default_value = "fp32")]
    dtype: String,
    /// open_clip checkpoints without --config: attention head width used to infer head counts.
    #[arg(long, default_value_t = 64)]
    head_width: usize,
    /// open_clip checkpoints without --config: exact GELU instead of QuickGELU (non-OpenAI models).
    #[arg(long)]
    gelu: bool,
    /// Unmasked attention as ONNX Runtime's fused com.microsoft.MultiHeadAttention.
    #[arg(long)]
    fused_attention: bool,
    /// The diffusers pipeline folder (text_encoder/, unet/, vae/, tokenizer/, scheduler/) for `pipeline`.
    #[arg(long)]
    diffusers: Option<PathBuf>,
    /// The aesthetic head's weights (.pth or .safetensors) for `scorer`.
    #[arg(long)]
    aesthetic: Option<PathBuf>,
    /// `scorer`: keep every Linear layer of the aesthetic head instead of folding it.
    #[arg(long)]
    unfolded: bool,
    /// Output model path (model.onnx; weights of 1 KiB or more go to model.onnx_data beside it).
    #[arg(long)]
    out: PathBuf,
}

fn load_weights(a: &Args) -> Result<Option<WeightMap>> {
    match (&a.weights, a.random_seed) {
        (Some(p), None) if p.extension().is_some_and(|e| e == "safetensors") => Ok(Some(read_safetensors(p)?)),
        // torch.save checkpoints (.pth / .bin / .pt), e.g. the released aesthetic head
        (Some(p), None) => Ok(Some(load_aesthetic_weights(p)?)),
        (None, Some(_)) => Ok(None),
        _ => Err(Error::InvalidOptions("give exactly one of --weights or --random-seed".into())),
    }
}

type Preset<T> = (&'static str, fn() -> T);

fn config<T: serde::de::DeserializeOwned>(a: &Args, presets: &[Preset<T>]) -> Result<T> {
    match (&a.config, &a.preset) {
        (Some(p), None) => read_config(p),
        (None, Some(name)) => presets
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, f)| f())
            .ok_or_else(|| Error::InvalidOptions(format!("unknown preset {name:?} for this graph"))),
        _ => Err(Error::InvalidOptions("give exactly one of --config or --preset".into())),
    }
}

pub fn run(a: Args) -> Result<()> {
    let dtype = match a.dtype.as_str() {
        "fp32" => DType::F32,
        "fp16" => DType::F16,
        other => return Err(Error::InvalidOptions(format!("--dtype must be fp32 or fp16, got {other:?}"))),
    };
    let opts = SdExportOptions { dtype, fused_attention: a.fused_attention };
    if matches!(a.graph, Graph::Pipeline) {
        let files = match (&a.diffusers, a.random_seed) {
            (Some(src), None) => export_sd_pipeline(src, &a.out, &opts)?,
            (None, Some(seed)) => {
                let preset = match a.preset.as_deref() {
                    Some("tiny") => SdPreset::Tiny,
                    Some("sd15") => SdPreset::Sd15,
                    other => return Err(Error::InvalidOptions(format!("`pipeline --random-seed` needs --preset tiny or sd15, got {other:?}"))),
                };
                export_sd_random(&a.out, preset, seed, &opts)?
            }
            _ => return Err(Error::InvalidOptions("`pipeline` needs --diffusers DIR or --random-seed N".into())),
        };
        eprintln!("wrote {} files under {}", files.files.len(), a.out.display());
        return Ok(());
    }
    let mut weights = load_weights(&a)?;
    let random = RandomWeights::new(a.random_seed.unwrap_or(0));
    let model = match a.graph {
        Graph::Aesthetic | Graph::AestheticFolded => {
            let w = weights.ok_or_else(|| Error::InvalidOptions("the aesthetic head needs --weights".into()))?;
            if matches!(a.graph, Graph::Aesthetic) {
                build_aesthetic_unfolded(&w)?
            } else {
                build_aesthetic_folded(&w)?
            }
        }
        Graph::Pipeline => return Err(Error::Internal("pipeline handled above".into())),
        Graph::Scorer => return run_scorer(&a, weights, &random, &opts),
        Graph::TextEncoder => {
            let cfg: ClipTextConfig = config(&a, &[("tiny", ClipTextConfig::tiny), ("sd15", ClipTextConfig::sd15)])?;
            build_clip_text_encoder(&cfg, source(&weights, &random), &opts)?
        }
        Graph::Unet => {
            let cfg: UNetConfig = config(&a, &[("tiny", UNetConfig::tiny), ("sd15", UNetConfig::sd15)])?;
            build_unet(&cfg, source(&weights, &random), &opts)?
        }
        Graph::VaeDecoder => {
            let cfg: VaeConfig = config(&a, &[("tiny", VaeConfig::tiny), ("sd15", VaeConfig::sd15)])?;
            build_vae_decoder(&cfg, source(&weights, &random), &opts)?
        }
        Graph::ClipText | Graph::ClipVision => {
            let open = weights.as_ref().is_some_and(is_open_clip);
            let cfg: ClipConfig = if open && a.config.is_none() && a.preset.is_none() {
                infer_open_clip_config(weights.as_ref().ok_or_else(|| Error::Internal("weights vanished".into()))?, !a.gelu, a.head_width)?
            } else {
                config(&a, &[("tiny", ClipConfig::tiny), ("vit-l14", ClipConfig::vit_l14)])?
            };
            if open {
                weights = Some(open_clip_to_hf(weights.as_ref().ok_or_else(|| Error::Internal("weights vanished".into()))?)?);
            }
            let src = source(&weights, &random);
            if matches!(a.graph, Graph::ClipText) {
                build_clip_text_projection(&cfg.text_config, cfg.projection_dim, src, &opts)?
            } else {
                build_clip_vision_projection(&cfg.vision_config, cfg.projection_dim, src, &opts)?
            }
        }
    };
    if let Some(dir) = a.out.parent() {
        if !dir.as_os_str().is_empty() {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
        }
    }
    let saved = save_model(&model, &a.out, &SaveOptions::default())?;
    eprintln!("wrote {}{}", saved.model_path.display(), saved.data_path.map(|p| format!(" + {}", p.display())).unwrap_or_default());
    Ok(())
}

fn source<'a>(w: &'a Option<WeightMap>, random: &'a RandomWeights) -> &'a dyn WeightSource {
    match w {
        Some(m) => m,
        None => random,
    }
}

fn run_scorer(a: &Args, weights: Option<WeightMap>, random: &RandomWeights, opts: &SdExportOptions) -> Result<()> {
    let given: Option<ClipConfig> = if a.config.is_some() || a.preset.is_some() {
        Some(config(a, &[("tiny", ClipConfig::tiny), ("vit-l14", ClipConfig::vit_l14)])?)
    } else {
        None
    };
    let mut files = match weights {
        Some(w) => {
            let (w, cfg) = prepare_clip_weights(w, given)?;
            export_clip_scorer(&w, &cfg, &a.out, opts)?
        }
        None => {
            let cfg = given.ok_or_else(|| Error::InvalidOptions("--random-seed needs --config or --preset".into()))?;
            export_clip_scorer(random, &cfg, &a.out, opts)?
        }
    };
    if let Some(p) = &a.aesthetic {
        files.extend(export_aesthetic(&load_aesthetic_weights(p)?, &a.out, !a.unfolded)?);
    }
    eprintln!("wrote {} files under {}", files.len(), a.out.display());
    Ok(())
}
