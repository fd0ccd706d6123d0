//! `promptist sd-generate` (hidden dev command for the diffusers parity test): run the bundle's SD
//! pipeline for one prompt and write the initial latents and the final float image (both raw
//! little-endian f32, C order) so a reference can start from the same latents.

use std::path::PathBuf;

use promptist::bundle::{Bundle, Checksums};
use promptist::bundle::layout::score_paths;
use promptist::diffusion::pipeline::{no_progress, ImageJob, SdPipeline, SdSettings};
use promptist::runtime::{Runtime, SessionOptions};
use promptist::{Error, Result};

#[derive(clap::Args)]
pub struct Args {
    #[arg(long)]
    bundle: PathBuf,
    #[arg(long)]
    prompt: String,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[arg(long, default_value_t = 1)]
    images: usize,
    #[arg(long, default_value_t = 64)]
    width: usize,
    #[arg(long, default_value_t = 64)]
    height: usize,
    #[arg(long, default_value_t = 4)]
    steps: usize,
    #[arg(long, default_value_t = 7.5)]
    guidance: f32,
    /// Where to write the initial latents [n, 4, h/8, w/8] (f32 LE).
    #[arg(long)]
    latents_out: PathBuf,
    /// Where to write the images [n, h, w, 3] in [0, 1] (f32 LE).
    #[arg(long)]
    image_out: PathBuf,
}

fn write_f32(path: &PathBuf, v: &[f32]) -> Result<()> {
    let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    std::fs::write(path, bytes).map_err(|e| Error::io(format!("writing {}", path.display()), e))
}

pub fn run(a: Args) -> Result<()> {
    let bundle = Bundle::open(&a.bundle, Checksums::Skip)?;
    let p = score_paths(&bundle)?.ok_or_else(|| Error::NotInBundle("no SD components".into()))?;
    let rt = Runtime::get(None)?;
    let files = p.sd_files();
    let pipe = SdPipeline::load(&rt, &files, &SessionOptions::default())?;
    let s = SdSettings { width: a.width, height: a.height, steps: a.steps, guidance_scale: a.guidance, ..Default::default() };
    let jobs = [ImageJob { prompt: &a.prompt, seed: a.seed, first_index: 0, count: a.images }];
    let lat = pipe.initial_latents(&jobs, &s)?;
    write_f32(&a.latents_out, &lat)?;
    let imgs = pipe.generate(&jobs, &s, &mut no_progress)?;
    let flat: Vec<f32> = imgs.iter().flat_map(|i| i.float.iter().copied()).collect();
    write_f32(&a.image_out, &flat)
}
