//! `promptist bench`: run the decoder on token-id prompts from a JSON request and report the ids,
//! scores, decision margins, wall time, where the time went (graph runs vs cache moves vs host
//! search) and peak RSS. tests/python/bench_decode.py and test_decode_parity.py drive it and
//! compare with transformers `generate()` on the same weights.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ort::session::Session;
use promptist::policy::config::{DecodingConfig, EarlyStopping, Strategy};
use promptist::policy::{generate, CausalLm, Controls, Gpt2Dims, OnnxGpt2, PaddedBatch};
use promptist::{Error, Result};
use serde::Deserialize;

#[derive(clap::Args)]
pub struct Args {
    /// A bundle folder (uses policy/model.onnx and policy/config.json), a folder holding
    /// model.onnx + config.json, or an .onnx file (then give --config).
    #[arg(long)]
    model: PathBuf,
    /// GPT-2 config.json (when --model is an .onnx file).
    #[arg(long)]
    config: Option<PathBuf>,
    /// The request: {"prompts": [[ids...]...], "strategy": "beam"|"greedy"|"diverse"|"sample", ...}.
    #[arg(long)]
    ids_json: PathBuf,
    /// ONNX Runtime intra-op threads (0 = its default).
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Run the whole request this many times (timings of each are reported).
    #[arg(long, default_value_t = 1)]
    repeat: usize,
    /// Write an ONNX Runtime profile (JSON trace) with this file-name prefix.
    #[arg(long)]
    profile: Option<PathBuf>,
    /// CPU matrix products of the graph: `packed` (promptist's kernel, the engine's default on an
    /// AVX-512F CPU) or `ort` (ONNX Runtime's own Gemm).
    #[arg(long, default_value = "packed", value_parser = ["packed", "ort"])]
    matmul: String,
    /// Write the JSON report here instead of stdout.
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Deserialize)]
struct Request {
    prompts: Vec<Vec<u32>>,
    #[serde(default = "d_strategy")]
    strategy: String,
    #[serde(default = "d_beams")]
    num_beams: usize,
    #[serde(default = "d_lp")]
    length_penalty: f32,
    #[serde(default)]
    early_stopping: Option<String>,
    #[serde(default = "d_one")]
    num_beam_groups: usize,
    #[serde(default)]
    diversity_penalty: f32,
    #[serde(default = "d_new")]
    max_new_tokens: usize,
    #[serde(default)]
    min_new_tokens: usize,
    #[serde(default = "d_one")]
    num_return_sequences: usize,
    #[serde(default = "d_temp")]
    temperature: f32,
    #[serde(default)]
    top_k: usize,
    #[serde(default = "d_temp")]
    top_p: f32,
    #[serde(default)]
    seed: Option<u64>,
    /// true: all prompts in one generate call (one padded batch); false: one call per prompt.
    #[serde(default)]
    batch: bool,
}

fn d_strategy() -> String {
    "beam".into()
}
fn d_beams() -> usize {
    8
}
fn d_lp() -> f32 {
    -1.0
}
fn d_one() -> usize {
    1
}
fn d_new() -> usize {
    75
}
fn d_temp() -> f32 {
    1.0
}

impl Request {
    fn config(&self) -> Result<DecodingConfig> {
        let early_stopping = match self.early_stopping.as_deref() {
            None | Some("heuristic") | Some("false") => EarlyStopping::Heuristic,
            Some("true") => EarlyStopping::True,
            Some("never") => EarlyStopping::Never,
            Some(o) => return Err(Error::InvalidOptions(format!("unknown early_stopping `{o}`"))),
        };
        let strategy = match self.strategy.as_str() {
            "greedy" => Strategy::Greedy,
            "beam" => Strategy::Beam { num_beams: self.num_beams, length_penalty: self.length_penalty, early_stopping },
            "diverse" => Strategy::DiverseBeam {
                num_beams: self.num_beams,
                num_beam_groups: self.num_beam_groups,
                diversity_penalty: self.diversity_penalty,
                length_penalty: self.length_penalty,
                early_stopping,
            },
            "sample" => Strategy::Sample { temperature: self.temperature, top_k: self.top_k, top_p: self.top_p, seed: self.seed },
            o => return Err(Error::InvalidOptions(format!("unknown strategy `{o}`"))),
        };
        Ok(DecodingConfig { strategy, max_new_tokens: self.max_new_tokens, num_return_sequences: self.num_return_sequences })
    }
}

/// Wraps a model and accounts the time spent in each of its calls.
struct Timed<M> {
    inner: M,
    prefill: Duration,
    step: Duration,
    select: Duration,
    steps: usize,
}

impl<M: CausalLm> CausalLm for Timed<M> {
    fn vocab_size(&self) -> usize {
        self.inner.vocab_size()
    }
    fn max_positions(&self) -> usize {
        self.inner.max_positions()
    }
    fn prefill(&mut self, batch: &PaddedBatch) -> Result<()> {
        let t = Instant::now();
        let r = self.inner.prefill(batch);
        self.prefill += t.elapsed();
        r
    }
    fn select_rows(&mut self, src: &[usize]) -> Result<()> {
        let t = Instant::now();
        let r = self.inner.select_rows(src);
        self.select += t.elapsed();
        r
    }
    fn step(&mut self, tokens: &[u32]) -> Result<()> {
        let t = Instant::now();
        let r = self.inner.step(tokens);
        self.step += t.elapsed();
        self.steps += 1;
        r
    }
    fn rows(&self) -> usize {
        self.inner.rows()
    }
    fn logits(&self) -> &[f32] {
        self.inner.logits()
    }
}

