//! Adding the score components to a bundle (layout in `bundle::layout`): Stable Diffusion from
//! a diffusers folder (`text_encoder/`, `unet/`, `vae/` with safetensors or `.bin` weights and
//! config.json, `scheduler/`), from an optimum ONNX export (copied unchanged), or seeded random
//! weights (tiny or SD 1.5 shapes); the scorer CLIP from a transformers `CLIPModel` or open_clip
//! checkpoint, or random; the aesthetic head copied from its `.pth`/`.safetensors`. The CLIP BPE
//! merges come from CLIP's `bpe_simple_vocab_16e6.txt.gz` (as `merges.txt`, transformers' layout).

use std::path::{Path, PathBuf};

use crate::bundle::layout::*;
use crate::export::clip_open::{infer_open_clip_config, is_open_clip, open_clip_to_hf};
use crate::export::clip_text::{build_clip_text_encoder, build_clip_text_projection, SdExportOptions};
use crate::export::clip_vision::build_clip_vision_projection;
use crate::export::nn::{RandomInit, RandomWeights, WeightSource};
use crate::export::onnx::{save_model, Model, SaveOptions};
use crate::export::sd_config::{read_config, ClipConfig, ClipTextConfig, ClipVisionConfig, UNetConfig, VaeConfig};
use crate::export::unet::build_unet;
use crate::export::vae::build_vae_decoder;
use crate::text::clip::NUM_MERGES;
use crate::weights::{read_safetensors, Tensor, WeightMap};
use crate::{Error, Result};

/// Where the Stable Diffusion weights come from.
#[derive(Debug, Clone)]
pub enum SdSource {
    /// A diffusers `StableDiffusionPipeline` folder.
    Diffusers(PathBuf),
    /// An optimum ONNX export of SD 1.x (copied unchanged).
    Optimum(PathBuf),
    /// Seeded random weights: preset "tiny" or "sd15".
    Random { seed: u64, preset: String },
}

/// Where the scorer CLIP comes from.
#[derive(Debug, Clone)]
pub enum ClipSource {
    /// A transformers `CLIPModel` (model.safetensors / pytorch_model.bin + config.json) or an
    /// open_clip state dict (.safetensors / .bin); `config` overrides the folder's config.json.
    Checkpoint { weights: PathBuf, config: Option<PathBuf> },
    /// Seeded random weights: preset "tiny" or "vit-l14".
    Random { seed: u64, preset: String },
}

#[derive(Debug, Clone)]
pub struct ScoreSources {
    pub sd: SdSource,
    pub clip: ClipSource,
    /// The aesthetic head (`.pth` of the reference or `.safetensors`); `None`: the embedded real
    /// head (`reward::aesthetic::EMBEDDED_HEAD_PTH`).
    pub aesthetic: Option<PathBuf>,
    /// CLIP's `bpe_simple_vocab_16e6.txt.gz`; `None`: the embedded one (`text::clip::EMBEDDED_BPE_GZ`).
    pub clip_bpe: Option<PathBuf>,
    pub export: SdExportOptions,
    /// The size of random weights (SdSource::Random / ClipSource::Random).
    pub random_init: RandomInit,
}

impl ScoreSources {
    /// Tiny RANDOM Stable Diffusion (seed `seed`) and scorer CLIP (seed `seed + 1`) with the real
    /// embedded aesthetic head and CLIP merges: the demo's and the tests' score components.
    pub fn tiny_random(seed: u64, random_init: RandomInit) -> Self {
        ScoreSources {
            sd: SdSource::Random { seed, preset: "tiny".into() },
            clip: ClipSource::Random { seed: seed.wrapping_add(1), preset: "tiny".into() },
            aesthetic: None,
            clip_bpe: None,
            export: SdExportOptions::default(),
            random_init,
        }
    }
}

