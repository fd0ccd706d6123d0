//! `promptist make-tiny`: a seeded random GPT-2 checkpoint folder in the Hugging Face layout
//! (for tests; `promptist convert` turns it into a bundle).

use std::path::PathBuf;

use promptist::export::tiny::DEFAULT_SCALE;
use promptist::export::{write_random_checkpoint, Gpt2Config};

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
    /// Multiplier of the token-embedding std (peaked next-token distributions).
    #[arg(long, default_value_t = DEFAULT_SCALE)]
    scale: f32,
}

pub fn run(a: Args) -> promptist::Result<()> {
    let cfg = Gpt2Config::preset(&a.preset)?;
    write_random_checkpoint(&a.out, &cfg, a.seed, a.scale)?;
    eprintln!(
        "make-tiny: wrote {} (preset {}, seed {}, scale {}; RANDOM weights)",
        a.out.display(),
        a.preset,
        a.seed,
        a.scale
    );
    Ok(())
}
