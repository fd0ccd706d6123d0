//! Scheduler parity against diffusers 0.42 (DPMSolverMultistepScheduler, DDIMScheduler): the
//! timesteps exactly, the training schedule bit for bit, and every element of every step's output
//! over a full loop with random model outputs: within 1e-6 (scaled by max(1, |x|)) of diffusers'
//! functions evaluated in f64 on diffusers' f32 alphas_cumprod (what this crate computes), and
//! within 1e-4 of diffusers' shipped f32 run (whose own f32 rounding is the difference; printed).

mod common;

use promptist::diffusion::scheduler::dpm_solver::{DpmSolverMultistepScheduler, DpmSolverSettings};
use promptist::diffusion::scheduler::{build, Scheduler, SchedulerConfig, SchedulerKind};
use std::sync::OnceLock;

use common::{f32s, i64s, max_abs, run_json};

const SD14_CONFIG: &str = r#"{"_class_name": "PNDMScheduler", "_diffusers_version": "0.7.0.dev0",
 "beta_end": 0.012, "beta_schedule": "scaled_linear", "beta_start": 0.00085,
 "num_train_timesteps": 1000, "set_alpha_to_one": false, "skip_prk_steps": true,
 "steps_offset": 1, "trained_betas": null, "clip_sample": false}"#;

/// Per element: |rust - ref| <= TOL * max(1, |ref|) (absolute 1e-6 on unit-scale values; with
/// random model outputs samples reach |x| ~ 100, where one f32 ulp is 7.6e-6).
const TOL: f32 = 1e-6;
const TOL_F32_RUN: f32 = 1e-4;

/// max over elements of |a - b| / max(1, |b|), and max |b|.
fn max_scaled(a: &[f32], b: &[f32]) -> (f32, f32) {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).fold((0.0f32, 0.0f32), |(d, m), (x, y)| {
        (d.max((x - y).abs() / y.abs().max(1.0)), m.max(y.abs()))
    })
}

fn with(extra: &str) -> String {
    let mut v: serde_json::Value = serde_json::from_str(SD14_CONFIG).unwrap();
    let e: serde_json::Value = serde_json::from_str(extra).unwrap();
    for (k, x) in e.as_object().unwrap() {
        v[k] = x.clone();
    }
    v.to_string()
}

