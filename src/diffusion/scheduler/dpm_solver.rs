//! DPM-Solver++ multistep (Lu et al. 2022, "DPM-Solver++"), a port of diffusers 0.42's
//! `DPMSolverMultistepScheduler` for the configurations Stable Diffusion uses: algorithm_type
//! `dpmsolver++`, solver_order 1 or 2, solver_type `midpoint` or `heun`, `lower_order_final`,
//! `euler_at_final`, final_sigmas_type `zero` / `sigma_min`, timestep_spacing `linspace` / `leading`
//! / `trailing`, prediction_type `epsilon` or `v_prediction`, betas `linear` / `scaled_linear`.
//! Other values are rejected at construction.
//!
//! With diffusers' class defaults (timestep_spacing `linspace`) and 20 steps the timesteps are
//! `linspace(0, 999, 21).round()` reversed without its last element: exactly docs/method.md §3.

pub use super::common::{Prediction, Spacing};
use super::common::{check_step, num_train_timesteps, timestep_index, train_alphas_cumprod};
use super::config::{unsupported, SchedulerConfig};
use super::{np_arange, np_linspace, Scheduler};
use crate::{Error, Result};

const WHO: &str = "DPMSolverMultistepScheduler";

/// The resolved settings (diffusers' defaults for this class filled in).
#[derive(Debug, Clone, PartialEq)]
pub struct DpmSolverSettings {
    pub num_train_timesteps: usize,
    pub beta_start: f64,
    pub beta_end: f64,
    pub beta_schedule: String,
    pub solver_order: usize,
    pub prediction: Prediction,
    /// true: `heun`, false: `midpoint`.
    pub heun: bool,
    pub lower_order_final: bool,
    pub euler_at_final: bool,
    /// true: final sigma `sigma_min`; false: `zero`.
    pub final_sigma_min: bool,
    pub spacing: Spacing,
    pub steps_offset: i64,
}

impl DpmSolverSettings {
    /// Resolve a diffusers config with this class's defaults; unsupported values are errors.
    pub fn from_config(c: &SchedulerConfig) -> Result<Self> {
        let flag = |v: Option<bool>, key: &str| -> Result<()> {
            if v.unwrap_or(false) {
                Err(unsupported(WHO, key, true))
            } else {
                Ok(())
            }
        };
        flag(c.thresholding, "thresholding")?;
        flag(c.use_karras_sigmas, "use_karras_sigmas")?;
        flag(c.use_exponential_sigmas, "use_exponential_sigmas")?;
        flag(c.use_beta_sigmas, "use_beta_sigmas")?;
        flag(c.use_lu_lambdas, "use_lu_lambdas")?;
        flag(c.use_flow_sigmas, "use_flow_sigmas")?;
        flag(c.use_dynamic_shifting, "use_dynamic_shifting")?;
        flag(c.rescale_betas_zero_snr, "rescale_betas_zero_snr")?;
        if let Some(tb) = &c.trained_betas {
            return Err(unsupported(WHO, "trained_betas", tb));
        }
        if let Some(vt) = &c.variance_type {
            return Err(unsupported(WHO, "variance_type", vt));
        }
        if let Some(l) = c.lambda_min_clipped {
            if l.0 != f64::NEG_INFINITY {
                return Err(unsupported(WHO, "lambda_min_clipped", l.0));
            }
        }
        let algo = c.algorithm_type.as_deref().unwrap_or("dpmsolver++");
        // diffusers maps the deprecated "deis" to dpmsolver++.
        if algo != "dpmsolver++" && algo != "deis" {
            return Err(unsupported(WHO, "algorithm_type", algo));
        }
        let solver_order = c.solver_order.unwrap_or(2);
        if !(1..=2).contains(&solver_order) {
            return Err(unsupported(WHO, "solver_order", solver_order));
        }
        let heun = match c.solver_type.as_deref().unwrap_or("midpoint") {
            "midpoint" | "logrho" | "bh1" | "bh2" => false,
            "heun" => true,
            other => return Err(unsupported(WHO, "solver_type", other)),
        };
        let final_sigma_min = match c.final_sigmas_type.as_deref().unwrap_or("zero") {
            "zero" => false,
            "sigma_min" => true,
            other => return Err(unsupported(WHO, "final_sigmas_type", other)),
        };
        let num_train_timesteps = num_train_timesteps(c, WHO)?;
        Ok(Self {
            num_train_timesteps,
            beta_start: c.beta_start.unwrap_or(0.0001),
            beta_end: c.beta_end.unwrap_or(0.02),
            beta_schedule: c.beta_schedule.clone().unwrap_or_else(|| "linear".into()),
            solver_order,
            prediction: Prediction::parse(c.prediction_type.as_deref().unwrap_or("epsilon"), WHO)?,
            heun,
            lower_order_final: c.lower_order_final.unwrap_or(true),
            euler_at_final: c.euler_at_final.unwrap_or(false),
            final_sigma_min,
            spacing: Spacing::parse(c.timestep_spacing.as_deref().unwrap_or("linspace"), WHO)?,
            steps_offset: c.steps_offset.unwrap_or(0),
        })
    }

