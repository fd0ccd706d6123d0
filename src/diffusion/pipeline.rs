//! The Stable Diffusion text-to-image pipeline as diffusers' `StableDiffusionPipeline.__call__`
//! runs it (diffusers 0.42): CLIP text encoding of `""` (unconditional, no negative prompt) and of
//! each prompt (transformers' CLIPTokenizer: padded to 77 with the end token), seeded initial
//! latents times `init_noise_sigma`, classifier-free guidance with uncond + cond in one UNet call
//! (`noise = uncond + g * (cond - uncond)`, several images batched per call), the scheduler's
//! `step`, then the VAE decoder on `latents / scaling_factor` and `(x / 2 + 0.5).clamp(0, 1)`;
//! RGB8 by `round(x * 255)` (ties to even, as numpy). Graph I/O names are optimum's.

use std::path::Path;

use crate::runtime::graph::{Feed, Graph};
use crate::diffusion::guidance::classifier_free_guidance;
use crate::diffusion::latents::{initial_latents, LATENT_CHANNELS, SD1_VAE_SCALE};
use crate::diffusion::postprocess;
use crate::diffusion::scheduler::{self, SchedulerConfig, SchedulerKind};
use crate::runtime::{ProviderKind, Runtime, SessionOptions};
use crate::text::clip::ClipTokenizer;
use crate::{Error, Result};

/// Graph tensor names (optimum's ONNX layout of SD 1.x).
pub const TEXT_ENCODER_IO: (&[&str], &[&str]) = (&["input_ids"], &["last_hidden_state"]);
pub const UNET_IO: (&[&str], &[&str]) = (&["sample", "timestep", "encoder_hidden_states"], &["out_sample"]);
pub const VAE_DECODER_IO: (&[&str], &[&str]) = (&["latent_sample"], &["sample"]);

/// The stages a long call reports through its progress callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Text encoding (step 1 of 1).
    Encode,
    /// Denoising step `step` of `total`.
    Denoise,
    /// VAE decoding: images `step` of `total` decoded.
    VaeDecode,
    /// CLIP + aesthetic scoring: images `step` of `total` embedded.
    Score,
}

/// Progress callback: (stage, step done, total); returning false cancels (`Error::Cancelled`).
pub type Progress<'a> = &'a mut dyn FnMut(Stage, usize, usize) -> bool;

/// A progress callback that never cancels.
pub fn no_progress(_: Stage, _: usize, _: usize) -> bool {
    true
}

pub(crate) fn report(progress: &mut dyn FnMut(Stage, usize, usize) -> bool, stage: Stage, step: usize, total: usize) -> Result<()> {
    if progress(stage, step, total) {
        Ok(())
    } else {
        Err(Error::Cancelled)
    }
}

/// Sampling settings (docs/method.md §3 defaults: 512x512, 20 steps, guidance 7.5, DPM-Solver++).
#[derive(Debug, Clone, PartialEq)]
pub struct SdSettings {
    pub width: usize,
    pub height: usize,
    pub steps: usize,
    pub guidance_scale: f32,
    pub scheduler: SchedulerKind,
    /// Images per UNet call (each is 2 rows: uncond + cond). >= 1.
    pub max_batch: usize,
}

impl Default for SdSettings {
    fn default() -> Self {
        SdSettings { width: 512, height: 512, steps: 20, guidance_scale: 7.5, scheduler: SchedulerKind::DpmSolverMultistep, max_batch: 4 }
    }
}

