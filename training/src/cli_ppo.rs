//! The PPO subcommands of `promptist-train`: `ppo` (train), `ppo-eval` (held-out reward of
//! policies under several image seeds) and `ppo-bench` (seconds per step by stage, and the reward
//! work the x-baseline cache saves).

use std::path::PathBuf;

use clap::Args;
use promptist::policy::config::{DecodingConfig, EarlyStopping, Strategy};
use promptist::runtime::ProviderChoice;
use promptist_train::device::{parse_device, Precision};
use promptist_train::model::Params;
use promptist_train::ppo::config::PpoConfig;
use promptist_train::ppo::prompts::{read_prompts, PromptMix};
use promptist_train::ppo::reward::RewardStage;
use promptist_train::ppo::{self, PpoRun};
use promptist_train::{Result, TrainError};

/// Options shared by the PPO subcommands.
#[derive(Args, Clone)]
pub struct PpoCommon {
    /// The reward's bundle: a promptist bundle with score components (SD, CLIP, aesthetic).
    #[arg(long)]
    score_bundle: PathBuf,
    /// PPO config (JSON; missing fields take docs/method.md §5's values).
    #[arg(long)]
    config: Option<PathBuf>,
    /// tch device for the policy: cpu, cuda, cuda:N.
    #[arg(long, default_value = "cpu")]
    device: String,
    #[arg(long, default_value = "fp32")]
    precision: String,
    /// libtorch threads.
    #[arg(long)]
    threads: Option<i32>,
    /// ONNX Runtime execution provider of the reward: cpu, cuda (error when unavailable), auto.
    #[arg(long, default_value = "cpu")]
    provider: String,
    /// ONNX Runtime intra-op threads (0: its default).
    #[arg(long, default_value_t = 0)]
    ort_threads: usize,
    /// Column of the prompt in .jsonl/.csv/.parquet prompt files (default "prompt").
    #[arg(long)]
    prompt_col: Option<String>,
    /// Override the config's steps.
    #[arg(long)]
    steps: Option<u64>,
    /// Override the config's batch size (prompts per step).
    #[arg(long)]
    batch_size: Option<usize>,
    /// Override the config's beams (= groups = returned sequences).
    #[arg(long)]
    num_beams: Option<usize>,
}

impl PpoCommon {
    fn config(&self) -> Result<PpoConfig> {
        let mut c = match &self.config {
            Some(p) => PpoConfig::from_file(p)?,
            None => PpoConfig::default(),
        };
        if let Some(s) = self.steps {
            c.steps = s;
        }
        if let Some(b) = self.batch_size {
            c.batch_size = b;
        }
        if let Some(b) = self.num_beams {
            c.num_beams = b;
        }
        c.validate()?;
        Ok(c)
    }

    fn setup(&self) -> Result<(tch::Device, tch::Kind, ProviderChoice)> {
        if let Some(t) = self.threads {
            tch::set_num_threads(t);
        }
        let device = parse_device(&self.device)?;
        let kind = Precision::parse(&self.precision)?.compute_kind();
        let provider = match self.provider.as_str() {
            "cpu" => ProviderChoice::Cpu,
            "cuda" => ProviderChoice::Cuda,
            "auto" => ProviderChoice::Auto,
            o => return Err(TrainError::Options(format!("--provider {o:?}: expected cpu, cuda or auto"))),
        };
        Ok((device, kind, provider))
    }
}

#[derive(Args)]
pub struct PpoArgs {
    #[command(flatten)]
    common: PpoCommon,
    /// The SFT checkpoint folder (Hugging Face layout) the policy, value and KL reference start from.
    #[arg(long)]
    sft: PathBuf,
    /// RL prompt files, one per domain: PATH[:WEIGHT] (.txt lines, .jsonl/.csv/.parquet column).
    #[arg(long = "prompts", required = true, num_args = 1..)]
    prompts: Vec<String>,
    /// Output folder: last/ (resumable checkpoint), metrics.jsonl, reward.png, kl.png.
    #[arg(long)]
    out: PathBuf,
    /// Continue from OUT/last.
    #[arg(long)]
    resume: bool,
    /// Recompute x's baseline on every call (no cache; the reference code's cost).
    #[arg(long)]
    no_reward_cache: bool,
    /// Write the final policy as a promptist bundle here.
    #[arg(long)]
    export: Option<PathBuf>,
    #[arg(long)]
    no_progress: bool,
    /// Mark the checkpoints as trained from synthetic data.
    #[arg(long)]
    synthetic: bool,
}