fn resolve(model: &Path, config: Option<&Path>) -> Result<(PathBuf, PathBuf)> {
    if model.is_dir() {
        let dir = if model.join("policy").is_dir() { model.join("policy") } else { model.to_path_buf() };
        let cfg = config.map(Path::to_path_buf).unwrap_or_else(|| dir.join("config.json"));
        return Ok((dir.join("model.onnx"), cfg));
    }
    match config {
        Some(c) => Ok((model.to_path_buf(), c.to_path_buf())),
        None => Err(Error::InvalidOptions("--config is required when --model is a file".into())),
    }
}

/// User + system CPU seconds of this process so far (getrusage).
fn cpu_seconds() -> f64 {
    // SAFETY: libc::rusage is plain C data for which all-zero bytes are a valid value.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage only writes the struct we pass, which lives for the call.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) } != 0 {
        return f64::NAN;
    }
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// Peak resident set size of this process in KiB (`VmHWM` in /proc/self/status).
fn vm_hwm_kib() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

pub fn run(args: Args) -> Result<()> {
    let (onnx, cfg_path) = resolve(&args.model, args.config.as_deref())?;
    let cfg_text = std::fs::read_to_string(&cfg_path).map_err(|e| Error::io(format!("reading {}", cfg_path.display()), e))?;
    let dims = Gpt2Dims::from_config_json(&cfg_text)?;
    let req_text = std::fs::read_to_string(&args.ids_json).map_err(|e| Error::io(format!("reading {}", args.ids_json.display()), e))?;
    let req: Request = serde_json::from_str(&req_text).map_err(|e| Error::InvalidOptions(format!("{}: {e}", args.ids_json.display())))?;
    let cfg = req.config()?;

    let lib = std::env::var_os("ORT_DYLIB_PATH").ok_or_else(|| Error::RuntimeNotFound("ORT_DYLIB_PATH is not set".into()))?;
    let t_load = Instant::now();
    let env = ort::init_from(&lib)
        .map_err(|e| Error::RuntimeNotFound(format!("{}: {e}", PathBuf::from(&lib).display())))?
        .build()?;
    let mut builder = Session::builder(&env)?;
    if args.threads > 0 {
        builder = builder.with_intra_threads(args.threads).map_err(|e| Error::Inference(e.to_string()))?;
    }
    if let Some(p) = &args.profile {
        builder = builder.with_profiling(p).map_err(|e| Error::Inference(e.to_string()))?;
    }
    let rewritten = if args.matmul == "packed" {
        Some(promptist::runtime::packed_gemm::prepare(&onnx)?.ok_or_else(|| {
            Error::InvalidOptions("--matmul packed: this CPU lacks AVX-512F or the graph has no constant MatMul/Gemm".into())
        })?)
    } else {
        None
    };
    let session = match rewritten {
        Some(rw) => rw.commit(builder, &onnx)?,
        None => builder.commit_from_file(&onnx)?,
    };
    let mut model = Timed { inner: OnnxGpt2::new(session, dims)?, prefill: Duration::ZERO, step: Duration::ZERO, select: Duration::ZERO, steps: 0 };
    let load_s = t_load.elapsed().as_secs_f64();

    let mut seconds = Vec::new();
    let mut results = Vec::new();
    let mut seed = None;
    for rep in 0..args.repeat.max(1) {
        model.prefill = Duration::ZERO;
        model.step = Duration::ZERO;
        model.select = Duration::ZERO;
        model.steps = 0;
        let t = Instant::now();
        let cpu0 = cpu_seconds();
        let mut outs = Vec::new();
        let groups: Vec<Vec<Vec<u32>>> = if req.batch { vec![req.prompts.clone()] } else { req.prompts.iter().map(|p| vec![p.clone()]).collect() };
        for g in &groups {
            let mut ctl = Controls::gpt2();
            ctl.min_new_tokens = req.min_new_tokens;
            let o = generate(&mut model, g, &cfg, &mut ctl)?;
            seed = o.seed;
            outs.extend(o.prompts);
        }
        let total = t.elapsed().as_secs_f64();
        seconds.push(serde_json::json!({
            "total": total,
            "cpu": cpu_seconds() - cpu0,
            "prefill": model.prefill.as_secs_f64(),
            "steps": model.step.as_secs_f64(),
            "select_rows": model.select.as_secs_f64(),
            "host": total - model.prefill.as_secs_f64() - model.step.as_secs_f64() - model.select.as_secs_f64(),
            "num_steps": model.steps,
        }));
        if rep == 0 {
            results = outs
                .iter()
                .map(|p| {
                    serde_json::json!({
                        "hypotheses": p.hypotheses.iter().map(|h| serde_json::json!({"tokens": h.tokens, "score": h.score, "finished": h.finished})).collect::<Vec<_>>(),
                        "margin": if p.margin.gap.is_finite() { serde_json::json!(p.margin.gap) } else { serde_json::Value::Null },
                        "margin_step": if p.margin.step == usize::MAX { -1i64 } else { p.margin.step as i64 },
                    })
                })
                .collect();
        }
    }
    let report = serde_json::json!({
        "results": results,
        "seed": seed,
        "load_seconds": load_s,
        "runs": seconds,
        "vm_hwm_kib": vm_hwm_kib(),
        "threads": args.threads,
        "matmul": args.matmul,
    });
    let text = serde_json::to_string(&report).map_err(|e| Error::Internal(e.to_string()))?;
    match &args.out {
        Some(p) => std::fs::write(p, text).map_err(|e| Error::io(format!("writing {}", p.display()), e))?,
        None => println!("{text}"),
    }
    Ok(())
}
