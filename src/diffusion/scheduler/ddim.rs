//! DDIM (Song et al. 2021, "Denoising Diffusion Implicit Models") with eta = 0 (deterministic), a
//! port of diffusers 0.42's `DDIMScheduler` for prediction_type `epsilon` / `v_prediction`,
//! `clip_sample`, `set_alpha_to_one`, `steps_offset` and the three timestep spacings (class default
//! `leading`, which with SD 1.x's `steps_offset: 1` gives 951, 901, ..., 1 for 20 steps).

use super::common::{check_step, num_train_timesteps, timestep_index, train_alphas_cumprod, Prediction, Spacing};
use super::config::{unsupported, SchedulerConfig};
use super::{np_arange, np_linspace, Scheduler};
use crate::{Error, Result};

const WHO: &str = "DDIMScheduler";

/// The resolved settings (diffusers' DDIM class defaults filled in).
#[derive(Debug, Clone, PartialEq)]
pub struct DdimSettings {
    pub num_train_timesteps: usize,
    pub beta_start: f64,
    pub beta_end: f64,
    pub beta_schedule: String,
    pub prediction: Prediction,
    pub clip_sample: bool,
    pub clip_sample_range: f32,
    pub set_alpha_to_one: bool,
    pub steps_offset: i64,
    pub spacing: Spacing,
}

impl DdimSettings {
    pub fn from_config(c: &SchedulerConfig) -> Result<Self> {
        if c.thresholding.unwrap_or(false) {
            return Err(unsupported(WHO, "thresholding", true));
        }
        if c.rescale_betas_zero_snr.unwrap_or(false) {
            return Err(unsupported(WHO, "rescale_betas_zero_snr", true));
        }
        if let Some(tb) = &c.trained_betas {
            return Err(unsupported(WHO, "trained_betas", tb));
        }
        let num_train_timesteps = num_train_timesteps(c, WHO)?;
        Ok(Self {
            num_train_timesteps,
            beta_start: c.beta_start.unwrap_or(0.0001),
            beta_end: c.beta_end.unwrap_or(0.02),
            beta_schedule: c.beta_schedule.clone().unwrap_or_else(|| "linear".into()),
            prediction: Prediction::parse(c.prediction_type.as_deref().unwrap_or("epsilon"), WHO)?,
            clip_sample: c.clip_sample.unwrap_or(true),
            clip_sample_range: c.clip_sample_range.unwrap_or(1.0) as f32,
            set_alpha_to_one: c.set_alpha_to_one.unwrap_or(true),
            steps_offset: c.steps_offset.unwrap_or(0),
            spacing: Spacing::parse(c.timestep_spacing.as_deref().unwrap_or("leading"), WHO)?,
        })
    }
}

pub struct DdimScheduler {
    settings: DdimSettings,
    alphas_cumprod: Vec<f32>,
    final_alpha_cumprod: f32,
    timesteps: Vec<i64>,
    num_inference_steps: usize,
}

impl DdimScheduler {
    pub fn new(settings: DdimSettings) -> Result<Self> {
        let ac = train_alphas_cumprod(
            &settings.beta_schedule,
            settings.beta_start,
            settings.beta_end,
            settings.num_train_timesteps,
            WHO,
        )?;
        let final_alpha_cumprod = if settings.set_alpha_to_one {
            1.0
        } else {
            ac[0]
        };
        Ok(Self {
            settings,
            alphas_cumprod: ac,
            final_alpha_cumprod,
            timesteps: Vec::new(),
            num_inference_steps: 0,
        })
    }

    pub fn from_config(config: &SchedulerConfig) -> Result<Self> {
        Self::new(DdimSettings::from_config(config)?)
    }

    pub fn settings(&self) -> &DdimSettings {
        &self.settings
    }

    fn alpha_at(&self, t: i64) -> Result<f32> {
        Ok(self.alphas_cumprod[timestep_index(t, self.alphas_cumprod.len(), WHO)?])
    }
}

impl Scheduler for DdimScheduler {
    fn set_timesteps(&mut self, n: usize) -> Result<()> {
        let train = self.settings.num_train_timesteps;
        if n == 0 || n > train {
            return Err(Error::InvalidOptions(format!(
                "{WHO}: the number of inference steps must be in 1..={train}, got {n}"
            )));
        }
        let t: Vec<i64> = match self.settings.spacing {
            Spacing::Linspace => np_linspace(0.0, (train - 1) as f64, n)
                .iter()
                .rev()
                .map(|x| x.round_ties_even() as i64)
                .collect(),
            Spacing::Leading => {
                let ratio = (train / n) as i64;
                (0..n as i64)
                    .rev()
                    .map(|i| i * ratio + self.settings.steps_offset)
                    .collect()
            }
            Spacing::Trailing => np_arange(train as f64, 0.0, -(train as f64 / n as f64))
                .iter()
                .map(|x| x.round_ties_even() as i64 - 1)
                .collect(),
        };
        self.timesteps = t;
        self.num_inference_steps = n;
        Ok(())
    }

    fn timesteps(&self) -> &[i64] {
        &self.timesteps
    }

    fn init_noise_sigma(&self) -> f32 {
        1.0
    }

    fn scale_model_input(&self, sample: &[f32], _timestep: i64) -> Result<Vec<f32>> {
        Ok(sample.to_vec())
    }

    fn step(&mut self, model_output: &[f32], timestep: i64, sample: &[f32]) -> Result<Vec<f32>> {
        check_step(self.num_inference_steps != 0, WHO, model_output, sample)?;
        let prev_t =
            timestep - (self.settings.num_train_timesteps / self.num_inference_steps) as i64;
        let a_t = self.alpha_at(timestep)?;
        let a_prev = if prev_t >= 0 {
            self.alpha_at(prev_t)?
        } else {
            self.final_alpha_cumprod
        };
        let (a_t, a_prev) = (a_t as f64, a_prev as f64);
        let b_t = 1.0 - a_t;
        let (sa, sb) = (a_t.sqrt(), b_t.sqrt());
        // eta = 0: std_dev_t = 0, so the direction coefficient is sqrt(1 - a_prev).
        let dir = (1.0 - a_prev).sqrt();
        let sa_prev = a_prev.sqrt();
        let clip = self
            .settings
            .clip_sample
            .then_some(self.settings.clip_sample_range as f64);
        Ok(sample
            .iter()
            .zip(model_output)
            .map(|(&x, &m)| {
                let (x, m) = (x as f64, m as f64);
                let (mut x0, eps) = match self.settings.prediction {
                    Prediction::Epsilon => ((x - sb * m) / sa, m),
                    Prediction::VPrediction => (sa * x - sb * m, sa * m + sb * x),
                };
                if let Some(r) = clip {
                    x0 = x0.clamp(-r, r);
                }
                (sa_prev * x0 + dir * eps) as f32
            })
            .collect())
    }
}
