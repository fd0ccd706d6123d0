//! Subcommands of `promptist-train` (clap derive): train, export, bench, demo-corpus,
//! train-tokenizer.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use promptist::export::gpt2_config::Gpt2Config;
use promptist::export::onnx::DType;
use promptist::text::gpt2::Gpt2Tokenizer;
use promptist_train::data::prepare::{prepare, DataOptions};
use promptist_train::data::read::Columns;
use promptist_train::data::sources::{build_pairs, SourceOptions};
use promptist_train::data::{bad::BadRows, OnBadRow};
use promptist_train::device::{parse_device, Precision};
use promptist_train::model::Params;
use promptist_train::sft::checkpoint::load_state;
use promptist_train::sft::optim::{AdamW, AdamWConfig};
use promptist_train::sft::{train, SftConfig};
use promptist_train::{Result, TrainError};

#[derive(Parser)]
#[command(name = "promptist-train", version, about = "Promptist trainer: SFT and PPO on tch, ONNX bundle export")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Supervised fine-tuning of a GPT-2 policy.
    Train(TrainArgs),
    /// Write a promptist bundle (ONNX policy, tokenizer, manifest) from a checkpoint folder.
    Export(ExportArgs),
    /// SFT throughput (tokens/s) against PyTorch + transformers.
    Bench(BenchArgs),
    /// Write the SYNTHETIC demo corpus (seeded).
    DemoCorpus(DemoCorpusArgs),
    /// Train a small byte-level BPE tokenizer on the training texts of some data.
    TrainTokenizer(TrainTokenizerArgs),
    /// Greedy rewrites of prompts by a checkpoint (tch, no ONNX), one "input -> output" line each.
    Generate(GenerateArgs),
    /// PPO of an SFT policy against the Promptist reward (the library's scorer).
    Ppo(crate::cli_ppo::PpoArgs),
    /// Held-out mean reward of policies under several image seeds (JSON lines on stdout).
    PpoEval(crate::cli_ppo::PpoEvalArgs),
    /// Seconds per PPO step by stage, and the reward work saved by the x-baseline cache.
    PpoBench(crate::cli_ppo::PpoBenchArgs),
}

#[derive(Args)]
struct GenerateArgs {
    #[arg(long)]
    checkpoint: PathBuf,
    #[arg(long = "prompt", required = true)]
    prompts: Vec<String>,
    #[arg(long, default_value_t = 75)]
    max_new_tokens: usize,
}

#[derive(Args, Clone)]
struct DataArgs {
    /// Data files: .jsonl, .csv or .parquet (DiffusionDB's metadata.parquet: column "prompt").
    #[arg(long = "data", required = true, num_args = 1..)]
    data: Vec<PathBuf>,
    /// Target column (default: "target", else "prompt").
    #[arg(long)]
    target_col: Option<String>,
    /// Source column for (source, target) pairs (default: "source" when present).
    #[arg(long)]
    source_col: Option<String>,
    /// Column with a rephrasing of the main content (default: "rephrase_main" when present).
    #[arg(long)]
    rephrase_main_col: Option<String>,
    /// Column with a rephrasing of the whole target (default: "rephrase_target" when present).
    #[arg(long)]
    rephrase_target_col: Option<String>,
    /// Shell command producing rephrasings (JSON lines in, JSON lines out; see data/sources.rs).
    #[arg(long)]
    rephrase_cmd: Option<String>,
    /// Source kinds for targets-only rows: comma list of mc, mcm, rmc, rtp, or all.
    #[arg(long, default_value = "all")]
    source_kinds: String,
    /// Bad rows: skip (report and go on) or error (stop at the first).
    #[arg(long, default_value = "skip")]
    on_bad_row: String,
    #[arg(long, default_value_t = 0.05)]
    val_fraction: f64,
    /// Longest example in tokens (the paper's 512; also capped by the model context).
    #[arg(long, default_value_t = 512)]
    max_length: usize,
    #[arg(long, default_value_t = 42)]
    seed: u64,
}

impl DataArgs {
    fn options(&self, context: usize) -> Result<DataOptions> {
        Ok(DataOptions {
            files: self.data.clone(),
            columns: Columns {
                target: self.target_col.clone(),
                source: self.source_col.clone(),
                rephrase_main: self.rephrase_main_col.clone(),
                rephrase_target: self.rephrase_target_col.clone(),
            },
            sources: SourceOptions::with_kinds(self.seed, &self.source_kinds, self.rephrase_cmd.clone())?,
            on_bad_row: OnBadRow::parse(&self.on_bad_row)?,
            val_fraction: self.val_fraction,
            max_length: self.max_length.min(context),
            seed: self.seed,
        })
    }
}

