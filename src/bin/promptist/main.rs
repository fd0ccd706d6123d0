//! The `promptist` command-line tool: one module per subcommand; the logic lives in the library.

mod bench;
mod convert;
mod export_sd;
mod make_tiny;
mod optimize;
mod score;
mod add_score;
mod sd_generate;
mod verify;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "promptist", version, about = "Promptist prompt optimizer (GPT-2 policy over ONNX Runtime)")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Rewrite a prompt with the bundle's policy.
    Optimize(optimize::Args),
    /// Convert a Hugging Face GPT-2-architecture checkpoint folder into a bundle.
    Convert(convert::Args),
    /// Write a seeded tiny random GPT-2 checkpoint or bundle (for tests).
    MakeTiny(make_tiny::Args),
    /// Check a bundle's manifest and checksums.
    Verify(verify::Args),
    /// Benchmark decoding.
    Bench(bench::Args),
    /// Build one SD / CLIP / aesthetic ONNX graph (dev tool for parity tests).
    #[command(hide = true)]
    ExportSd(export_sd::Args),
    /// Score candidate prompts with the Promptist reward (SD + CLIP + aesthetic).
    Score(score::Args),
    /// Add the score components (SD, scorer CLIP, aesthetic head) to a bundle.
    AddScore(add_score::Args),
    /// Run the SD pipeline and dump latents + image (dev tool for the diffusers parity test).
    #[command(hide = true)]
    SdGenerate(sd_generate::Args),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Optimize(a) => optimize::run(a),
        Command::Convert(a) => convert::run(a),
        Command::MakeTiny(a) => make_tiny::run(a),
        Command::Verify(a) => verify::run(a),
        Command::Bench(a) => bench::run(a),
        Command::ExportSd(a) => export_sd::run(a),
        Command::Score(a) => score::run(a),
        Command::AddScore(a) => add_score::run(a),
        Command::SdGenerate(a) => sd_generate::run(a),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error [{}]: {e}", e.code().name());
            std::process::ExitCode::from(e.code().as_i32().clamp(1, 255) as u8)
        }
    }
}