    /// The Promptist reward's scheduler (docs/method.md §3): SD 1.x betas (scaled_linear
    /// 0.00085..0.012, 1000 steps), order 2, midpoint, lower_order_final, linspace spacing.
    pub fn promptist() -> Self {
        Self {
            num_train_timesteps: 1000,
            beta_start: 0.00085,
            beta_end: 0.012,
            beta_schedule: "scaled_linear".into(),
            solver_order: 2,
            prediction: Prediction::Epsilon,
            heun: false,
            lower_order_final: true,
            euler_at_final: false,
            final_sigma_min: false,
            spacing: Spacing::Linspace,
            steps_offset: 0,
        }
    }
}

/// `(alpha_t, sigma_t)` of a VP schedule from sigma = sqrt((1 - a) / a) (f64).
fn alpha_sigma(sigma: f64) -> (f64, f64) {
    let alpha = 1.0 / (sigma * sigma + 1.0).sqrt();
    (alpha, sigma * alpha)
}

/// log-SNR lambda = log(alpha) - log(sigma) (+inf at sigma = 0, as diffusers).
fn lambda(alpha: f64, sigma: f64) -> f64 {
    alpha.ln() - sigma.ln()
}

pub struct DpmSolverMultistepScheduler {
    settings: DpmSolverSettings,
    alphas_cumprod: Vec<f32>,
    timesteps: Vec<i64>,
    /// Per-step sigmas plus the final sigma (len = timesteps + 1), f64.
    sigmas: Vec<f64>,
    /// The last `solver_order` converted model outputs (x0 predictions), oldest first.
    model_outputs: Vec<Option<Vec<f64>>>,
    lower_order_nums: usize,
    step_index: Option<usize>,
}

impl DpmSolverMultistepScheduler {
    pub fn new(settings: DpmSolverSettings) -> Result<Self> {
        let alphas_cumprod = train_alphas_cumprod(
            &settings.beta_schedule,
            settings.beta_start,
            settings.beta_end,
            settings.num_train_timesteps,
            WHO,
        )?;
        let order = settings.solver_order;
        Ok(Self {
            alphas_cumprod,
            settings,
            timesteps: Vec::new(),
            sigmas: Vec::new(),
            model_outputs: vec![None; order],
            lower_order_nums: 0,
            step_index: None,
        })
    }

    pub fn from_config(config: &SchedulerConfig) -> Result<Self> {
        Self::new(DpmSolverSettings::from_config(config)?)
    }

    pub fn settings(&self) -> &DpmSolverSettings {
        &self.settings
    }

    /// alphas_cumprod of the training schedule (f32, as diffusers).
    pub fn alphas_cumprod(&self) -> &[f32] {
        &self.alphas_cumprod
    }

    /// The step sigmas followed by the final sigma: sqrt((1 - a) / a) in f64 from the f32
    /// alphas_cumprod (diffusers rounds them to f32 with torch's `** 0.5`, within 1 f32 ulp of these).
    pub fn sigmas(&self) -> &[f64] {
        &self.sigmas
    }

    /// The index of the next step (None before the first `step`).
    pub fn step_index(&self) -> Option<usize> {
        self.step_index
    }

    fn compute_timesteps(&self, n: usize) -> Vec<i64> {
        let last = self.settings.num_train_timesteps as f64; // lambda_min_clipped = -inf
        match self.settings.spacing {
            Spacing::Linspace => {
                let mut v: Vec<i64> = np_linspace(0.0, last - 1.0, n + 1)
                    .iter()
                    .map(|x| x.round_ties_even() as i64)
                    .collect();
                v.reverse();
                v.pop();
                v
            }
            Spacing::Leading => {
                let ratio = (self.settings.num_train_timesteps / (n + 1)) as i64;
                let mut v: Vec<i64> = (0..=n as i64)
                    .map(|i| i * ratio + self.settings.steps_offset)
                    .collect();
                v.reverse();
                v.pop();
                v
            }
            Spacing::Trailing => {
                let ratio = self.settings.num_train_timesteps as f64 / n as f64;
                np_arange(last, 0.0, -ratio)
                    .iter()
                    .map(|x| x.round_ties_even() as i64 - 1)
                    .collect()
            }
        }
    }

    fn index_for_timestep(&self, t: i64) -> usize {
        let hits: Vec<usize> = self
            .timesteps
            .iter()
            .enumerate()
            .filter(|(_, &x)| x == t)
            .map(|(i, _)| i)
            .collect();
        match hits.len() {
            0 => self.timesteps.len() - 1,
            1 => hits[0],
            _ => hits[1],
        }
    }

    fn convert_model_output(&self, model_output: &[f32], sample: &[f32], i: usize) -> Vec<f64> {
        let (alpha_t, sigma_t) = alpha_sigma(self.sigmas[i]);
        let it = sample
            .iter()
            .zip(model_output)
            .map(|(&x, &m)| (x as f64, m as f64));
        match self.settings.prediction {
            Prediction::Epsilon => it.map(|(x, e)| (x - sigma_t * e) / alpha_t).collect(),
            Prediction::VPrediction => it.map(|(x, v)| alpha_t * x - sigma_t * v).collect(),
        }
    }

