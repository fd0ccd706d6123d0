//! promptist-train: the Promptist trainer's command line (SFT and PPO on tch, bundle export, demo corpus
//! and tokenizer, throughput benchmark). Progress and statistics go to stderr; results that a
//! script reads (bench) go to stdout as JSON.

mod cli;
mod cli_ppo;

fn main() {
    if let Err(e) = cli::run() {
        eprintln!("promptist-train: error: {e}");
        std::process::exit(1);
    }
}
