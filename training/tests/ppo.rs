//! PPO through the REAL reward (the library's scorer on tiny random SD / CLIP graphs with the real
//! aesthetic head, seeded latents), on the CPU: a short seeded run raises the held-out mean reward
//! of the SFT policy by more than three standard deviations of the image-seed noise with the KL
//! bounded, and a run killed in the middle of a step and resumed ends in the same state, bit for
//! bit, as an uninterrupted one.

mod ppo_common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use promptist::policy::config::{DecodingConfig, EarlyStopping, Strategy};
use promptist::runtime::ProviderChoice;
use promptist_train::model::Params;
use promptist_train::ppo::config::PpoConfig;
use promptist_train::ppo::eval::evaluate;
use promptist_train::ppo::prompts::{read_prompts, PromptMix};
use promptist_train::ppo::reward::RewardStage;
use promptist_train::ppo::{train, PpoRun, StepMetrics};
use tch::{Device, Kind};

/// The small settings of these tests: 64x64 images, 3 SD steps.
fn small_cfg() -> PpoConfig {
    PpoConfig {
        steps: 30,
        batch_size: 16,
        num_beams: 4,
        min_new_tokens: 8,
        max_new_tokens: 24,
        micro_batch: 16,
        lr: 1e-4,
        image_size: 64,
        sd_steps: 3,
        sd_max_batch: 16,
        seed: 3,
        ..Default::default()
    }
}

fn eval_decoding() -> DecodingConfig {
    DecodingConfig {
        strategy: Strategy::Beam { num_beams: 4, length_penalty: -1.0, early_stopping: EarlyStopping::Heuristic },
        max_new_tokens: 24,
        num_return_sequences: 1,
    }
}

/// Learning: a seeded PPO run beats the SFT policy on held-out prompts by > 3 seed-noise sigmas.
#[test]
fn ppo_raises_held_out_reward_beyond_seed_noise() {
    let s = ppo_common::setup();
    let cfg = small_cfg();
    let out = tempfile::tempdir().unwrap();
    let reward = RewardStage::open(&s.score_bundle, &cfg, ProviderChoice::Cpu, 1, true).unwrap();
    let prompts = PromptMix::load(&[format!("{}:2", s.prompts_a.display()), s.prompts_b.display().to_string()], None).unwrap();
    let run = PpoRun {
        cfg: cfg.clone(),
        sft: s.sft.clone(),
        out: out.path().to_path_buf(),
        prompts,
        device: Device::Cpu,
        compute: Kind::Float,
        resume: false,
        progress: false,
        synthetic: true,
    };
    let t0 = Instant::now();
    let sum = train(&run, &reward).unwrap();
    let train_s = t0.elapsed().as_secs_f64();
    let m = &sum.metrics;
    assert_eq!(m.len(), cfg.steps as usize);
    let held = read_prompts(&s.held_out, None).unwrap();
    let seeds = [11u64, 12, 13, 14, 15];
    let tok = promptist::export::convert::checkpoint_tokenizer(&s.sft).unwrap();
    let (sft, _) = Params::load_dir(&s.sft, Device::Cpu).unwrap();
    let (ppo, _) = Params::load_dir(&sum.last_dir.join("policy"), Device::Cpu).unwrap();
    let before = evaluate(&sft, Kind::Float, &tok, &held, &eval_decoding(), 16, &reward, &seeds).unwrap();
    let after = evaluate(&ppo, Kind::Float, &tok, &held, &eval_decoding(), 16, &reward, &seeds).unwrap();
    let noise = before.seed_std.max(after.seed_std);
    let gain = after.reward - before.reward;
    eprintln!(
        "PPO {} steps in {train_s:.0} s: held-out reward {:.4} -> {:.4} (gain {gain:.4}, seed noise sd {noise:.4}); train reward {:.4} -> {:.4}; KL {:.3} -> {:.3}",
        cfg.steps, before.reward, after.reward, m[0].reward, m[m.len() - 1].reward, m[0].kl, m[m.len() - 1].kl
    );
    for (a, b) in held.iter().zip(before.rewrites.iter().zip(&after.rewrites)).take(4) {
        eprintln!("  {a:?}: SFT {:?} -> PPO {:?}", b.0, b.1);
    }
    assert!(gain > 3.0 * noise, "held-out gain {gain} is not above 3 x seed noise {noise}");
    let kl_max = m.iter().map(|x| x.kl).fold(f64::MIN, f64::max);
    assert!(kl_max.is_finite() && kl_max < 10.0, "KL to the SFT model not bounded: {kl_max}");
    // The metrics carry every part.
    let last = &m[m.len() - 1];
    assert!(last.cache_hit_rate > 0.9, "after the first steps every x is cached: {}", last.cache_hit_rate);
    assert!(m[0].cache_hit_rate == 0.0 && m[0].user_images > 0 && last.user_images == 0);
    assert!(out.path().join("reward.png").is_file() && out.path().join("kl.png").is_file());
}

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_promptist-train")
}

