//! AdamW (Loshchilov & Hutter 2019) as torch.optim.AdamW computes it (decoupled weight decay
//! `p *= 1 - lr*wd`, bias-corrected moments, `denom = sqrt(v)/sqrt(1-b2^t) + eps`), written over
//! tch tensors so its state (step, exp_avg, exp_avg_sq) can be saved and restored exactly; weight
//! decay only on matrices and embeddings (Hugging Face Trainer's grouping). Also global-norm
//! gradient clipping.

use std::collections::BTreeMap;
use std::path::Path;

use promptist::weights::WeightMap;
use tch::{Kind, Tensor};

use crate::error::{Result, TrainError};
use crate::model::params::{decays, from_tch, to_tch};
use crate::model::Params;

/// Hyper-parameters (defaults: the paper's SFT settings, docs/method.md §4).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AdamWConfig {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
}

impl Default for AdamWConfig {
    fn default() -> Self {
        Self { lr: 5e-5, beta1: 0.9, beta2: 0.999, eps: 1e-6, weight_decay: 0.1 }
    }
}

pub struct AdamW {
    pub cfg: AdamWConfig,
    pub step: u64,
    exp_avg: BTreeMap<String, Tensor>,
    exp_avg_sq: BTreeMap<String, Tensor>,
}

impl AdamW {
    pub fn new(cfg: AdamWConfig, params: &Params) -> Result<Self> {
        let mut exp_avg = BTreeMap::new();
        let mut exp_avg_sq = BTreeMap::new();
        for (name, p) in params.named() {
            exp_avg.insert(name.to_string(), p.f_zeros_like()?.f_detach()?);
            exp_avg_sq.insert(name.to_string(), p.f_zeros_like()?.f_detach()?);
        }
        Ok(Self { cfg, step: 0, exp_avg, exp_avg_sq })
    }

    /// One update with learning rate `lr` from the gradients in `params`.
    pub fn step(&mut self, params: &Params, lr: f64) -> Result<()> {
        let _guard = tch::no_grad_guard();
        self.step += 1;
        let c = self.cfg;
        let bc1 = 1.0 - c.beta1.powi(self.step as i32);
        let bc2 = 1.0 - c.beta2.powi(self.step as i32);
        let step_size = lr / bc1;
        let bc2_sqrt = bc2.sqrt();
        for (name, p) in params.named() {
            let g = p.f_grad()?;
            if !g.defined() {
                continue;
            }
            let mut p = p.shallow_clone();
            let m = self.exp_avg.get_mut(name).ok_or_else(|| TrainError::Checkpoint(format!("no optimizer state for {name}")))?;
            let v = self.exp_avg_sq.get_mut(name).ok_or_else(|| TrainError::Checkpoint(format!("no optimizer state for {name}")))?;
            if decays(name) && c.weight_decay != 0.0 {
                let _ = p.f_mul_scalar_(1.0 - lr * c.weight_decay)?;
            }
            // m = b1 m + (1-b1) g   (torch: lerp_(g, 1-b1))
            let _ = m.f_lerp_(&g, 1.0 - c.beta1)?;
            // v = b2 v + (1-b2) g*g
            let _ = v.f_mul_scalar_(c.beta2)?;
            let _ = v.f_addcmul_(&g, &g.f_mul_scalar(1.0 - c.beta2)?)?;
            let denom = v.f_sqrt()?.f_div_scalar(bc2_sqrt)?.f_add_scalar(c.eps)?;
            let upd = m.f_div(&denom)?.f_mul_scalar(step_size)?;
            let _ = p.f_sub_(&upd)?;
        }
        Ok(())
    }

    /// Save the state: `exp_avg.NAME`, `exp_avg_sq.NAME` as f32 safetensors (the step count goes to
    /// the trainer state).
    pub fn save(&self, path: &Path) -> Result<()> {
        let mut m = WeightMap::new();
        for (n, t) in &self.exp_avg {
            m.insert(format!("exp_avg.{n}"), from_tch(t)?);
        }
        for (n, t) in &self.exp_avg_sq {
            m.insert(format!("exp_avg_sq.{n}"), from_tch(t)?);
        }
        promptist::weights::write_safetensors(&m, path, promptist::weights::safetensors_io::StoreDtype::F32, None)?;
        Ok(())
    }

    /// Restore the moments written by [`AdamW::save`].
    pub fn load(&mut self, path: &Path, step: u64, params: &Params) -> Result<()> {
        let m = promptist::weights::read_safetensors(path)?;
        for (name, p) in params.named() {
            let shape: Vec<usize> = p.size().iter().map(|&d| d as usize).collect();
            let a = m.expect(&format!("exp_avg.{name}"), &shape)?;
            let b = m.expect(&format!("exp_avg_sq.{name}"), &shape)?;
            self.exp_avg.insert(name.to_string(), to_tch(a, params.device)?);
            self.exp_avg_sq.insert(name.to_string(), to_tch(b, params.device)?);
        }
        self.step = step;
        Ok(())
    }
}

/// Global L2 norm of all gradients (float32).
pub fn grad_norm(params: &Params) -> Result<f64> {
    let _guard = tch::no_grad_guard();
    let mut total: Option<Tensor> = None;
    for (_, p) in params.named() {
        let g = p.f_grad()?;
        if !g.defined() {
            continue;
        }
        let s = g.f_to_kind(Kind::Float)?.f_square()?.f_sum(Kind::Float)?;
        total = Some(match total {
            None => s,
            Some(t) => t.f_add(&s)?,
        });
    }
    Ok(match total {
        None => 0.0,
        Some(t) => t.f_sqrt()?.f_double_value(&[])?,
    })
}

/// Multiply every gradient by `factor`.
pub fn scale_grads(params: &Params, factor: f64) -> Result<()> {
    let _guard = tch::no_grad_guard();
    for (_, p) in params.named() {
        let mut g = p.f_grad()?;
        if g.defined() {
            let _ = g.f_mul_scalar_(factor)?;
        }
    }
    Ok(())
}