/// One reference run: (group, kind, steps, seed, numel, config JSON).
type Case = (&'static str, SchedulerKind, usize, u64, usize, String);

/// Every case of every test, run in ONE Python process (importing diffusers dominates the time).
fn cases() -> Vec<Case> {
    use SchedulerKind::{Ddim, DpmSolverMultistep as Dpm};
    let sd = SD14_CONFIG.to_string();
    let mut v: Vec<Case> = vec![
        ("sd14-schedule", Dpm, 20, 0, 4, sd.clone()),
        ("sd14", Dpm, 20, 1, 4 * 32 * 32, sd.clone()),
        ("sd14", Dpm, 20, 2, 2 * 4 * 16 * 16, sd),
    ];
    for (n, e) in [
        (4, "{}"),
        (10, "{}"),
        (25, "{}"),
        (20, r#"{"timestep_spacing": "leading"}"#),
        (20, r#"{"timestep_spacing": "trailing"}"#),
        (7, r#"{"timestep_spacing": "trailing"}"#),
        (20, r#"{"solver_type": "heun"}"#),
        (20, r#"{"solver_order": 1}"#),
        (10, r#"{"final_sigmas_type": "sigma_min"}"#),
        (
            20,
            r#"{"final_sigmas_type": "sigma_min", "lower_order_final": false}"#,
        ),
        (12, r#"{"prediction_type": "v_prediction"}"#),
        (
            20,
            r#"{"beta_schedule": "linear", "beta_start": 0.0001, "beta_end": 0.02}"#,
        ),
        (
            20,
            r#"{"euler_at_final": true, "final_sigmas_type": "sigma_min"}"#,
        ),
    ] {
        v.push(("dpm-variants", Dpm, n, 3, 512, with(e)));
    }
    for (n, e) in [
        (20, "{}"),
        (50, "{}"),
        (7, "{}"),
        (20, r#"{"timestep_spacing": "linspace"}"#),
        (20, r#"{"timestep_spacing": "trailing"}"#),
        (20, r#"{"set_alpha_to_one": true, "clip_sample": true}"#),
        (
            10,
            r#"{"prediction_type": "v_prediction", "steps_offset": 0}"#,
        ),
    ] {
        v.push(("ddim", Ddim, n, 4, 1024, with(e)));
    }
    v
}

/// diffusers' results for `cases()`, computed once per test binary.
fn reference() -> &'static [(Case, serde_json::Value)] {
    static REF: OnceLock<Vec<(Case, serde_json::Value)>> = OnceLock::new();
    REF.get_or_init(|| {
        let cs = cases();
        let spec: Vec<serde_json::Value> = cs
            .iter()
            .map(|(_, kind, steps, seed, n, cfg)| {
                let k = if *kind == SchedulerKind::Ddim {
                    "ddim"
                } else {
                    "dpm"
                };
                serde_json::json!([k, steps, seed, n, cfg])
            })
            .collect();
        let all = run_json(
            "score_scheduler_ref.py",
            &[&serde_json::Value::Array(spec).to_string()],
        );
        cs.into_iter()
            .zip(all.as_array().unwrap().iter().cloned())
            .collect()
    })
}

/// Checks every case of `group` (every element of every step).
fn check(group: &str) {
    let mut count = 0;
    for ((g, kind, steps, _seed, n, config_json), py) in reference() {
        if *g == group {
            check_one(py, *kind, *steps, *n, config_json);
            count += 1;
        }
    }
    assert!(count > 0, "no cases in group {group}");
}

fn check_one(
    py: &serde_json::Value,
    kind: SchedulerKind,
    steps: usize,
    n: usize,
    config_json: &str,
) {
    let config = SchedulerConfig::from_json_str(config_json).unwrap();
    let mut s: Box<dyn Scheduler> = build(kind, &config).unwrap();
    s.set_timesteps(steps).unwrap();
    assert_eq!(
        s.timesteps(),
        i64s(&py["timesteps"]).as_slice(),
        "timesteps differ ({config_json})"
    );
    let mut x = f32s(&py["sample0"]);
    let mouts = py["model_outputs"].as_array().unwrap();
    let outs = py["outputs64"].as_array().unwrap();
    let outs32 = py["outputs"].as_array().unwrap();
    assert_eq!(mouts.len(), steps);
    let ts: Vec<i64> = s.timesteps().to_vec();
    let (mut worst, mut worst32, mut worst_abs, mut mag) = (0.0f32, 0.0f32, 0.0f32, 0.0f32);
    for (k, &t) in ts.iter().enumerate() {
        let m = f32s(&mouts[k]);
        let xin = s.scale_model_input(&x, t).unwrap();
        assert_eq!(xin, x);
        x = s.step(&m, t, &x).unwrap();
        let want = f32s(&outs[k]);
        let (d, mg) = max_scaled(&x, &want);
        if std::env::var_os("SCORE_DEBUG").is_some() {
            let flips = x.iter().zip(&want).filter(|(a, b)| a != b).count();
            eprintln!("  step {k} t={t}: scaled {d:e}, elements differing {flips}");
        }
        assert!(
            d <= TOL,
            "step {k} (t={t}): scaled diff {d:e} > {TOL:e} ({config_json})"
        );
        worst = worst.max(d);
        worst_abs = worst_abs.max(max_abs(&x, &want));
        mag = mag.max(mg);
        let (d32, _) = max_scaled(&x, &f32s(&outs32[k]));
        assert!(
            d32 <= TOL_F32_RUN,
            "step {k} (t={t}): vs diffusers f32 {d32:e} > {TOL_F32_RUN:e} ({config_json})"
        );
        worst32 = worst32.max(d32);
    }
    eprintln!(
        "{kind:?} steps={steps} n={n} {config_json}: vs diffusers-f64 max scaled diff {worst:e} (max abs {worst_abs:e}, max |x| {mag}); vs diffusers-f32 max scaled diff {worst32:e}"
    );
}

#[test]
fn dpm_solver_sd14_20_steps_matches_diffusers() {
    // Timesteps are docs/method.md §3's linspace(0, 999, 21).round() reversed, first 20.
    let py = &reference()
        .iter()
        .find(|(c, _)| c.0 == "sd14-schedule")
        .unwrap()
        .1;
    let want: Vec<i64> = (0..=20)
        .rev()
        .map(|i| (i as f64 * 999.0 / 20.0).round_ties_even() as i64)
        .take(20)
        .collect();
    assert_eq!(i64s(&py["timesteps"]), want);
    // Training schedule and sigmas bit for bit.
    let mut s = DpmSolverMultistepScheduler::from_config(
        &SchedulerConfig::from_json_str(SD14_CONFIG).unwrap(),
    )
    .unwrap();
    s.set_timesteps(20).unwrap();
    assert_eq!(s.alphas_cumprod(), f32s(&py["alphas_cumprod"]).as_slice());
    let py_sigmas = f32s(&py["sigmas"]);
    assert_eq!(s.sigmas().len(), py_sigmas.len());
    for (a, b) in s.sigmas().iter().zip(&py_sigmas) {
        // diffusers' f32 sigma is within one f32 ulp of the f64 value.
        assert!(
            (a - *b as f64).abs() <= (*b as f64).abs() * 1.2e-7,
            "sigma {a} vs diffusers {b}"
        );
    }
    assert_eq!(s.timesteps(), want.as_slice());
    // The built-in Promptist settings equal the SD 1.4 config read with diffusers' defaults.
    let from_cfg =
        DpmSolverSettings::from_config(&SchedulerConfig::from_json_str(SD14_CONFIG).unwrap())
            .unwrap();
    let mut p = DpmSolverSettings::promptist();
    p.steps_offset = 1; // the SD config's steps_offset (unused by linspace spacing)
    assert_eq!(from_cfg, p);
    // Full loops on latent-sized tensors.
    check("sd14");
}

#[test]
fn dpm_solver_variants_match_diffusers() {
    check("dpm-variants");
}

#[test]
fn ddim_matches_diffusers() {
    check("ddim");
}

#[test]
fn unsupported_config_values_are_clear_errors() {
    for (kind, extra, key) in [
        (
            SchedulerKind::DpmSolverMultistep,
            r#"{"algorithm_type": "sde-dpmsolver++"}"#,
            "algorithm_type",
        ),
        (
            SchedulerKind::DpmSolverMultistep,
            r#"{"solver_order": 3}"#,
            "solver_order",
        ),
        (
            SchedulerKind::DpmSolverMultistep,
            r#"{"use_karras_sigmas": true}"#,
            "use_karras_sigmas",
        ),
        (
            SchedulerKind::DpmSolverMultistep,
            r#"{"beta_schedule": "squaredcos_cap_v2"}"#,
            "beta_schedule",
        ),
        (
            SchedulerKind::DpmSolverMultistep,
            r#"{"prediction_type": "sample"}"#,
            "prediction_type",
        ),
        (
            SchedulerKind::DpmSolverMultistep,
            r#"{"thresholding": true}"#,
            "thresholding",
        ),
        (
            SchedulerKind::Ddim,
            r#"{"timestep_spacing": "karras"}"#,
            "timestep_spacing",
        ),
        (
            SchedulerKind::Ddim,
            r#"{"trained_betas": [0.1, 0.2]}"#,
            "trained_betas",
        ),
    ] {
        let cfg = SchedulerConfig::from_json_str(&with(extra)).unwrap();
        let err = build(kind, &cfg).err().expect("must be rejected");
        assert_eq!(err.code(), promptist::Code::InvalidOptions);
        assert!(err.to_string().contains(key), "{err}");
    }
    let cfg = SchedulerConfig::from_json_str(SD14_CONFIG).unwrap();
    let mut s = build(SchedulerKind::DpmSolverMultistep, &cfg).unwrap();
    assert!(s.set_timesteps(0).is_err());
    assert!(
        s.step(&[0.0], 999, &[0.0]).is_err(),
        "step before set_timesteps"
    );
    s.set_timesteps(2).unwrap();
    assert!(s.step(&[0.0, 1.0], 999, &[0.0]).is_err(), "length mismatch");
}