fn ppo_cmd(out: &Path, cfg: &Path, steps: u64, resume: bool) -> Command {
    let s = ppo_common::setup();
    let mut c = Command::new(bin());
    c.args(["ppo", "--no-progress", "--threads", "1", "--ort-threads", "1", "--steps", &steps.to_string()])
        .arg("--sft")
        .arg(&s.sft)
        .arg("--score-bundle")
        .arg(&s.score_bundle)
        .arg("--config")
        .arg(cfg)
        .arg("--out")
        .arg(out)
        .arg("--prompts")
        .arg(format!("{}:2", s.prompts_a.display()))
        .arg(&s.prompts_b);
    if resume {
        c.arg("--resume");
    }
    c
}

fn metrics(out: &Path) -> Vec<StepMetrics> {
    std::fs::read_to_string(out.join("metrics.jsonl")).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn state_step(out: &Path) -> Option<u64> {
    let t = std::fs::read_to_string(out.join("last/ppo_state.json")).ok()?;
    serde_json::from_str::<serde_json::Value>(&t).ok()?["step"].as_u64()
}

/// Resume: kill -9 in the middle of step 2, resume, and compare with an uninterrupted run.
#[test]
fn ppo_killed_mid_step_resumes_to_the_same_state() {
    let _ = ppo_common::setup();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("ppo.json");
    let mut c = small_cfg();
    c.steps = 3;
    std::fs::write(&cfg, serde_json::to_string(&c).unwrap()).unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let st = ppo_cmd(&a, &cfg, 3, false).status().unwrap();
    assert!(st.success());
    let ma = metrics(&a);
    let step_s = ma[1].rollout_s + ma[1].reward_s + ma[1].update_s;

    let mut child = ppo_cmd(&b, &cfg, 3, false).spawn().unwrap();
    let t0 = Instant::now();
    while state_step(&b) != Some(1) {
        assert!(t0.elapsed() < Duration::from_secs(600), "step 1 never finished");
        assert!(child.try_wait().unwrap().is_none(), "the run ended before it could be killed");
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_secs_f64(step_s * 0.4));
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(state_step(&b), Some(1), "the kill must land inside step 2 (step took {step_s:.2} s)");
    let st = ppo_cmd(&b, &cfg, 3, true).status().unwrap();
    assert!(st.success());
    for f in ["policy/model.safetensors", "value.safetensors", "policy_optimizer.safetensors", "value_optimizer.safetensors"] {
        let (x, y) = (std::fs::read(a.join("last").join(f)).unwrap(), std::fs::read(b.join("last").join(f)).unwrap());
        assert!(x == y, "{f} differs between the uninterrupted and the resumed run");
    }
    let mb = metrics(&b);
    assert_eq!(ma.len(), 3);
    assert_eq!(mb.len(), 3);
    for (x, y) in ma.iter().zip(&mb) {
        assert_eq!((x.step, x.reward.to_bits(), x.kl.to_bits(), x.pg_loss.to_bits(), x.vf_loss.to_bits()), (y.step, y.reward.to_bits(), y.kl.to_bits(), y.pg_loss.to_bits(), y.vf_loss.to_bits()));
    }
    // A resume against other prompts is refused.
    let out = ppo_cmd(&b, &cfg, 4, true).arg(&ppo_common::setup().held_out).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("prompts differ"), "{err}");
}
