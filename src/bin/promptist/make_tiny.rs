//! `promptist make-tiny`: a seeded random GPT-2 checkpoint folder in the Hugging Face layout
//! (for tests; `promptist convert` turns it into a bundle).

use std::path::PathBuf;

use promptist::export::onnx::DType;
use promptist::export::tiny::DEFAULT_SCALE;
use promptist::export::{convert_checkpoint, write_random_checkpoint, ConvertOptions, Gpt2Config, LmHead};

#[derive(clap::Args)]
pub struct Args {
    /// Checkpoint folder to write.
    #[arg(long)]
    out: PathBuf,
    /// Random seed (ChaCha8).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Model shape: tiny (2 layers, width 64) or gpt2 (the 117M shape).
    #[arg(long, value_parser = ["tiny", "gpt2"], default_value = "tiny")]
    preset: String,
    /// Std multiplier of the untied LM head (0.02 * scale): peaked next-token distributions.
    #[arg(long, default_value_t = DEFAULT_SCALE, conflicts_with = "tied")]
    scale: f32,
    /// Tie the LM head to wte (the real GPT-2 layout and parameter count, e.g. for benchmarks;
    /// next-token distributions are then nearly flat).
    #[arg(long)]
    tied: bool,
    /// Also convert the checkpoint into a bundle at this folder (fp32 unless --dtype fp16).
    #[arg(long)]
    bundle: Option<PathBuf>,
    /// Graph type of the --bundle.
    #[arg(long, value_parser = ["fp32", "fp16"], default_value = "fp32", requires = "bundle")]
    dtype: String,
}

pub fn run(a: Args) -> promptist::Result<()> {
    let cfg = Gpt2Config::preset(&a.preset)?;
    let head = if a.tied { LmHead::Tied } else { LmHead::Untied { scale: a.scale } };
    write_random_checkpoint(&a.out, &cfg, a.seed, head)?;
    eprintln!(
        "make-tiny: wrote {} (preset {}, seed {}, head {head:?}; RANDOM weights)",
        a.out.display(),
        a.preset,
        a.seed
    );
    if let Some(bundle) = &a.bundle {
        let opts =
            ConvertOptions { dtype: if a.dtype == "fp16" { DType::F16 } else { DType::F32 }, ..Default::default() };
        convert_checkpoint(&a.out, bundle, &opts, &mut |s| eprintln!("make-tiny: {s}"))?;
        eprintln!("make-tiny: wrote bundle {} (RANDOM weights)", bundle.display());
    }
    Ok(())
}