impl SdSettings {
    /// Every number within its published cap (`capi::limits`): size, steps, batch, guidance. That
    /// the VAE's factor divides the size is the pipeline's check ([`SdSettings::validate`] first,
    /// then [`SdPipeline::check_settings`]).
    pub fn validate(&self) -> Result<()> {
        use crate::capi::limits::{check_range, PROMPTIST_MAX_GUIDANCE, PROMPTIST_MAX_IMAGE_SIDE, PROMPTIST_MAX_STEPS, PROMPTIST_MAX_UNET_BATCH};
        check_range("width", self.width, 1, PROMPTIST_MAX_IMAGE_SIDE)?;
        check_range("height", self.height, 1, PROMPTIST_MAX_IMAGE_SIDE)?;
        check_range("steps", self.steps, 1, PROMPTIST_MAX_STEPS)?;
        check_range("max_batch", self.max_batch, 1, PROMPTIST_MAX_UNET_BATCH)?;
        if !(self.guidance_scale.is_finite() && self.guidance_scale.abs() <= PROMPTIST_MAX_GUIDANCE) {
            return Err(Error::InvalidOptions(format!(
                "guidance_scale = {} is out of range [-{PROMPTIST_MAX_GUIDANCE}, {PROMPTIST_MAX_GUIDANCE}]",
                self.guidance_scale
            )));
        }
        Ok(())
    }
}

/// INVALID_OPTIONS when `images` images of the settings' size exceed
/// `PROMPTIST_MAX_PIXELS_PER_CALL` (checked before any of them is made).
pub fn check_image_budget(images: usize, settings: &SdSettings) -> Result<()> {
    let pixels = (images as u64).saturating_mul(settings.width as u64).saturating_mul(settings.height as u64);
    let cap = crate::capi::limits::PROMPTIST_MAX_PIXELS_PER_CALL;
    if pixels > cap {
        return Err(Error::InvalidOptions(format!(
            "{images} images of {}x{} are {pixels} pixels, more than one call may make ({cap}, PROMPTIST_MAX_PIXELS_PER_CALL): score fewer candidates, fewer images per prompt or smaller images",
            settings.width, settings.height
        )));
    }
    Ok(())
}

/// Images of one prompt: `count` images, image `i` from latent stream `first_index + i` of `seed`.
#[derive(Debug, Clone)]
pub struct ImageJob<'a> {
    pub prompt: &'a str,
    pub seed: u64,
    pub first_index: u64,
    pub count: usize,
}

/// One generated image: `height x width` pixels, RGB interleaved, rows top to bottom.
#[derive(Debug, Clone, PartialEq)]
pub struct Image {
    pub width: usize,
    pub height: usize,
    /// RGB8 (`round(x * 255)`).
    pub rgb8: Vec<u8>,
    /// The same image as f32 in [0, 1] (HWC), as diffusers' `output_type="np"`.
    pub float: Vec<f32>,
}

/// Paths of the pipeline's files inside a bundle (optimum layout).
#[derive(Debug, Clone)]
pub struct SdFiles<'a> {
    pub text_encoder: &'a Path,
    pub unet: &'a Path,
    pub vae_decoder: &'a Path,
    /// `vae_decoder/config.json` (`scaling_factor`, the scale factor, `sample_size`), if present.
    pub vae_config: Option<&'a Path>,
    /// The UNet's diffusers config (`sample_size`, `in_channels`), if the bundle has one.
    pub unet_config: Option<&'a serde_json::Value>,
    /// `tokenizer/merges.txt`.
    pub merges: &'a Path,
    pub scheduler_config: &'a Path,
}

/// The loaded pipeline. `Send + Sync`; each graph serialises on its own lock.
pub struct SdPipeline {
    text_encoder: Graph,
    unet: Graph,
    vae: Graph,
    tokenizer: ClipTokenizer,
    scheduler_config: SchedulerConfig,
    scaling_factor: f32,
    /// Pixels per latent cell: 2^(len(block_out_channels) - 1) of the VAE config, as diffusers
    /// derives `vae_scale_factor`; 8 (SD 1.x) without a config.
    vae_scale: usize,
    provider: ProviderKind,
}

impl std::fmt::Debug for SdPipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SdPipeline").field("unet", &self.unet.path()).field("provider", &self.provider).finish_non_exhaustive()
    }
}


/// The fields of a diffusers AutoencoderKL `config.json` the pipeline uses.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
pub struct VaeGeometry {
    /// Latents are divided by this before decoding (0.18215 when absent, SD 1.x).
    #[serde(default = "sd1_scaling")]
    pub scaling_factor: f64,
    #[serde(default)]
    pub block_out_channels: Option<Vec<usize>>,
    #[serde(default)]
    pub latent_channels: Option<usize>,
    /// The image size the VAE was trained at.
    #[serde(default)]
    pub sample_size: Option<usize>,
}

