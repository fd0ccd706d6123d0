//! Noise schedulers behind one trait, each a port of the diffusers 0.42 algorithm of the same name
//! (`DPMSolverMultistepScheduler`, `DDIMScheduler`), configured from `scheduler_config.json`.
//!
//! Arithmetic: the training schedule (betas, alphas_cumprod) is computed in f32 bit for bit as
//! diffusers computes it with torch on CPU. Everything derived from it (sigmas, step
//! coefficients) and every step is evaluated in f64; samples and model outputs are f32 tensors
//! (flat slices, any shape) and each new sample is rounded to f32. diffusers evaluates the same
//! formulas in f32 with torch's vectorised (SLEEF, 1-ulp) pow/log/exp, whose rounding no libm
//! reproduces, and its own f32 run drifts from the exact values by ~1e-5 relative over 25 steps
//! with random model outputs. The parity tests therefore compare against diffusers' functions run
//! in f64 (within 1e-6, scaled by max(1, |x|)) and against diffusers' shipped f32 run (1e-4).

pub(crate) mod betas;
pub mod common;
pub mod config;
pub(crate) mod ddim;
pub mod dpm_solver;

use std::path::Path;

pub use config::SchedulerConfig;
pub use ddim::DdimScheduler;
pub use dpm_solver::DpmSolverMultistepScheduler;

use crate::{Error, Result};

/// A diffusion sampler: `set_timesteps`, then for each timestep `t` in `timesteps()`:
/// `x_in = scale_model_input(x, t)`, run the model, `x = step(model_output, t, x)`.
pub trait Scheduler: Send {
    /// Prepare `num_inference_steps` timesteps and reset the solver state.
    fn set_timesteps(&mut self, num_inference_steps: usize) -> Result<()>;
    /// The timesteps (descending) of the current schedule; empty before `set_timesteps`.
    fn timesteps(&self) -> &[i64];
    /// The standard deviation of the initial noise (initial latents are N(0,1) times this).
    fn init_noise_sigma(&self) -> f32;
    /// Scale the denoising model's input for timestep `t` (identity for DPM-Solver and DDIM).
    fn scale_model_input(&self, sample: &[f32], timestep: i64) -> Result<Vec<f32>>;
    /// One denoising step: the sample at the previous (smaller) timestep.
    fn step(&mut self, model_output: &[f32], timestep: i64, sample: &[f32]) -> Result<Vec<f32>>;
}

/// Which algorithm to build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchedulerKind {
    DpmSolverMultistep,
    Ddim,
}

/// Build a scheduler of `kind` from a diffusers config (the config's `_class_name` is ignored, as
/// diffusers' `Kind.from_config(other.config)` does; SD 1.x ships a PNDM config).
pub fn build(kind: SchedulerKind, config: &SchedulerConfig) -> Result<Box<dyn Scheduler>> {
    Ok(match kind {
        SchedulerKind::DpmSolverMultistep => {
            Box::new(DpmSolverMultistepScheduler::from_config(config)?)
        }
        SchedulerKind::Ddim => Box::new(DdimScheduler::from_config(config)?),
    })
}

/// Read `scheduler_config.json` from `path` and build a scheduler of `kind`.
pub fn from_config_file(kind: SchedulerKind, path: &Path) -> Result<Box<dyn Scheduler>> {
    build(kind, &SchedulerConfig::from_file(path)?)
}

pub(crate) fn check_len(what: &str, a: usize, b: usize) -> Result<()> {
    if a != b {
        return Err(Error::InvalidOptions(format!(
            "scheduler step: {what} has {a} elements, the sample has {b}"
        )));
    }
    Ok(())
}

/// numpy's `np.linspace(start, stop, num)` (float64): `i * step + start`, last element = stop.
pub(crate) fn np_linspace(start: f64, stop: f64, num: usize) -> Vec<f64> {
    if num == 0 {
        return Vec::new();
    }
    if num == 1 {
        return vec![start];
    }
    let step = (stop - start) / (num - 1) as f64;
    let mut v: Vec<f64> = (0..num).map(|i| i as f64 * step + start).collect();
    v[num - 1] = stop;
    v
}

/// numpy's `np.arange(start, stop, step)` for floats: `start + i * step`, length
/// `ceil((stop - start) / step)`.
pub(crate) fn np_arange(start: f64, stop: f64, step: f64) -> Vec<f64> {
    let len = ((stop - start) / step).ceil().max(0.0) as usize;
    // numpy fills from the first two values: delta = (start + step) - start.
    let delta = (start + step) - start;
    (0..len).map(|i| start + i as f64 * delta).collect()
}
