//! `promptist optimize "PROMPT" --bundle DIR`: rewrite a prompt with the bundle's policy through
//! `promptist::engine::Engine`; text or `--json` output, and a clear note for random weights.

use std::path::PathBuf;

use clap::ValueEnum;
use promptist::engine::{DecodingParams, Engine, EngineOptions, OptimizeOptions, OptimizeResult, StrategyKind};
use promptist::policy::config::EarlyStopping;
use promptist::runtime::ProviderChoice;

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum StrategyArg {
    Greedy,
    Beam,
    Diverse,
    Sample,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ProviderArg {
    Cpu,
    Cuda,
    Auto,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum EarlyStoppingArg {
    Heuristic,
    True,
    Never,
}

const RANDOM_NOTE: &str = "note: this bundle's policy has RANDOM weights (a test or demo bundle): the rewritten prompts are meaningless";

#[derive(clap::Args)]
pub struct Args {
    /// The prompt to rewrite.
    pub prompt: String,
    /// The model bundle folder (with promptist.json).
    #[arg(long)]
    pub bundle: PathBuf,
    /// Decoding strategy (default: beam, as the reference demo).
    #[arg(long, value_enum, default_value = "beam")]
    pub strategy: StrategyArg,
    /// Beams for beam / diverse (default 8).
    #[arg(long)]
    pub num_beams: Option<usize>,
    /// Beam groups for diverse (default 8).
    #[arg(long)]
    pub num_beam_groups: Option<usize>,
    /// Hamming diversity penalty for diverse (default 1.0).
    #[arg(long)]
    pub diversity_penalty: Option<f32>,
    /// Length penalty: score = sum_logprobs / generated_len^p (default -1.0).
    #[arg(long, allow_hyphen_values = true)]
    pub length_penalty: Option<f32>,
    /// transformers' early_stopping for beam / diverse (default heuristic).
    #[arg(long, value_enum)]
    pub early_stopping: Option<EarlyStoppingArg>,
    /// Sampling temperature (default 1.0).
    #[arg(long)]
    pub temperature: Option<f32>,
    /// Sampling top-k, 0 disables (default 50).
    #[arg(long)]
    pub top_k: Option<usize>,
    /// Sampling top-p in (0, 1] (default 1.0).
    #[arg(long)]
    pub top_p: Option<f32>,
    /// Sampling seed (default: drawn and reported).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Tokens to generate at most (default 75).
    #[arg(long)]
    pub max_new_tokens: Option<usize>,
    /// Candidates to return, best first (default 1).
    #[arg(long, short = 'n')]
    pub num_return_sequences: Option<usize>,
    /// Keep the prompt's front-end syntax ((word:1.2), <lora:...>, {a|b}, BREAK, ...) intact:
    /// `--keep-syntax false` lets the policy see and rewrite it (default true).
    #[arg(long, action = clap::ArgAction::Set, default_value_t = true)]
    pub keep_syntax: bool,
    /// Fit each rewrite into this many CLIP tokens, cut after the last whole phrase that fits,
    /// never inside your own text (default 75, Stable Diffusion's window; 0 = off).
    #[arg(long)]
    pub max_clip_tokens: Option<usize>,
    /// Execution provider.
    #[arg(long, value_enum, default_value = "cpu")]
    pub provider: ProviderArg,
    /// CUDA device ordinal.
    #[arg(long, default_value_t = 0)]
    pub device_id: i32,
    /// ONNX Runtime intra-op threads (0 = ONNX Runtime's default).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Path of the ONNX Runtime shared library (else ORT_DYLIB_PATH, next to the library, system).
    #[arg(long)]
    pub ort_library: Option<PathBuf>,
    /// Skip the sha256 check of the bundle's files.
    #[arg(long)]
    pub skip_checksums: bool,
    /// CPU matrix products of the policy: `packed` (promptist's kernel on AVX-512F CPUs, the
    /// default) or `ort` (ONNX Runtime's own Gemm).
    #[arg(long, default_value = "packed", value_parser = ["packed", "ort"])]
    pub matmul: String,
    /// Print one JSON object (candidates, scores, seed, provider, random-weights flag).
    #[arg(long)]
    pub json: bool,
}

/// The decoding parameters: every flag not given keeps the core's default.
pub fn params(a: &Args) -> DecodingParams {
    let d = DecodingParams::default();
    DecodingParams {
        strategy: match a.strategy {
            StrategyArg::Greedy => StrategyKind::Greedy,
            StrategyArg::Beam => StrategyKind::Beam,
            StrategyArg::Diverse => StrategyKind::DiverseBeam,
            StrategyArg::Sample => StrategyKind::Sample,
        },
        num_beams: a.num_beams.unwrap_or(d.num_beams),
        num_beam_groups: a.num_beam_groups.unwrap_or(d.num_beam_groups),
        diversity_penalty: a.diversity_penalty.unwrap_or(d.diversity_penalty),
        length_penalty: a.length_penalty.unwrap_or(d.length_penalty),
        early_stopping: match a.early_stopping {
            None => d.early_stopping,
            Some(EarlyStoppingArg::Heuristic) => EarlyStopping::Heuristic,
            Some(EarlyStoppingArg::True) => EarlyStopping::True,
            Some(EarlyStoppingArg::Never) => EarlyStopping::Never,
        },
        temperature: a.temperature.unwrap_or(d.temperature),
        top_k: a.top_k.unwrap_or(d.top_k),
        top_p: a.top_p.unwrap_or(d.top_p),
        seed: a.seed.or(d.seed),
        max_new_tokens: a.max_new_tokens.unwrap_or(d.max_new_tokens),
        num_return_sequences: a.num_return_sequences.unwrap_or(d.num_return_sequences),
        keep_syntax: a.keep_syntax,
        max_clip_tokens: a.max_clip_tokens.unwrap_or(d.max_clip_tokens),
    }
}

fn to_json(prompt: &str, r: &OptimizeResult) -> serde_json::Value {
    serde_json::json!({
        "prompt": prompt,
        "candidates": r.candidates.iter().map(|c| serde_json::json!({
            "text": c.text,
            "score": c.score,
            "clip_tokens": c.clip_tokens,
            "over_budget": c.over_budget,
            "token_ids": c.token_ids,
        })).collect::<Vec<_>>(),
        "seed": r.seed,
        "provider": r.provider.name(),
        "random_weights": r.random_weights,
        "note": if r.random_weights { Some(RANDOM_NOTE) } else { None },
    })
}

pub fn run(a: Args) -> promptist::Result<()> {
    let engine_options = EngineOptions {
        ort_library_path: a.ort_library.clone(),
        provider: match a.provider {
            ProviderArg::Cpu => ProviderChoice::Cpu,
            ProviderArg::Cuda => ProviderChoice::Cuda,
            ProviderArg::Auto => ProviderChoice::Auto,
        },
        device_id: a.device_id,
        intra_op_threads: a.threads,
        skip_checksums: a.skip_checksums,
        packed_matmul: a.matmul == "packed",
        ..Default::default()
    };
    let engine = Engine::open(&a.bundle, &engine_options)?;
    let options = OptimizeOptions::from(&params(&a));
    let result = engine.optimize(&a.prompt, &options)?;
    if result.random_weights {
        eprintln!("{RANDOM_NOTE}");
    }
    if result.candidates.iter().any(|c| c.over_budget) {
        eprintln!("note: your prompt alone is over --max-clip-tokens {}; it is returned unchanged", options.max_clip_tokens);
    }
    if let (Some(seed), false) = (result.seed, a.json) {
        eprintln!("seed: {seed} (pass --seed {seed} to repeat)");
    }
    if a.json {
        println!("{}", to_json(&a.prompt, &result));
    } else if result.candidates.len() == 1 {
        println!("{}", result.candidates[0].text);
    } else {
        for c in &result.candidates {
            println!("{:.4}\t{}", c.score, c.text);
        }
    }
    Ok(())
}