fn sd1_scaling() -> f64 {
    0.18215
}

impl VaeGeometry {
    /// Read a VAE config (SD 1.x values when there is none).
    pub fn read(config: Option<&Path>) -> Result<VaeGeometry> {
        let Some(p) = config else {
            return Ok(VaeGeometry { scaling_factor: sd1_scaling(), block_out_channels: None, latent_channels: None, sample_size: None });
        };
        let g: VaeGeometry =
            serde_json::from_str(&crate::io::read_text(p)?).map_err(|e| Error::ModelFormat(format!("{}: {e}", p.display())))?;
        if !(g.scaling_factor.is_finite() && g.scaling_factor > 0.0) {
            return Err(Error::ModelFormat(format!("{}: scaling_factor {} is not a positive number", p.display(), g.scaling_factor)));
        }
        if g.block_out_channels.as_ref().is_some_and(|b| b.is_empty() || b.len() > 8) {
            return Err(Error::ModelFormat(format!("{}: block_out_channels must have 1 to 8 entries", p.display())));
        }
        Ok(g)
    }

    /// Pixels per latent cell: 2^(len(block_out_channels) - 1), 8 without the field.
    pub fn scale(&self) -> usize {
        self.block_out_channels.as_ref().map_or(SD1_VAE_SCALE, |b| 1 << (b.len() - 1))
    }
}

/// Check that the UNet and the VAE belong to one pipeline: the same latent channels, and a UNet
/// sample size that the VAE's factor turns into the VAE's image size. Each check runs when both
/// configs carry the fields; the error names the mismatch.
pub fn check_geometry(unet: Option<&serde_json::Value>, vae: &VaeGeometry, what: &str) -> Result<()> {
    let field = |k: &str| unet.and_then(|u| u.get(k)).and_then(|v| v.as_u64()).map(|v| v as usize);
    let scale = vae.scale();
    let blocks = vae.block_out_channels.as_ref().map_or(0, Vec::len);
    if let (Some(u), Some(v)) = (field("in_channels"), vae.latent_channels) {
        if u != v {
            return Err(Error::BundleInvalid(format!(
                "{what}: the UNet takes {u} latent channels but the VAE decoder has {v}: they do not belong to one pipeline"
            )));
        }
    }
    if let (Some(u), Some(v)) = (field("sample_size"), vae.sample_size) {
        if u * scale != v {
            return Err(Error::BundleInvalid(format!(
                "{what}: the VAE decoder's scale factor is {scale} (2^({blocks} - 1) from its {blocks} block_out_channels), so the UNet's \
                 {u}x{u} latents make {}x{} images, but the VAE's sample_size is {v}: the UNet and the VAE do not belong to one pipeline",
                u * scale,
                u * scale
            )));
        }
    }
    Ok(())
}

impl SdPipeline {
    /// Load the three graphs (names checked), the SD tokenizer and the scheduler config.
    pub fn load(rt: &Runtime, files: &SdFiles<'_>, opts: &SessionOptions) -> Result<SdPipeline> {
        let (text_encoder, provider) = Graph::load(rt, files.text_encoder, opts, TEXT_ENCODER_IO.0, TEXT_ENCODER_IO.1)?;
        let (unet, _) = Graph::load(rt, files.unet, opts, UNET_IO.0, UNET_IO.1)?;
        let (vae, _) = Graph::load(rt, files.vae_decoder, opts, VAE_DECODER_IO.0, VAE_DECODER_IO.1)?;
        text_encoder.expect_input_shape("input_ids", 2, &[])?;
        unet.expect_input_shape("sample", 4, &[(1, LATENT_CHANNELS as i64)])?;
        unet.expect_input_shape("encoder_hidden_states", 3, &[])?;
        vae.expect_input_shape("latent_sample", 4, &[(1, LATENT_CHANNELS as i64)])?;
        let tokenizer = ClipTokenizer::from_merges_text(&crate::io::read_text(files.merges)?)
            .map_err(|e| Error::Tokenizer(format!("{}: {e}", files.merges.display())))?;
        let scheduler_config = SchedulerConfig::from_file(files.scheduler_config)?;
        // Build each supported scheduler once so a bad config fails at load, not at run time.
        scheduler::build(SchedulerKind::DpmSolverMultistep, &scheduler_config)?;
        let vae_geometry = VaeGeometry::read(files.vae_config)?;
        let what = files.vae_decoder.parent().and_then(Path::parent).unwrap_or(files.vae_decoder).display().to_string();
        check_geometry(files.unet_config, &vae_geometry, &what)?;
        Ok(SdPipeline {
            text_encoder,
            unet,
            vae,
            tokenizer,
            scheduler_config,
            scaling_factor: vae_geometry.scaling_factor as f32,
            vae_scale: vae_geometry.scale(),
            provider,
        })
    }