#[derive(Args)]
struct TrainArgs {
    #[command(flatten)]
    data: DataArgs,
    /// Output folder (checkpoints last/, best/, underfit/, metrics.jsonl, loss.png, bad_rows.jsonl).
    #[arg(long)]
    out: PathBuf,
    /// Start from a Hugging Face GPT-2 checkpoint folder (model.safetensors or pytorch_model.bin).
    #[arg(long, conflicts_with = "preset")]
    init: Option<PathBuf>,
    /// Random init with a preset shape: tiny or gpt2 (117M).
    #[arg(long)]
    preset: Option<String>,
    /// Overrides of the preset's shape (random init only).
    #[arg(long)]
    n_layer: Option<usize>,
    #[arg(long)]
    n_head: Option<usize>,
    #[arg(long)]
    n_embd: Option<usize>,
    #[arg(long)]
    n_positions: Option<usize>,
    /// tokenizer.json for random init (default: the GPT-2 tokenizer); vocab_size follows it.
    #[arg(long)]
    tokenizer: Option<PathBuf>,
    /// Continue from <out>/last (same data and seed).
    #[arg(long)]
    resume: bool,
    #[arg(long, default_value_t = 5e-5)]
    lr: f64,
    #[arg(long, default_value_t = 256)]
    batch_size: usize,
    #[arg(long, default_value_t = 8)]
    micro_batch: usize,
    #[arg(long, default_value_t = 0.1)]
    weight_decay: f64,
    #[arg(long, default_value_t = 1e-6)]
    eps: f64,
    #[arg(long, default_value_t = 0.9)]
    beta1: f64,
    #[arg(long, default_value_t = 0.999)]
    beta2: f64,
    #[arg(long, default_value_t = 15000)]
    max_steps: u64,
    #[arg(long, default_value_t = 0)]
    warmup_steps: u64,
    #[arg(long, default_value_t = 1.0)]
    max_grad_norm: f64,
    #[arg(long, default_value_t = 500)]
    eval_every: u64,
    #[arg(long, default_value_t = 500)]
    save_every: u64,
    /// Relative margin over the best validation loss for the under-fitted checkpoint.
    #[arg(long, default_value_t = 0.02)]
    underfit_tolerance: f64,
    /// cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    device: String,
    /// fp32, or bf16 / fp16 mixed precision.
    #[arg(long, default_value = "fp32")]
    precision: String,
    /// libtorch CPU threads (default: libtorch's choice).
    #[arg(long)]
    threads: Option<i32>,
    /// Mark the checkpoints and bundles as trained on SYNTHETIC data.
    #[arg(long)]
    synthetic: bool,
    /// Read and check the data, print statistics, and stop.
    #[arg(long)]
    prepare_only: bool,
    #[arg(long)]
    no_progress: bool,
}

#[derive(Args)]
struct ExportArgs {
    #[arg(long)]
    checkpoint: PathBuf,
    #[arg(long)]
    out: PathBuf,
    /// Weights, activations and KV cache in float16.
    #[arg(long)]
    fp16: bool,
    #[arg(long)]
    name: Option<String>,
    #[arg(long)]
    description: Option<String>,
    /// Keep every tensor inside model.onnx (no model.onnx_data).
    #[arg(long)]
    inline: bool,
    /// Attention in the graph: standard (any runtime) or ort-mha (ONNX Runtime's fused contrib op).
    #[arg(long, default_value = "standard")]
    attention: String,
}

#[derive(Args)]
struct BenchArgs {
    /// tiny or gpt2 (117M).
    #[arg(long, default_value = "tiny")]
    preset: String,
    #[arg(long, default_value_t = 8)]
    batch: usize,
    #[arg(long, default_value_t = 128)]
    seq: usize,
    #[arg(long, default_value_t = 5)]
    steps: usize,
    #[arg(long, default_value_t = 2)]
    warmup: usize,
    #[arg(long, default_value_t = 2)]
    threads: usize,
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Python with torch + transformers (default: $PROMPTIST_PYTHON); --no-reference skips it.
    #[arg(long)]
    python: Option<PathBuf>,
    #[arg(long)]
    no_reference: bool,
}