/// The tiny SD text encoder: `ClipTextConfig::tiny` with CLIP's full 49408-token vocabulary.
pub fn tiny_text_config() -> ClipTextConfig {
    ClipTextConfig { vocab_size: crate::text::clip::VOCAB_SIZE, ..ClipTextConfig::tiny() }
}

/// The tiny VAE: 4 blocks (8x upsampling, as SD) with few channels.
pub fn tiny_vae_config() -> VaeConfig {
    VaeConfig { block_out_channels: vec![16, 16, 32, 32], layers_per_block: 1, norm_num_groups: 8, sample_size: Some(64), ..VaeConfig::sd15() }
}

/// The tiny scorer CLIP: 224-pixel input (CLIP preprocessing), 768-dim projection (the aesthetic
/// head's input).
pub fn tiny_clip_config() -> ClipConfig {
    let vision = ClipVisionConfig { image_size: 224, patch_size: 32, ..ClipVisionConfig::tiny() };
    ClipConfig { text_config: tiny_text_config(), vision_config: vision, projection_dim: 768 }
}

/// The DPM-Solver++ scheduler config of docs/method.md §3 (diffusers' names).
pub fn promptist_scheduler_config() -> serde_json::Value {
    serde_json::json!({
        "_class_name": "DPMSolverMultistepScheduler",
        "num_train_timesteps": 1000,
        "beta_start": 0.00085,
        "beta_end": 0.012,
        "beta_schedule": "scaled_linear",
        "algorithm_type": "dpmsolver++",
        "solver_order": 2,
        "solver_type": "midpoint",
        "lower_order_final": true,
        "prediction_type": "epsilon",
        "timestep_spacing": "linspace",
        "steps_offset": 1
    })
}

/// CLIP's merges as transformers' `merges.txt`: `#version: 0.2` then the 48894 merges used.
pub fn merges_txt_from_bpe_gz(gz: &[u8], what: &str) -> Result<String> {
    let text = crate::text::clip::gunzip_merges(gz, what)?;
    let lines: Vec<&str> = text.split('\n').skip(1).take(NUM_MERGES).collect();
    if lines.len() != NUM_MERGES {
        return Err(Error::Tokenizer(format!("{what}: {} merges, expected {NUM_MERGES}", lines.len())));
    }
    Ok(format!("#version: 0.2\n{}\n", lines.join("\n")))
}

fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d).map_err(|e| Error::io(format!("creating {}", d.display()), e))?;
    }
    std::fs::write(path, bytes).map_err(|e| Error::io(format!("writing {}", path.display()), e))
}

fn json_bytes(v: &impl serde::Serialize) -> Result<Vec<u8>> {
    serde_json::to_vec_pretty(v).map_err(|e| Error::Internal(format!("serializing JSON: {e}")))
}

/// Save `model` at `root/rel` and return the bundle-relative files written.
fn save(model: &Model, root: &Path, rel: &str) -> Result<Vec<String>> {
    let path = root.join(rel);
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d).map_err(|e| Error::io(format!("creating {}", d.display()), e))?;
    }
    let saved = save_model(model, &path, &SaveOptions::default())?;
    let mut files = vec![rel.to_string()];
    if let Some(dp) = saved.data_path {
        let name = dp.file_name().and_then(|n| n.to_str()).ok_or_else(|| Error::Internal("external data name".into()))?;
        let dir = Path::new(rel).parent().and_then(Path::to_str).unwrap_or("");
        files.push(format!("{dir}/{name}"));
    }
    Ok(files)
}

/// Read the first existing weights file of `names` in `dir` (.safetensors, or a torch `.bin`).
fn read_weights(dir: &Path, names: &[&str]) -> Result<WeightMap> {
    for n in names {
        let p = dir.join(n);
        if p.is_file() {
            return read_weights_file(&p);
        }
    }
    Err(Error::ModelFormat(format!("{}: no weights (looked for {})", dir.display(), names.join(", "))))
}