    /// Pixels per latent cell (from the VAE config).
    pub fn vae_scale(&self) -> usize {
        self.vae_scale
    }

    /// [`SdSettings::validate`], then a size that the VAE's factor divides.
    pub fn check_settings(&self, settings: &SdSettings) -> Result<()> {
        settings.validate()?;
        let f = self.vae_scale;
        if !settings.width.is_multiple_of(f) || !settings.height.is_multiple_of(f) {
            return Err(Error::InvalidOptions(format!(
                "width and height must be multiples of the VAE's scale factor {f}, got {}x{}",
                settings.width, settings.height
            )));
        }
        Ok(())
    }

    pub fn provider(&self) -> ProviderKind {
        self.provider
    }

    pub fn scaling_factor(&self) -> f32 {
        self.scaling_factor
    }

    /// The scheduler's `init_noise_sigma` for these settings.
    pub fn init_noise_sigma(&self, settings: &SdSettings) -> Result<f32> {
        let mut s = scheduler::build(settings.scheduler, &self.scheduler_config)?;
        s.set_timesteps(settings.steps)?;
        Ok(s.init_noise_sigma())
    }

    /// The initial latents of `jobs` (concatenated in job order), as [`SdPipeline::generate`] uses them.
    pub fn initial_latents(&self, jobs: &[ImageJob<'_>], settings: &SdSettings) -> Result<Vec<f32>> {
        self.check_settings(settings)?;
        let sigma = self.init_noise_sigma(settings)?;
        let mut out = Vec::new();
        for j in jobs {
            out.extend(initial_latents(j.seed, j.first_index, j.count, (settings.height, settings.width), self.vae_scale, sigma)?);
        }
        Ok(out)
    }

    /// Generate the images of `jobs` (job order, then image order).
    pub fn generate(&self, jobs: &[ImageJob<'_>], settings: &SdSettings, progress: Progress<'_>) -> Result<Vec<Image>> {
        if jobs.is_empty() || jobs.iter().any(|j| j.count == 0) {
            return Err(Error::InvalidOptions("the number of images must be at least 1".into()));
        }
        check_image_budget(jobs.iter().map(|j| j.count).sum(), settings)?;
        let latents = self.initial_latents(jobs, settings)?;
        let prompts: Vec<&str> = jobs.iter().flat_map(|j| std::iter::repeat_n(j.prompt, j.count)).collect();
        self.generate_from_latents(&prompts, latents, settings, progress)
    }

    /// Generate one image per entry of `prompts` from the given initial latents
    /// (`[n, 4, height/f, width/f]` with `f` = [`SdPipeline::vae_scale`], already scaled by
    /// `init_noise_sigma`).
    pub fn generate_from_latents(
        &self,
        prompts: &[&str],
        mut latents: Vec<f32>,
        settings: &SdSettings,
        progress: Progress<'_>,
    ) -> Result<Vec<Image>> {
        self.check_settings(settings)?;
        let n = prompts.len();
        if n == 0 {
            return Err(Error::InvalidOptions("the number of images must be at least 1".into()));
        }
        let (lh, lw) = (settings.height / self.vae_scale, settings.width / self.vae_scale);
        let per = LATENT_CHANNELS * lh * lw;
        if latents.len() != n * per {
            return Err(Error::InvalidOptions(format!("{} latent values for {n} images of {per}", latents.len())));
        }
        for p in prompts {
            if p.contains('\0') {
                return Err(Error::InvalidOptions("a prompt contains a NUL character".into()));
            }
        }

        // Text encoding: "" then each distinct prompt, one batch.
        let mut distinct: Vec<&str> = Vec::new();
        let index: Vec<usize> = prompts
            .iter()
            .map(|p| match distinct.iter().position(|d| d == p) {
                Some(i) => i + 1,
                None => {
                    distinct.push(p);
                    distinct.len()
                }
            })
            .collect();
        let texts: Vec<&str> = std::iter::once("").chain(distinct.iter().copied()).collect();
        let emb = self.encode(&texts)?;
        let (seq, dim) = (emb.shape[1], emb.shape[2]);
        let row = seq * dim;
        report(progress, Stage::Encode, 1, 1)?;

        let mut sched = scheduler::build(settings.scheduler, &self.scheduler_config)?;
        sched.set_timesteps(settings.steps)?;
        let timesteps = sched.timesteps().to_vec();
        let g = settings.guidance_scale;
        let t_dims: Vec<i64> = self.unet.input_dims("timestep").map(<[i64]>::to_vec).unwrap_or_default();
        for (step, &t) in timesteps.iter().enumerate() {
            let model_in = sched.scale_model_input(&latents, t)?;
            let mut noise = vec![0f32; n * per];
            for start in (0..n).step_by(settings.max_batch) {
                let k = settings.max_batch.min(n - start);
                let chunk = &model_in[start * per..(start + k) * per];
                let mut sample = Vec::with_capacity(2 * k * per);
                sample.extend_from_slice(chunk);
                sample.extend_from_slice(chunk);
                let mut ctx = Vec::with_capacity(2 * k * row);
                for _ in 0..k {
                    ctx.extend_from_slice(&emb.data[..row]);
                }
                for &pi in &index[start..start + k] {
                    ctx.extend_from_slice(&emb.data[pi * row..(pi + 1) * row]);
                }
                let t_shape = match t_dims.first() {
                    None => vec![],
                    Some(&d) if d > 0 => vec![d as usize],
                    Some(_) => vec![2 * k],
                };
                let t_len = t_shape.iter().product::<usize>();
                let out = self.unet.run(
                    &[
                        ("sample", Feed::Float { shape: vec![2 * k, LATENT_CHANNELS, lh, lw], data: sample }),
                        ("timestep", Feed::Float { shape: t_shape, data: vec![t as f32; t_len] }),
                        ("encoder_hidden_states", Feed::Float { shape: vec![2 * k, seq, dim], data: ctx }),
                    ],
                    UNET_IO.1,
                )?;
                let o = &out[0];
                if o.data.len() != 2 * k * per {
                    return Err(Error::ModelFormat(format!("{}: out_sample has shape {:?}, expected [{}, 4, {lh}, {lw}]", self.unet.path().display(), o.shape, 2 * k)));
                }
                noise[start * per..(start + k) * per].copy_from_slice(&classifier_free_guidance(&o.data, g)?);
            }
            latents = sched.step(&noise, t, &latents)?;
            report(progress, Stage::Denoise, step + 1, timesteps.len())?;
        }
        self.decode(&latents, n, settings, progress)
    }

    /// `last_hidden_state` of the SD text encoder for `texts` (`[len, 77, dim]`).
    fn encode(&self, texts: &[&str]) -> Result<crate::runtime::graph::Output> {
        let mut ids = Vec::with_capacity(texts.len() * 77);
        for t in texts {
            ids.extend(self.tokenizer.tokenize_sd(t)?.into_iter().map(i64::from));
        }
        let seq = ids.len() / texts.len().max(1);
        let out = self
            .text_encoder
            .run(&[("input_ids", Feed::Int { shape: vec![texts.len(), seq], data: ids })], TEXT_ENCODER_IO.1)?;
        let o = out.into_iter().next().ok_or_else(|| Error::Internal("text encoder: no output".into()))?;
        if o.shape.len() != 3 || o.shape[0] != texts.len() || o.shape[1] != seq {
            return Err(Error::ModelFormat(format!("{}: last_hidden_state has shape {:?}", self.text_encoder.path().display(), o.shape)));
        }
        Ok(o)
    }

    fn decode(&self, latents: &[f32], n: usize, settings: &SdSettings, progress: Progress<'_>) -> Result<Vec<Image>> {
        let (lh, lw) = (settings.height / self.vae_scale, settings.width / self.vae_scale);
        let per = LATENT_CHANNELS * lh * lw;
        let (h, w) = (settings.height, settings.width);
        let mut images = Vec::with_capacity(n);
        for start in (0..n).step_by(settings.max_batch) {
            let k = settings.max_batch.min(n - start);
            let z: Vec<f32> = latents[start * per..(start + k) * per].iter().map(|v| v / self.scaling_factor).collect();
            let out = self
                .vae
                .run(&[("latent_sample", Feed::Float { shape: vec![k, LATENT_CHANNELS, lh, lw], data: z })], VAE_DECODER_IO.1)?;
            let o = &out[0];
            if o.shape != [k, 3, h, w] {
                return Err(Error::ModelFormat(format!("{}: sample has shape {:?}, expected [{k}, 3, {h}, {w}]", self.vae.path().display(), o.shape)));
            }
            for img in o.data.chunks_exact(3 * h * w) {
                let float = postprocess::decoded_to_unit_hwc(img, h * w);
                let rgb8 = postprocess::unit_to_u8(&float);
                images.push(Image { width: w, height: h, rgb8, float });
            }
            report(progress, Stage::VaeDecode, start + k, n)?;
        }
        Ok(images)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_validation() {
        SdSettings::default().validate().unwrap();
        for bad in [
            SdSettings { width: 0, ..Default::default() },
            SdSettings { height: 0, ..Default::default() },
            SdSettings { steps: 0, ..Default::default() },
            SdSettings { max_batch: 0, ..Default::default() },
            SdSettings { guidance_scale: f32::NAN, ..Default::default() },
        ] {
            assert_eq!(bad.validate().unwrap_err().code(), crate::Code::InvalidOptions, "{bad:?}");
        }
    }

    #[test]
    fn vae_factor_and_geometry() {
        let g = |b: usize, s: Option<usize>| VaeGeometry { scaling_factor: 0.18215, block_out_channels: Some(vec![8; b]), latent_channels: Some(4), sample_size: s };
        assert_eq!(g(4, None).scale(), 8);
        assert_eq!(g(3, None).scale(), 4);
        assert_eq!(VaeGeometry::read(None).unwrap().scale(), 8);
        let unet = serde_json::json!({"in_channels": 4, "sample_size": 64});
        check_geometry(Some(&unet), &g(4, Some(512)), "b").unwrap();
        check_geometry(None, &g(3, Some(512)), "b").unwrap();
        let e = check_geometry(Some(&unet), &g(3, Some(512)), "b").unwrap_err();
        assert_eq!(e.code(), crate::Code::BundleInvalid);
        assert!(e.to_string().contains("scale factor is 4") && e.to_string().contains("sample_size is 512"), "{e}");
        let e = check_geometry(Some(&serde_json::json!({"in_channels": 8})), &g(4, None), "b").unwrap_err();
        assert!(e.to_string().contains("8 latent channels"), "{e}");
    }

    #[test]
    fn cancel_through_progress() {
        let mut calls = 0;
        let mut f = |_: Stage, _: usize, _: usize| {
            calls += 1;
            calls < 2
        };
        report(&mut f, Stage::Denoise, 1, 2).unwrap();
        assert_eq!(report(&mut f, Stage::Denoise, 2, 2).unwrap_err().code(), crate::Code::Cancelled);
    }
}