#[derive(Args)]
struct DemoCorpusArgs {
    #[arg(long)]
    out: PathBuf,
    #[arg(long, default_value_t = 20000)]
    n: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

#[derive(Args)]
struct TrainTokenizerArgs {
    #[command(flatten)]
    data: DataArgs,
    #[arg(long, default_value_t = 1024)]
    vocab_size: usize,
    /// Output folder: tokenizer.json (+ vocab.json, merges.txt).
    #[arg(long)]
    out: PathBuf,
}

pub fn run() -> Result<()> {
    match Cli::parse().cmd {
        Cmd::Train(a) => cmd_train(a),
        Cmd::Export(a) => cmd_export(a),
        Cmd::Bench(a) => cmd_bench(a),
        Cmd::DemoCorpus(a) => {
            promptist_train::demo::corpus::write_corpus(&a.out, a.n, a.seed)?;
            eprintln!("wrote {} SYNTHETIC targets to {}", a.n, a.out.display());
            Ok(())
        }
        Cmd::TrainTokenizer(a) => cmd_train_tokenizer(a),
        Cmd::Ppo(a) => crate::cli_ppo::cmd_ppo(a),
        Cmd::PpoEval(a) => crate::cli_ppo::cmd_ppo_eval(a),
        Cmd::PpoBench(a) => crate::cli_ppo::cmd_ppo_bench(a),
        Cmd::Generate(a) => {
            tch::set_num_threads(1);
            let (params, _) = Params::load_dir(&a.checkpoint, tch::Device::Cpu)?;
            let tok = promptist::export::convert::checkpoint_tokenizer(&a.checkpoint)?;
            for p in &a.prompts {
                let out = promptist_train::model::generate::greedy_rewrite(&params, &tok, p, a.max_new_tokens)?;
                println!("{p} -> {out}");
            }
            Ok(())
        }
    }
}

fn cmd_train(a: TrainArgs) -> Result<()> {
    let device = parse_device(&a.device)?;
    let precision = Precision::parse(&a.precision)?;
    if let Some(t) = a.threads {
        tch::set_num_threads(t);
    }
    // The checkpoint to resume from: last/, or its `.last.old` copy when a kill landed between
    // the two renames of a checkpoint replacement.
    let last = promptist_train::sft::checkpoint::resumable(&a.out.join("last"), "trainer_state.json").unwrap_or_else(|| a.out.join("last"));
    // model + tokenizer
    let (params, tok) = if a.resume {
        if !last.join("trainer_state.json").is_file() {
            return Err(TrainError::Checkpoint(format!("--resume: no checkpoint at {}", last.display())));
        }
        let (p, _) = Params::load_dir(&last, device)?;
        (p, promptist::export::convert::checkpoint_tokenizer(&last)?)
    } else if let Some(init) = &a.init {
        let (p, unused) = Params::load_dir(init, device)?;
        if !unused.is_empty() {
            eprintln!("init: ignoring {} checkpoint keys: {}", unused.len(), unused.join(", "));
        }
        (p, promptist::export::convert::checkpoint_tokenizer(init)?)
    } else {
        let tok = match &a.tokenizer {
            Some(t) => Gpt2Tokenizer::from_tokenizer_json(t)?,
            None => Gpt2Tokenizer::embedded()?,
        };
        let mut cfg = Gpt2Config::preset(a.preset.as_deref().unwrap_or("tiny"))?;
        cfg.vocab_size = tok.vocab_size();
        cfg.eos_token_id = Some(tok.eos_id());
        cfg.bos_token_id = Some(tok.eos_id());
        if let Some(v) = a.n_layer {
            cfg.n_layer = v;
        }
        if let Some(v) = a.n_head {
            cfg.n_head = v;
        }
        if let Some(v) = a.n_embd {
            cfg.n_embd = v;
        }
        if let Some(v) = a.n_positions {
            cfg.n_positions = Some(v);
        }
        (Params::random(&cfg, a.data.seed, device)?, tok)
    };
    eprintln!(
        "model: {} layers, {} heads, width {}, context {}, vocab {} ({:.2}M parameters) on {device:?}, {}",
        params.cfg.n_layer,
        params.cfg.n_head,
        params.cfg.n_embd,
        params.cfg.context(),
        params.cfg.vocab_size,
        params.count() as f64 / 1e6,
        precision.name()
    );
    let data = prepare(&a.data.options(params.cfg.context())?, &tok)?;
    std::fs::create_dir_all(&a.out).map_err(|e| TrainError::io(format!("creating {}", a.out.display()), e))?;
    let bad_path = a.out.join("bad_rows.jsonl");
    data.bad.write_jsonl(&bad_path)?;
    data.bad.print_summary(Some(&bad_path));
    data.stats.print();
    data.stats.write_json(&a.out.join("data_stats.json"))?;
    if a.prepare_only {
        return Ok(());
    }
    let cfg = SftConfig {
        adamw: AdamWConfig { lr: a.lr, beta1: a.beta1, beta2: a.beta2, eps: a.eps, weight_decay: a.weight_decay },
        batch_size: a.batch_size,
        micro_batch: a.micro_batch.min(a.batch_size),
        max_steps: a.max_steps,
        warmup_steps: a.warmup_steps,
        max_grad_norm: a.max_grad_norm,
        eval_every: a.eval_every,
        save_every: a.save_every,
        seed: a.data.seed,
        precision,
        underfit_tolerance: a.underfit_tolerance,
        progress: !a.no_progress,
        synthetic: a.synthetic,
    };
    let mut opt = AdamW::new(cfg.adamw, &params)?;
    let resume = if a.resume {
        let st = load_state(&last)?;
        opt.load(&last.join("optimizer.safetensors"), st.step, &params)?;
        eprintln!("resuming from {} at step {}", last.display(), st.step);
        Some(st)
    } else {
        None
    };
    let s = train(&params, &mut opt, &tok, &data, &a.out, &cfg, resume)?;
    eprintln!(
        "done: step {}, last train loss {:.4}, best validation loss {} (step {}), under-fitted checkpoint step {}",
        s.state.step,
        s.losses.last().copied().unwrap_or(f64::NAN),
        s.state.best_val_loss.map(|v| format!("{v:.4}")).unwrap_or_else(|| "-".into()),
        s.state.best_step.map(|v| v.to_string()).unwrap_or_else(|| "-".into()),
        s.state.underfit_step.map(|v| v.to_string()).unwrap_or_else(|| "-".into()),
    );
    Ok(())
}

fn cmd_export(a: ExportArgs) -> Result<()> {
    let opts = promptist_train::export::ExportOptions {
        dtype: if a.fp16 { DType::F16 } else { DType::F32 },
        attention: match a.attention.as_str() {
            "standard" => promptist::export::gpt2::AttentionImpl::Standard,
            "ort-mha" => promptist::export::gpt2::AttentionImpl::OrtMultiHeadAttention,
            o => return Err(TrainError::Options(format!("--attention {o:?}: expected standard or ort-mha"))),
        },
        name: a.name,
        external_threshold_bytes: if a.inline { None } else { promptist::export::onnx::SaveOptions::default().external_threshold_bytes },
        description: a.description,
    };
    let m = promptist_train::export::export_bundle(&a.checkpoint, &a.out, &opts)?;
    eprintln!("wrote bundle {} ({}) to {}", m.name, m.description, a.out.display());
    Ok(())
}

fn cmd_bench(a: BenchArgs) -> Result<()> {
    let python = if a.no_reference {
        None
    } else {
        Some(a.python.or_else(|| std::env::var_os("PROMPTIST_PYTHON").map(PathBuf::from)).ok_or_else(|| {
            TrainError::Options("bench needs the reference Python: pass --python or set PROMPTIST_PYTHON (or --no-reference)".into())
        })?)
    };
    let o = promptist_train::bench::BenchOptions {
        preset: a.preset,
        batch: a.batch,
        seq: a.seq,
        steps: a.steps,
        warmup: a.warmup,
        threads: a.threads,
        device: parse_device(&a.device)?,
        python,
    };
    let r = promptist_train::bench::run(&o)?;
    eprintln!(
        "bench {} batch {}x{} threads {}: promptist-train {:.0} tok/s, torch+transformers {}, ratio {}",
        r.preset,
        r.batch,
        r.seq,
        r.threads,
        r.tch_tokens_per_s,
        r.torch_tokens_per_s.map(|t| format!("{t:.0} tok/s")).unwrap_or_else(|| "-".into()),
        r.ratio.map(|t| format!("{t:.3}")).unwrap_or_else(|| "-".into())
    );
    println!("{}", serde_json::to_string(&r).map_err(|e| TrainError::Data(e.to_string()))?);
    Ok(())
}

fn cmd_train_tokenizer(a: TrainTokenizerArgs) -> Result<()> {
    let opts = a.data.options(usize::MAX)?;
    let mut bad = BadRows::new(opts.on_bad_row);
    let mut records = Vec::new();
    for f in &opts.files {
        records.extend(promptist_train::data::read::read_file(f, &opts.columns, &mut bad)?.0);
    }
    let pairs = build_pairs(&records, &opts.sources, &mut bad)?;
    bad.print_summary(None);
    let texts: Vec<String> = pairs.iter().flatten().map(|p| format!("{} Rephrase: {}", p.source, p.target)).collect();
    let tok = promptist_train::demo::bpe::train_tokenizer(&texts, a.vocab_size, &a.out)?;
    let path = a.out.join("tokenizer.json");
    std::fs::write(&path, tok.to_json()?).map_err(|e| TrainError::io(format!("writing {}", path.display()), e))?;
    eprintln!("tokenizer: {} tokens (<|endoftext|> = {}) from {} texts -> {}", tok.vocab_size(), tok.eos_id(), texts.len(), path.display());
    Ok(())
}