    fn first_order(&self, x0: &[f64], sample: &[f32], i: usize) -> Vec<f32> {
        let (alpha_t, sigma_t) = alpha_sigma(self.sigmas[i + 1]);
        let (alpha_s, sigma_s) = alpha_sigma(self.sigmas[i]);
        let h = lambda(alpha_t, sigma_t) - lambda(alpha_s, sigma_s);
        let a = sigma_t / sigma_s;
        let b = alpha_t * ((-h).exp() - 1.0);
        sample
            .iter()
            .zip(x0)
            .map(|(&x, &d)| (a * x as f64 - b * d) as f32)
            .collect()
    }

    fn second_order(&self, m0: &[f64], m1: &[f64], sample: &[f32], i: usize) -> Vec<f32> {
        let (alpha_t, sigma_t) = alpha_sigma(self.sigmas[i + 1]);
        let (alpha_s0, sigma_s0) = alpha_sigma(self.sigmas[i]);
        let (alpha_s1, sigma_s1) = alpha_sigma(self.sigmas[i - 1]);
        let lambda_t = lambda(alpha_t, sigma_t);
        let lambda_s0 = lambda(alpha_s0, sigma_s0);
        let lambda_s1 = lambda(alpha_s1, sigma_s1);
        let h = lambda_t - lambda_s0;
        let r0 = (lambda_s0 - lambda_s1) / h;
        let a = sigma_t / sigma_s0;
        let em1 = (-h).exp() - 1.0;
        let b = alpha_t * em1;
        // D1 = (m0 - m1) / r0; midpoint: x = a x - b D0 - b/2 D1; heun: x = a x - b D0 + c D1.
        let c = if self.settings.heun {
            alpha_t * (em1 / h + 1.0)
        } else {
            -0.5 * b
        };
        sample
            .iter()
            .zip(m0.iter().zip(m1))
            .map(|(&x, (&d0, &p))| {
                let d1 = (1.0 / r0) * (d0 - p);
                (a * x as f64 - b * d0 + c * d1) as f32
            })
            .collect()
    }
}

impl Scheduler for DpmSolverMultistepScheduler {
    fn set_timesteps(&mut self, n: usize) -> Result<()> {
        if n == 0 {
            return Err(Error::InvalidOptions(
                "the number of inference steps must be at least 1".into(),
            ));
        }
        if n > self.settings.num_train_timesteps {
            return Err(Error::InvalidOptions(format!(
                "{n} inference steps exceed the {} training timesteps",
                self.settings.num_train_timesteps
            )));
        }
        let timesteps = self.compute_timesteps(n);
        // sigma = sqrt((1 - a) / a) (np.interp at integer timesteps picks entries exactly).
        let all: Vec<f64> = self
            .alphas_cumprod
            .iter()
            .map(|&a| {
                let a = a as f64;
                ((1.0 - a) / a).sqrt()
            })
            .collect();
        let mut sigmas = Vec::with_capacity(timesteps.len() + 1);
        for &t in &timesteps {
            sigmas.push(all[timestep_index(t, all.len(), WHO)?]);
        }
        sigmas.push(if self.settings.final_sigma_min {
            all[0]
        } else {
            0.0
        });
        self.timesteps = timesteps;
        self.sigmas = sigmas;
        self.model_outputs = vec![None; self.settings.solver_order];
        self.lower_order_nums = 0;
        self.step_index = None;
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
        check_step(!self.timesteps.is_empty(), WHO, model_output, sample)?;
        let i = match self.step_index {
            Some(i) => i,
            None => self.index_for_timestep(timestep),
        };
        let n = self.timesteps.len();
        if i >= n {
            return Err(Error::InvalidOptions(format!(
                "{WHO}: all {n} steps were already taken"
            )));
        }
        let s = &self.settings;
        let lower_order_final = i == n - 1
            && (s.euler_at_final || (s.lower_order_final && n < 15) || !s.final_sigma_min);
        // (diffusers' `lower_order_second` only matters for order 3, which is rejected.)
        let x0 = self.convert_model_output(model_output, sample, i);
        let order = s.solver_order;
        self.model_outputs.rotate_left(1);
        self.model_outputs[order - 1] = Some(x0);
        let prev = if order == 1 || self.lower_order_nums < 1 || lower_order_final {
            let m0 = self.model_outputs[order - 1].as_deref().unwrap_or(&[]);
            self.first_order(m0, sample, i)
        } else {
            let m0 = self.model_outputs[order - 1].as_deref().unwrap_or(&[]);
            let m1 = self.model_outputs[order - 2]
                .as_deref()
                .ok_or_else(|| Error::Internal(format!("{WHO}: missing previous model output")))?;
            self.second_order(m0, m1, sample, i)
        };
        if self.lower_order_nums < order {
            self.lower_order_nums += 1;
        }
        self.step_index = Some(i + 1);
        Ok(prev)
    }
}