pub fn cmd_ppo(a: PpoArgs) -> Result<()> {
    let cfg = a.common.config()?;
    let (device, compute, provider) = a.common.setup()?;
    let prompts = PromptMix::load(&a.prompts, a.common.prompt_col.as_deref())?;
    let reward = RewardStage::open(&a.common.score_bundle, &cfg, provider, a.common.ort_threads, !a.no_reward_cache)?;
    let run = PpoRun { cfg, sft: a.sft, out: a.out.clone(), prompts, device, compute, resume: a.resume, progress: !a.no_progress, synthetic: a.synthetic };
    let s = ppo::train(&run, &reward)?;
    if let Some(m) = s.metrics.last() {
        eprintln!("ppo: {} steps; last reward {:.4} (aesthetic {:.4}, relevance {:.4}), kl {:.4}", s.state.step, m.reward, m.aesthetic_gain, m.relevance, m.kl);
    }
    if let Some(dir) = a.export {
        let m = promptist_train::export::export_bundle(&s.last_dir.join("policy"), &dir, &Default::default())?;
        eprintln!("wrote bundle {} to {}", m.name, dir.display());
    }
    Ok(())
}

#[derive(Args)]
pub struct PpoEvalArgs {
    #[command(flatten)]
    common: PpoCommon,
    /// Policy checkpoint folders (Hugging Face layout; a PPO run's OUT/last/policy).
    #[arg(long = "policy", required = true, num_args = 1..)]
    policies: Vec<PathBuf>,
    /// Held-out prompts (one file).
    #[arg(long)]
    prompts: PathBuf,
    /// Image seeds (comma list); the spread of their means is the seed noise.
    #[arg(long, default_value = "1,2,3,4,5")]
    seeds: String,
    /// Inference decoding: beam search with these beams and length penalty (docs/method.md §2).
    #[arg(long, default_value_t = 8)]
    beams: usize,
    #[arg(long, default_value_t = -1.0, allow_hyphen_values = true)]
    length_penalty: f32,
    #[arg(long, default_value_t = 75)]
    max_new_tokens: usize,
}

pub fn cmd_ppo_eval(a: PpoEvalArgs) -> Result<()> {
    let cfg = a.common.config()?;
    let (device, compute, provider) = a.common.setup()?;
    let prompts = read_prompts(&a.prompts, a.common.prompt_col.as_deref())?;
    let seeds = a.seeds.split(',').map(|s| s.trim().parse::<u64>().map_err(|_| TrainError::Options(format!("--seeds: bad seed {s:?}")))).collect::<Result<Vec<_>>>()?;
    let reward = RewardStage::open(&a.common.score_bundle, &cfg, provider, a.common.ort_threads, true)?;
    let dc = DecodingConfig {
        strategy: Strategy::Beam { num_beams: a.beams, length_penalty: a.length_penalty, early_stopping: EarlyStopping::Heuristic },
        max_new_tokens: a.max_new_tokens,
        num_return_sequences: 1,
    };
    for p in &a.policies {
        let (params, _) = Params::load_dir(p, device)?;
        let tok = promptist::export::convert::checkpoint_tokenizer(p)?;
        let e = ppo::eval::evaluate(&params, compute, &tok, &prompts, &dc, cfg.micro_batch, &reward, &seeds)?;
        let line = serde_json::json!({"policy": p.display().to_string(), "evaluation": e});
        println!("{line}");
    }
    Ok(())
}

#[derive(Args)]
pub struct PpoBenchArgs {
    #[command(flatten)]
    common: PpoCommon,
    #[arg(long)]
    sft: PathBuf,
    #[arg(long = "prompts", required = true, num_args = 1..)]
    prompts: Vec<String>,
}

pub fn cmd_ppo_bench(a: PpoBenchArgs) -> Result<()> {
    let cfg = a.common.config()?;
    let (device, compute, provider) = a.common.setup()?;
    let prompts = PromptMix::load(&a.prompts, a.common.prompt_col.as_deref())?;
    let cached = RewardStage::open(&a.common.score_bundle, &cfg, provider, a.common.ort_threads, true)?;
    let uncached = RewardStage::open(&a.common.score_bundle, &cfg, provider, a.common.ort_threads, false)?;
    let s = ppo::bench::bench(&a.sft, &prompts, &cfg, &cached, &uncached, compute, device)?;
    for st in &s.steps {
        eprintln!(
            "step {}: rollout {:.2}s reward {:.2}s (no cache {:.2}s) update {:.2}s; images {} (no cache {}); cache hits {:.0}%; reward {:.4}",
            st.step, st.rollout_s, st.reward_s, st.reward_nocache_s, st.update_s, st.images, st.images_nocache, 100.0 * st.cache_hit_rate, st.mean_reward
        );
    }
    eprintln!(
        "per step: rollout {:.2}s + reward {:.2}s + update {:.2}s = {:.2}s; reward without the cache / with it: time {:.2}x, SD images {:.2}x",
        s.mean_rollout_s, s.mean_reward_s, s.mean_update_s, s.mean_step_s, s.reward_time_ratio, s.image_ratio
    );
    println!("{}", serde_json::to_string(&s).map_err(|e| TrainError::Data(e.to_string()))?);
    Ok(())
}
