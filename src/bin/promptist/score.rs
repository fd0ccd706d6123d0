//! `promptist score "<user prompt>" "<candidate>"...`: the Promptist reward of each candidate as a
//! rewrite of the user prompt (`Engine::score_many`), optionally saving every image as PNG.

use std::path::{Path, PathBuf};

use promptist::diffusion::pipeline::{Image, SdSettings, Stage};
use promptist::diffusion::scheduler::SchedulerKind;
use promptist::engine::{Engine, EngineOptions, ScoreOptions};
use promptist::{Error, Result};

#[derive(clap::Args)]
pub struct Args {
    /// The user's original prompt x.
    user_prompt: String,
    /// One or more candidate prompts y (scored together; their images share UNet calls).
    #[arg(required = true)]
    candidates: Vec<String>,
    /// Bundle folder with the score components.
    #[arg(long)]
    bundle: PathBuf,
    /// Write x's and each candidate's images as PNG files into this folder.
    #[arg(long)]
    save_images: Option<PathBuf>,
    #[arg(long, default_value_t = 512)]
    width: usize,
    #[arg(long, default_value_t = 512)]
    height: usize,
    #[arg(long, default_value_t = 20)]
    steps: usize,
    #[arg(long, default_value_t = 7.5)]
    guidance: f32,
    /// Images per prompt.
    #[arg(long, default_value_t = 2)]
    images: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Sampler: dpm (DPM-Solver++ multistep, the reward's) or ddim.
    #[arg(long, value_parser = ["dpm", "ddim"], default_value = "dpm")]
    scheduler: String,
    /// Images per UNet call.
    #[arg(long, default_value_t = 4)]
    max_batch: usize,
    /// Execution provider: cpu, cuda or auto.
    #[arg(long, default_value = "cpu")]
    provider: String,
    /// ONNX Runtime intra-op threads (0 = default).
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Print the result as JSON on stdout.
    #[arg(long)]
    json: bool,
}

fn save_png(path: &Path, img: &Image) -> Result<()> {
    let f = std::fs::File::create(path).map_err(|e| Error::io(format!("creating {}", path.display()), e))?;
    let mut enc = png::Encoder::new(std::io::BufWriter::new(f), img.width as u32, img.height as u32);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    let png_err = |e: png::EncodingError| Error::io(format!("writing {}", path.display()), std::io::Error::other(e.to_string()));
    let mut w = enc.write_header().map_err(png_err)?;
    w.write_image_data(&img.rgb8).map_err(png_err)?;
    w.finish().map_err(png_err)
}

pub fn run(a: Args) -> Result<()> {
    let eo = EngineOptions { provider: a.provider.parse()?, intra_op_threads: a.threads, ..Default::default() };
    let engine = Engine::open(&a.bundle, &eo)?;
    let options = ScoreOptions {
        sd: SdSettings {
            width: a.width,
            height: a.height,
            steps: a.steps,
            guidance_scale: a.guidance,
            scheduler: if a.scheduler == "ddim" { SchedulerKind::Ddim } else { SchedulerKind::DpmSolverMultistep },
            max_batch: a.max_batch,
        },
        images_per_prompt: a.images,
        seed: a.seed,
        return_images: a.save_images.is_some(),
        ..Default::default()
    };
    let cands: Vec<&str> = a.candidates.iter().map(String::as_str).collect();
    let mut progress = |stage: Stage, step: usize, total: usize| {
        if stage == Stage::Denoise {
            eprint!("\rscore: denoising step {step}/{total}");
            if step == total {
                eprintln!();
            }
        }
        true
    };
    let r = engine.score_many(&a.user_prompt, &cands, &options, &mut progress)?;
    if r.random_weights {
        eprintln!("score: NOTE this bundle has RANDOM-weight models: the images and rewards are meaningless");
    }
    if let Some(dir) = &a.save_images {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
        for (i, img) in r.user_images.iter().enumerate() {
            save_png(&dir.join(format!("user_{i}.png")), img)?;
        }
        for (c, cs) in r.candidates.iter().enumerate() {
            for (i, img) in cs.images.iter().enumerate() {
                save_png(&dir.join(format!("candidate{c}_{i}.png")), img)?;
            }
        }
        eprintln!("score: images written to {}", dir.display());
    }
    if a.json {
        let v = serde_json::json!({
            "user_prompt": r.user_prompt,
            "seed": r.seed,
            "images_per_prompt": r.images_per_prompt,
            "provider": r.provider.name(),
            "random_weights": r.random_weights,
            "candidates": r.candidates.iter().map(|c| serde_json::json!({
                "prompt": c.prompt,
                "reward": c.reward.reward,
                "relevance": c.reward.relevance,
                "similarity": c.reward.similarity,
                "aesthetic": c.reward.aesthetic_y,
                "aesthetic_user": c.reward.aesthetic_x,
                "aesthetic_gain": c.reward.aesthetic_gain,
            })).collect::<Vec<_>>(),
        });
        println!("{}", serde_json::to_string_pretty(&v).map_err(|e| Error::Internal(e.to_string()))?);
    } else {
        for c in &r.candidates {
            println!(
                "reward {:+.4}  relevance {:+.4}  aesthetic {:.4} (user {:.4})  similarity {:?}  | {}",
                c.reward.reward,
                c.reward.relevance,
                c.reward.aesthetic_y.iter().sum::<f64>() / c.reward.aesthetic_y.len() as f64,
                c.reward.aesthetic_x.iter().sum::<f64>() / c.reward.aesthetic_x.len() as f64,
                c.reward.similarity.iter().map(|s| (s * 1e4).round() / 1e4).collect::<Vec<_>>(),
                c.prompt
            );
        }
    }
    Ok(())
}
