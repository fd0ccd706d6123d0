//! The update stage (docs/method.md §5): from a scored rollout, the experience (log-probabilities of
//! the chosen tokens under the rollout policy and the frozen SFT reference, the value network's
//! estimates), the per-token KL rewards with R at the first EOS, GAE (returns before whitening,
//! advantages whitened over the batch), then `ppo_epochs` epochs of one minibatch each (the whole
//! batch, gradients accumulated over micro-batches weighted by their token share, so the update
//! equals one full-batch step) minimising `pg + vf_coef * vf`, AdamW on policy and value.

use std::time::Instant;

use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

use super::config::PpoConfig;
use super::experience::{chunked, response_logprobs, response_values, Packed};
use super::math::{gae, masked_mean, ppo_losses, token_rewards, whiten, Clip};
use super::rollout::Rollout;
use crate::error::{Result, TrainError};
use crate::model::Params;
use crate::sft::optim::{grad_norm, AdamW};

/// The three networks of a run.
pub struct Nets<'a> {
    pub policy: &'a mut Params,
    pub reference: &'a Params,
    pub value: &'a mut Params,
    pub policy_opt: &'a mut AdamW,
    pub value_opt: &'a mut AdamW,
    pub compute: Kind,
}

/// What an update did (means over its epochs where they vary).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UpdateStats {
    /// Mean over sequences of the summed per-token KL `log pi_old - log pi_sft` (before the update).
    pub kl: f64,
    pub pg_loss: f64,
    pub vf_loss: f64,
    pub clip_frac: f64,
    pub vf_clip_frac: f64,
    pub approx_kl: f64,
    pub mean_value: f64,
    pub mean_return: f64,
    /// Mean response length in tokens (up to and including the first EOS).
    pub response_len: f64,
    pub seconds: f64,
}

/// Run the update for `roll` with prompt rewards `scores`.
pub fn update(nets: &mut Nets<'_>, roll: &Rollout, scores: &[f64], cfg: &PpoConfig, eos: i64) -> Result<UpdateStats> {
    let t0 = Instant::now();
    if scores.len() != roll.responses.len() {
        return Err(TrainError::Data(format!("{} rewards for {} rollouts", scores.len(), roll.responses.len())));
    }
    if let Some((i, r)) = scores.iter().enumerate().find(|(_, s)| !s.is_finite()) {
        return Err(TrainError::NonFinite(format!("the reward of rollout {i} ({:?}) is {r}", roll.texts.get(i).map(String::as_str).unwrap_or(""))));
    }
    let device = nets.policy.device;
    let packed = Packed::new(&roll.queries, &roll.responses, eos, eos, device)?;
    let mask = packed.response_mask.shallow_clone();
    let micro = cfg.micro_batch;
    let (old_lp, ref_lp, old_v) = {
        let policy: &Params = nets.policy;
        let value: &Params = nets.value;
        let c = nets.compute;
        (
            chunked(&packed, micro, |p| response_logprobs(policy, c, p))?,
            chunked(&packed, micro, |p| response_logprobs(nets.reference, c, p))?,
            chunked(&packed, micro, |p| response_values(value, c, p))?,
        )
    };
    let (advantages, returns, kl) = {
        let _g = tch::no_grad_guard();
        let (rewards, kl) = token_rewards(&old_lp, &ref_lp, &mask, scores, cfg.beta)?;
        let (adv, ret) = gae(&rewards, &old_v, &mask, cfg.gamma, cfg.lam)?;
        (whiten(&adv, &mask)?, ret, kl)
    };
    let mut st = UpdateStats {
        kl: kl.f_sum_dim_intlist(-1, false, Kind::Float)?.f_mean(Kind::Float)?.f_double_value(&[])?,
        mean_value: masked_mean(&old_v, &mask)?.f_double_value(&[])?,
        mean_return: masked_mean(&returns, &mask)?.f_double_value(&[])?,
        response_len: mask.f_sum(Kind::Float)?.f_double_value(&[])? / packed.batch() as f64,
        ..Default::default()
    };
    let total_tokens = mask.f_sum(Kind::Float)?.f_double_value(&[])?.max(1.0);
    let clip = Clip { ratio: cfg.cliprange, value: cfg.cliprange_value, vf_coef: cfg.vf_coef };
    let b = packed.batch();
    for epoch in 0..cfg.ppo_epochs {
        nets.policy.zero_grad();
        nets.value.zero_grad();
        let mut s = 0;
        while s < b {
            let n = (micro as i64).min(b - s);
            let p = packed.rows(s, n)?;
            let m = mask.f_narrow(0, s, n)?;
            let share = m.f_sum(Kind::Float)?.f_double_value(&[])? / total_tokens;
            let rows = |t: &Tensor| t.f_narrow(0, s, n);
            let lp = response_logprobs(nets.policy, nets.compute, &p)?;
            let v = response_values(nets.value, nets.compute, &p)?;
            let l = ppo_losses(&lp, &v, &rows(&old_lp)?, &rows(&old_v)?, &rows(&advantages)?, &rows(&returns)?, &m, clip)?;
            l.loss.f_mul_scalar(share)?.f_backward()?;
            let w = share / cfg.ppo_epochs as f64;
            st.pg_loss += l.pg_loss * w;
            st.vf_loss += l.vf_loss * w;
            st.clip_frac += l.clip_frac * w;
            st.vf_clip_frac += l.vf_clip_frac * w;
            st.approx_kl += l.approx_kl * w;
            s += n;
        }
        // NaN or infinity in a loss or a gradient stops here, before either optimizer step.
        let (pn, vn) = (grad_norm(nets.policy)?, grad_norm(nets.value)?);
        if !(st.pg_loss.is_finite() && st.vf_loss.is_finite() && pn.is_finite() && vn.is_finite()) {
            return Err(TrainError::NonFinite(format!(
                "PPO epoch {epoch}: policy loss {}, value loss {}, policy gradient norm {pn}, value gradient norm {vn}",
                st.pg_loss, st.vf_loss
            )));
        }
        nets.policy_opt.step(nets.policy, cfg.lr)?;
        nets.value_opt.step(nets.value, cfg.lr)?;
    }
    st.seconds = t0.elapsed().as_secs_f64();
    Ok(st)
}