fn read_weights_file(p: &Path) -> Result<WeightMap> {
    if p.extension().is_some_and(|e| e == "safetensors") {
        return read_safetensors(p);
    }
    let mut out = WeightMap::new();
    for (name, t) in crate::weights::torch_pickle::load(p)? {
        let data = t.to_f32()?;
        out.insert(name, Tensor::new(t.shape, data)?);
    }
    Ok(out)
}

/// Components written: name -> (files, config).
type Written = Vec<(&'static str, Vec<String>, serde_json::Value)>;

fn sd_components(src: &SdSource, root: &Path, merges: &str, opts: &SdExportOptions, init: RandomInit) -> Result<Written> {
    let mut out: Written = Vec::new();
    match src {
        SdSource::Optimum(dir) => {
            for comp in [TEXT_ENCODER, UNET, VAE_DECODER, TOKENIZER, SCHEDULER] {
                let from = dir.join(comp);
                let entries = std::fs::read_dir(&from).map_err(|e| Error::io(format!("reading {}", from.display()), e))?;
                let mut files = Vec::new();
                for e in entries {
                    let e = e.map_err(|e| Error::io(format!("reading {}", from.display()), e))?;
                    if !e.path().is_file() {
                        continue;
                    }
                    let name = e.file_name().to_string_lossy().into_owned();
                    let rel = format!("{comp}/{name}");
                    let to = root.join(&rel);
                    if let Some(d) = to.parent() {
                        std::fs::create_dir_all(d).map_err(|e| Error::io(format!("creating {}", d.display()), e))?;
                    }
                    std::fs::copy(e.path(), &to).map_err(|err| Error::io(format!("copying {}", e.path().display()), err))?;
                    files.push(rel);
                }
                out.push((comp, files, serde_json::Value::Null));
            }
            return Ok(out);
        }
        SdSource::Diffusers(dir) => {
            let tcfg: ClipTextConfig = read_config(&dir.join("text_encoder/config.json"))?;
            let tw = read_weights(&dir.join("text_encoder"), &["model.safetensors", "pytorch_model.bin"])?;
            out.push((TEXT_ENCODER, save(&build_clip_text_encoder(&tcfg, &tw, opts)?, root, TEXT_ENCODER_MODEL)?, serde_json::to_value(&tcfg).unwrap_or_default()));
            drop(tw);
            let ucfg: UNetConfig = read_config(&dir.join("unet/config.json"))?;
            let uw = read_weights(&dir.join("unet"), &["diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin"])?;
            out.push((UNET, save(&build_unet(&ucfg, &uw, opts)?, root, UNET_MODEL)?, serde_json::to_value(&ucfg).unwrap_or_default()));
            drop(uw);
            let vcfg: VaeConfig = read_config(&dir.join("vae/config.json"))?;
            let vw = read_weights(&dir.join("vae"), &["diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin"])?;
            let mut files = save(&build_vae_decoder(&vcfg, &vw, opts)?, root, VAE_DECODER_MODEL)?;
            write(&root.join(VAE_DECODER_CONFIG), &json_bytes(&vcfg)?)?;
            files.push(VAE_DECODER_CONFIG.into());
            out.push((VAE_DECODER, files, serde_json::to_value(&vcfg).unwrap_or_default()));
            let sched = dir.join("scheduler/scheduler_config.json");
            let text = std::fs::read(&sched).map_err(|e| Error::io(format!("reading {}", sched.display()), e))?;
            write(&root.join(SCHEDULER_CONFIG), &text)?;
            out.push((SCHEDULER, vec![SCHEDULER_CONFIG.into()], serde_json::Value::Null));
        }
        SdSource::Random { seed, preset } => {
            let (tcfg, ucfg, vcfg) = match preset.as_str() {
                "tiny" => (tiny_text_config(), UNetConfig::tiny(), tiny_vae_config()),
                "sd15" => (ClipTextConfig::sd15(), UNetConfig::sd15(), VaeConfig::sd15()),
                other => return Err(Error::InvalidOptions(format!("unknown SD preset {other:?} (tiny or sd15)"))),
            };
            let r = RandomWeights::with_init(*seed, init);
            let w: &dyn WeightSource = &r;
            out.push((TEXT_ENCODER, save(&build_clip_text_encoder(&tcfg, w, opts)?, root, TEXT_ENCODER_MODEL)?, serde_json::to_value(&tcfg).unwrap_or_default()));
            out.push((UNET, save(&build_unet(&ucfg, w, opts)?, root, UNET_MODEL)?, serde_json::to_value(&ucfg).unwrap_or_default()));
            let mut files = save(&build_vae_decoder(&vcfg, w, opts)?, root, VAE_DECODER_MODEL)?;
            write(&root.join(VAE_DECODER_CONFIG), &json_bytes(&vcfg)?)?;
            files.push(VAE_DECODER_CONFIG.into());
            out.push((VAE_DECODER, files, serde_json::to_value(&vcfg).unwrap_or_default()));
            write(&root.join(SCHEDULER_CONFIG), &json_bytes(&promptist_scheduler_config())?)?;
            out.push((SCHEDULER, vec![SCHEDULER_CONFIG.into()], serde_json::Value::Null));
        }
    }
    write(&root.join(TOKENIZER_MERGES), merges.as_bytes())?;
    out.push((TOKENIZER, vec![TOKENIZER_MERGES.into()], serde_json::Value::Null));
    Ok(out)
}

fn clip_components(src: &ClipSource, root: &Path, opts: &SdExportOptions, init: RandomInit) -> Result<(Vec<String>, serde_json::Value)> {
    let (cfg, weights): (ClipConfig, Option<WeightMap>) = match src {
        ClipSource::Random { preset, .. } => (
            match preset.as_str() {
                "tiny" => tiny_clip_config(),
                "vit-l14" => ClipConfig::vit_l14(),
                other => return Err(Error::InvalidOptions(format!("unknown CLIP preset {other:?} (tiny or vit-l14)"))),
            },
            None,
        ),
        ClipSource::Checkpoint { weights, config } => {
            let w = read_weights_file(weights)?;
            if is_open_clip(&w) {
                let cfg = match config {
                    Some(c) => read_config(c)?,
                    None => infer_open_clip_config(&w, true, 64)?,
                };
                (cfg, Some(open_clip_to_hf(&w)?))
            } else {
                let c = match config {
                    Some(c) => c.clone(),
                    None => weights.parent().unwrap_or(Path::new(".")).join("config.json"),
                };
                (read_config(&c)?, Some(w))
            }
        }
    };
    let random = RandomWeights::with_init(
        match src {
            ClipSource::Random { seed, .. } => *seed,
            ClipSource::Checkpoint { .. } => 0,
        },
        init,
    );
    let w: &dyn WeightSource = match &weights {
        Some(m) => m,
        None => &random,
    };
    let mut files = save(&build_clip_text_projection(&cfg.text_config, cfg.projection_dim, w, opts)?, root, CLIP_TEXT_MODEL)?;
    files.extend(save(&build_clip_vision_projection(&cfg.vision_config, cfg.projection_dim, w, opts)?, root, CLIP_VISION_MODEL)?);
    Ok((files, serde_json::to_value(&cfg).unwrap_or_default()))
}

/// Write the score components into the bundle at `root` (which must already have a manifest)
/// and register them in `promptist.json`. Returns the component names written.
pub fn add_score_components(root: &Path, src: &ScoreSources) -> Result<Vec<String>> {
    let mut bundle = crate::bundle::writer::BundleWriter::reopen(root)?;
    let merges = match &src.clip_bpe {
        Some(p) => merges_txt_from_bpe_gz(&std::fs::read(p).map_err(|e| Error::io(format!("opening {}", p.display()), e))?, &p.display().to_string())?,
        None => merges_txt_from_bpe_gz(crate::text::clip::EMBEDDED_BPE_GZ, "the embedded CLIP merges")?,
    };
    let mut written = sd_components(&src.sd, root, &merges, &src.export, src.random_init)?;
    let (clip_files, clip_cfg) = clip_components(&src.clip, root, &src.export, src.random_init)?;
    write(&root.join(CLIP_MERGES), merges.as_bytes())?;
    let mut cf = clip_files;
    cf.push(CLIP_MERGES.into());
    written.push((CLIP, cf, clip_cfg));
    let aes_rel = match &src.aesthetic {
        Some(p) if p.extension().is_some_and(|e| e == "safetensors") => AESTHETIC_SAFETENSORS,
        _ => AESTHETIC_PTH,
    };
    let to = root.join(aes_rel);
    let source = match &src.aesthetic {
        Some(p) => {
            // Check it loads before copying.
            crate::reward::aesthetic::AestheticHead::from_file(p)?;
            if let Some(d) = to.parent() {
                std::fs::create_dir_all(d).map_err(|e| Error::io(format!("creating {}", d.display()), e))?;
            }
            std::fs::copy(p, &to).map_err(|e| Error::io(format!("copying {}", p.display()), e))?;
            p.display().to_string()
        }
        None => {
            write(&to, crate::reward::aesthetic::EMBEDDED_HEAD_PTH)?;
            format!("embedded {}", crate::reward::aesthetic::EMBEDDED_HEAD_NAME)
        }
    };
    written.push((AESTHETIC, vec![aes_rel.into()], serde_json::json!({"source": source})));

    let random_sd = matches!(src.sd, SdSource::Random { .. });
    let random_clip = matches!(src.clip, ClipSource::Random { .. });
    let mut names = Vec::new();
    for (name, files, config) in written {
        let files: Vec<&str> = files.iter().map(String::as_str).collect();
        bundle.add_component(name, kind_of(name), config, &files)?;
        // Weights are random only for the image models made from a random source; the tokenizer,
        // the scheduler config and the aesthetic head (the real one) never are.
        let random = match name {
            TEXT_ENCODER | UNET | VAE_DECODER => random_sd,
            CLIP => random_clip,
            _ => false,
        };
        bundle.mark_random(name, random)?;
        names.push(name.to_string());
    }
    if random_sd || random_clip {
        let manifest = bundle.manifest_mut();
        let note = format!(
            " Score components: {} Stable Diffusion, {} scorer CLIP, the REAL LAION aesthetic head; with random image models the images and rewards are meaningless.",
            if random_sd { "RANDOM-weight" } else { "converted" },
            if random_clip { "RANDOM-weight" } else { "converted" }
        );
        manifest.description.push_str(&note);
    }
    bundle.finish()?;
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::clip::ClipTokenizer;

    #[test]
    fn merges_txt_builds_the_same_tokenizer_and_tiny_configs_validate() {
        let txt = merges_txt_from_bpe_gz(crate::text::clip::EMBEDDED_BPE_GZ, "embedded").unwrap();
        assert!(txt.starts_with("#version: 0.2\n"));
        let (a, b) = (ClipTokenizer::from_merges_text(&txt).unwrap(), ClipTokenizer::embedded().unwrap());
        for s in ["a photo of a cat", "Hello, World! 8k artstation", "über-détaillé"] {
            assert_eq!(a.tokenize_sd(s).unwrap(), b.tokenize_sd(s).unwrap());
        }
        tiny_text_config().validate().unwrap();
        tiny_vae_config().validate().unwrap();
        assert_eq!(tiny_vae_config().upscale(), 8);
        tiny_clip_config().validate().unwrap();
        let sc = crate::diffusion::scheduler::SchedulerConfig::from_json_str(&promptist_scheduler_config().to_string()).unwrap();
        let s = crate::diffusion::scheduler::dpm_solver::DpmSolverSettings::from_config(&sc).unwrap();
        assert_eq!(s, crate::diffusion::scheduler::dpm_solver::DpmSolverSettings { steps_offset: 1, ..crate::diffusion::scheduler::dpm_solver::DpmSolverSettings::promptist() });
    }
}
