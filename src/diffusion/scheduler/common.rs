//! Pieces the DDIM and DPM-Solver ports share, as diffusers 0.42's schedulers share them: the
//! `timestep_spacing` and `prediction_type` settings, `num_train_timesteps`, the f32
//! alphas_cumprod table of the training schedule and its lookup by timestep, and the checks
//! before a step.

use super::betas::{alphas_cumprod, betas};
use super::check_len;
use super::config::{unsupported, SchedulerConfig};
use crate::{Error, Result};

/// diffusers' `timestep_spacing`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spacing {
    Linspace,
    Leading,
    Trailing,
}

impl Spacing {
    pub(crate) fn parse(s: &str, who: &str) -> Result<Self> {
        match s {
            "linspace" => Ok(Spacing::Linspace),
            "leading" => Ok(Spacing::Leading),
            "trailing" => Ok(Spacing::Trailing),
            other => Err(unsupported(who, "timestep_spacing", other)),
        }
    }
}

/// diffusers' `prediction_type` (`sample` is not supported).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prediction {
    Epsilon,
    VPrediction,
}

impl Prediction {
    pub(crate) fn parse(s: &str, who: &str) -> Result<Self> {
        match s {
            "epsilon" => Ok(Prediction::Epsilon),
            "v_prediction" => Ok(Prediction::VPrediction),
            other => Err(unsupported(who, "prediction_type", other)),
        }
    }
}

/// `num_train_timesteps` (diffusers' default 1000); fewer than 2 is rejected.
pub(crate) fn num_train_timesteps(c: &SchedulerConfig, who: &str) -> Result<usize> {
    let n = c.num_train_timesteps.unwrap_or(1000);
    if n < 2 {
        return Err(unsupported(who, "num_train_timesteps", n));
    }
    Ok(n)
}

/// alphas_cumprod (f32) of the training schedule `beta_schedule` from `beta_start` to `beta_end`
/// over `n` timesteps.
pub(crate) fn train_alphas_cumprod(beta_schedule: &str, beta_start: f64, beta_end: f64, n: usize, who: &str) -> Result<Vec<f32>> {
    Ok(alphas_cumprod(&betas(beta_schedule, beta_start, beta_end, n, who)?))
}

/// The index of timestep `t` in a training-schedule table of `len` entries.
pub(crate) fn timestep_index(t: i64, len: usize, who: &str) -> Result<usize> {
    usize::try_from(t)
        .ok()
        .filter(|&i| i < len)
        .ok_or_else(|| Error::InvalidOptions(format!("{who}: timestep {t} is outside the schedule")))
}

/// The checks before a step: `set_timesteps` was called (`ready`) and the model output has the
/// sample's length.
pub(crate) fn check_step(ready: bool, who: &str, model_output: &[f32], sample: &[f32]) -> Result<()> {
    if !ready {
        return Err(Error::InvalidOptions(format!("{who}: call set_timesteps before step")));
    }
    check_len("model_output", model_output.len(), sample.len())
}
