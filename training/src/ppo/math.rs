//! The PPO arithmetic of docs/method.md §3 and §5 (Schulman et al. 2017, GAE from Schulman et al.
//! 2016, as the early trlx that Promptist's reference vendors computes it), over [batch, T]
//! response-token tensors: per-token KL rewards with the prompt's reward placed at the first EOS,
//! the response mask (tokens after the first EOS are masked), GAE, masked whitening and the clipped
//! policy and value losses. Pure functions of tensors, so each is tested on hand-made inputs.

use tch::{Kind, Tensor};

use crate::error::Result;

/// Response mask [B, T] (f32): 1 on a response's tokens up to and including its first EOS (all of
/// its `len` tokens when it has none), 0 after.
pub fn response_mask(responses: &[Vec<i64>], eos: i64, width: usize) -> Result<Tensor> {
    let mut m = vec![0f32; responses.len() * width];
    for (b, r) in responses.iter().enumerate() {
        for j in 0..effective_len(r, eos).min(width) {
            m[b * width + j] = 1.0;
        }
    }
    Ok(Tensor::f_from_slice(&m)?.f_view([responses.len() as i64, width as i64])?)
}

/// Tokens of `r` that take part: up to and including the first EOS.
pub fn effective_len(r: &[i64], eos: i64) -> usize {
    r.iter().position(|&t| t == eos).map_or(r.len(), |p| p + 1)
}

/// Per-token rewards [B, T] (docs/method.md §3): every response token gets
/// `-beta * (logprob - ref_logprob)`; at the response's first EOS (or, when it has none, at its
/// last token) that value is REPLACED by the prompt's reward `scores[b]`; tokens after it are 0.
/// Returns the rewards and the per-token KL `logprob - ref_logprob` (masked).
pub fn token_rewards(logprobs: &Tensor, ref_logprobs: &Tensor, mask: &Tensor, scores: &[f64], beta: f64) -> Result<(Tensor, Tensor)> {
    let kl = logprobs.f_sub(ref_logprobs)?.f_mul(mask)?;
    let rewards = kl.f_mul_scalar(-beta)?;
    let (b, _t) = mask.size2()?;
    let lens = mask.f_sum_dim_intlist(-1, false, Kind::Int64)?;
    let lens = Vec::<i64>::try_from(&lens.f_to_device(tch::Device::Cpu)?)?;
    for i in 0..b as usize {
        if lens[i] == 0 {
            continue;
        }
        let last = lens[i] - 1;
        let _ = rewards.f_get(i as i64)?.f_get(last)?.f_fill_(scores[i])?;
    }
    Ok((rewards.f_mul(mask)?, kl))
}

/// Generalised advantage estimation over each response (gamma, lambda), backwards from its last
/// masked-in token, with the value after the end taken as 0. Returns (advantages, returns) with
/// `returns = advantages + values` (before any whitening), both masked.
pub fn gae(rewards: &Tensor, values: &Tensor, mask: &Tensor, gamma: f64, lam: f64) -> Result<(Tensor, Tensor)> {
    let (_b, t) = rewards.size2()?;
    let values = values.f_mul(mask)?;
    let mut next_value = values.f_select(1, 0)?.f_zeros_like()?;
    let mut last_adv = next_value.f_zeros_like()?;
    let mut advs: Vec<Tensor> = Vec::with_capacity(t as usize);
    for j in (0..t).rev() {
        let m = mask.f_select(1, j)?;
        let v = values.f_select(1, j)?;
        let delta = rewards.f_select(1, j)?.f_add(&next_value.f_mul_scalar(gamma)?)?.f_sub(&v)?;
        let adv = delta.f_add(&last_adv.f_mul_scalar(gamma * lam)?)?.f_mul(&m)?;
        next_value = v;
        last_adv = adv.shallow_clone();
        advs.push(adv);
    }
    advs.reverse();
    let adv = Tensor::f_stack(&advs, 1)?;
    let ret = adv.f_add(&values)?.f_mul(mask)?;
    Ok((adv, ret))
}

/// Mean of `x` over the positions where `mask` is 1.
pub fn masked_mean(x: &Tensor, mask: &Tensor) -> Result<Tensor> {
    Ok(x.f_mul(mask)?.f_sum(Kind::Float)?.f_div(&mask.f_sum(Kind::Float)?.f_clamp_min(1.0)?)?)
}

/// Whitening over the masked positions: `(x - mean) / sqrt(var + 1e-8)` with the biased
/// variance; masked-out positions become 0.
pub fn whiten(x: &Tensor, mask: &Tensor) -> Result<Tensor> {
    let mean = masked_mean(x, mask)?;
    let centered = x.f_sub(&mean)?;
    let var = masked_mean(&centered.f_square()?, mask)?;
    Ok(centered.f_mul(&var.f_add_scalar(1e-8)?.f_rsqrt()?)?.f_mul(mask)?)
}

/// The PPO losses of one minibatch and their statistics.
pub struct Losses {
    /// `pg + vf_coef * vf` (the tensor to back-propagate).
    pub loss: Tensor,
    pub pg_loss: f64,
    pub vf_loss: f64,
    /// Share of tokens whose ratio was clipped.
    pub clip_frac: f64,
    /// Share of tokens whose value was clipped.
    pub vf_clip_frac: f64,
    /// `mean(old_logprob - logprob)`, a KL estimate of the update.
    pub approx_kl: f64,
}

/// Clipping options of the objective.
#[derive(Debug, Clone, Copy)]
pub struct Clip {
    pub ratio: f64,
    pub value: f64,
    pub vf_coef: f64,
}

/// The clipped policy loss `mean(max(-A r, -A clip(r, 1-e, 1+e)))` and the clipped value loss
/// `0.5 * mean(max((V - R)^2, (V_clip - R)^2))` with `V_clip = old_V + clip(V - old_V, -c, c)`,
/// means over the masked tokens; `loss = pg + vf_coef * vf` (docs/method.md §5).
#[allow(clippy::too_many_arguments)]
pub fn ppo_losses(
    logprobs: &Tensor,
    values: &Tensor,
    old_logprobs: &Tensor,
    old_values: &Tensor,
    advantages: &Tensor,
    returns: &Tensor,
    mask: &Tensor,
    clip: Clip,
) -> Result<Losses> {
    let vclip = values.f_sub(old_values)?.f_clamp(-clip.value, clip.value)?.f_add(old_values)?;
    let vf1 = values.f_sub(returns)?.f_square()?;
    let vf2 = vclip.f_sub(returns)?.f_square()?;
    let vf = masked_mean(&vf1.f_maximum(&vf2)?, mask)?.f_mul_scalar(0.5)?;
    let vf_clip_frac = masked_mean(&vf2.f_gt_tensor(&vf1)?.f_to_kind(Kind::Float)?, mask)?;

    let log_ratio = logprobs.f_sub(old_logprobs)?.f_mul(mask)?;
    let ratio = log_ratio.f_exp()?;
    let pg1 = advantages.f_neg()?.f_mul(&ratio)?;
    let pg2 = advantages.f_neg()?.f_mul(&ratio.f_clamp(1.0 - clip.ratio, 1.0 + clip.ratio)?)?;
    let pg = masked_mean(&pg1.f_maximum(&pg2)?, mask)?;
    let clip_frac = masked_mean(&pg2.f_gt_tensor(&pg1)?.f_to_kind(Kind::Float)?, mask)?;
    let approx_kl = masked_mean(&log_ratio.f_neg()?, mask)?;
    let loss = pg.f_add(&vf.f_mul_scalar(clip.vf_coef)?)?;
    Ok(Losses {
        pg_loss: pg.f_double_value(&[])?,
        vf_loss: vf.f_double_value(&[])?,
        clip_frac: clip_frac.f_double_value(&[])?,
        vf_clip_frac: vf_clip_frac.f_double_value(&[])?,
        approx_kl: approx_kl.f_double_value(&[])?,
        loss,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t2(rows: &[&[f32]]) -> Tensor {
        let w = rows[0].len() as i64;
        let flat: Vec<f32> = rows.iter().flat_map(|r| r.iter().copied()).collect();
        Tensor::from_slice(&flat).view([rows.len() as i64, w])
    }

    fn v2(t: &Tensor) -> Vec<Vec<f64>> {
        let (b, w) = t.size2().unwrap();
        (0..b).map(|i| (0..w).map(|j| t.double_value(&[i, j])).collect()).collect()
    }

    fn close(a: &[Vec<f64>], b: &[Vec<f64>], tol: f64) {
        for (ra, rb) in a.iter().zip(b) {
            for (x, y) in ra.iter().zip(rb) {
                assert!((x - y).abs() <= tol, "{a:?} vs {b:?}");
            }
        }
    }

    #[test]
    fn mask_stops_at_first_eos_inclusive() {
        let m = response_mask(&[vec![5, 6, 0, 7], vec![5, 0, 0, 0], vec![1, 2, 3]], 0, 4).unwrap();
        assert_eq!(v2(&m), vec![vec![1., 1., 1., 0.], vec![1., 1., 0., 0.], vec![1., 1., 1., 0.]]);
    }

    #[test]
    fn kl_rewards_with_score_replacing_the_eos_token() {
        // Row 0: EOS at index 2 (mask 1,1,1,0); row 1: no EOS, 2 tokens (mask 1,1,0,0).
        let lp = t2(&[&[-1.0, -2.0, -0.5, -9.0], &[-1.0, -1.0, -7.0, -7.0]]);
        let rf = t2(&[&[-1.5, -1.0, -0.5, -1.0], &[-2.0, -0.5, -1.0, -1.0]]);
        let mask = t2(&[&[1., 1., 1., 0.], &[1., 1., 0., 0.]]);
        let (r, kl) = token_rewards(&lp, &rf, &mask, &[3.0, -4.0], 0.2).unwrap();
        // -0.2 * (lp - ref): row 0: 0.5 -> -0.1, -1.0 -> 0.2, EOS replaced by 3.0, after: 0.
        close(&v2(&r), &[vec![-0.1, 0.2, 3.0, 0.0], vec![-0.2, -4.0, 0.0, 0.0]], 1e-6);
        close(&v2(&kl), &[vec![0.5, -1.0, 0.0, 0.0], vec![1.0, -0.5, 0.0, 0.0]], 1e-6);
    }

    #[test]
    fn gae_matches_a_hand_computation() {
        // gamma 1, lambda 0.95, one row of 3 tokens then padding.
        let r = t2(&[&[0.1, -0.2, 1.0, 0.0]]);
        let v = t2(&[&[0.5, 0.4, 0.3, 9.0]]);
        let m = t2(&[&[1., 1., 1., 0.]]);
        let (a, ret) = gae(&r, &v, &m, 1.0, 0.95).unwrap();
        let d2 = 1.0 - 0.3; // r2 + 0 - v2
        let d1 = -0.2 + 0.3 - 0.4;
        let d0 = 0.1 + 0.4 - 0.5;
        let a2 = d2;
        let a1 = d1 + 0.95 * a2;
        let a0 = d0 + 0.95 * a1;
        close(&v2(&a), &[vec![a0, a1, a2, 0.0]], 1e-6);
        close(&v2(&ret), &[vec![a0 + 0.5, a1 + 0.4, a2 + 0.3, 0.0]], 1e-6);
        // gamma 0.5, lambda 1: plain discounted returns minus values.
        let (a, _) = gae(&r, &v, &m, 0.5, 1.0).unwrap();
        let g2 = 1.0;
        let g1 = -0.2 + 0.5 * g2;
        let g0 = 0.1 + 0.5 * g1;
        close(&v2(&a), &[vec![g0 - 0.5, g1 - 0.4, g2 - 0.3, 0.0]], 1e-6);
    }

    #[test]
    fn whitening_uses_masked_positions_only() {
        let x = t2(&[&[1.0, 3.0, 100.0], &[5.0, 100.0, 100.0]]);
        let m = t2(&[&[1., 1., 0.], &[1., 0., 0.]]);
        let w = whiten(&x, &m).unwrap();
        // masked values 1, 3, 5: mean 3, biased var 8/3.
        let s = (8.0f64 / 3.0 + 1e-8).sqrt();
        close(&v2(&w), &[vec![-2.0 / s, 0.0, 0.0], vec![2.0 / s, 0.0, 0.0]], 1e-5);
    }

    #[test]
    fn clipped_policy_and_value_losses() {
        let m = t2(&[&[1., 1., 0.]]);
        let old = t2(&[&[0.0, 0.0, 0.0]]);
        // ratios e^0.5 = 1.649 (clipped at 1.2) and e^-0.5 = 0.607 (clipped at 0.8).
        let lp = t2(&[&[0.5, -0.5, 3.0]]);
        let adv = t2(&[&[1.0, 1.0, 0.0]]);
        let old_v = t2(&[&[1.0, 1.0, 0.0]]);
        let v = t2(&[&[1.5, 1.1, 0.0]]);
        let ret = t2(&[&[2.0, 0.0, 0.0]]);
        let l = ppo_losses(&lp, &v, &old, &old_v, &adv, &ret, &m, Clip { ratio: 0.2, value: 0.2, vf_coef: 2.3 }).unwrap();
        // token 0: A=1, r=1.649: max(-1.649, -1.2) = -1.2 (clipped); token 1: r=0.607: max(-0.607, -0.8) = -0.607.
        let pg = (-1.2 + -(-0.5f64).exp()) / 2.0;
        assert!((l.pg_loss - pg).abs() < 1e-5, "{} vs {pg}", l.pg_loss);
        assert!((l.clip_frac - 0.5).abs() < 1e-6);
        // values: token 0: V=1.5, Vclip=1.2, R=2: max(0.25, 0.64) = 0.64; token 1: V=1.1 (inside), (1.1)^2=1.21.
        let vf = 0.5 * (0.64 + 1.21) / 2.0;
        assert!((l.vf_loss - vf).abs() < 1e-5, "{} vs {vf}", l.vf_loss);
        assert!((l.vf_clip_frac - 0.5).abs() < 1e-6);
        let total = l.loss.double_value(&[]);
        assert!((total - (pg + 2.3 * vf)).abs() < 1e-5);
        assert!((l.approx_kl - 0.0).abs() < 1e-6, "mean(old - new) over the two tokens = 0");
        // A negative advantage clips the other side.
        let adv = t2(&[&[-1.0, -1.0, 0.0]]);
        let l = ppo_losses(&lp, &v, &old, &old_v, &adv, &ret, &m, Clip { ratio: 0.2, value: 0.2, vf_coef: 2.3 }).unwrap();
        let pg = ((0.5f64).exp() + 0.8) / 2.0;
        assert!((l.pg_loss - pg).abs() < 1e-5, "{} vs {pg}", l.pg_loss);
    }

    #[test]
    fn policy_gradient_is_zero_outside_the_clip_range() {
        let m = t2(&[&[1.]]);
        let zero = t2(&[&[0.0]]);
        let lp = t2(&[&[0.5]]).set_requires_grad(true);
        let adv = t2(&[&[1.0]]);
        let l = ppo_losses(&lp, &zero, &zero, &zero, &adv, &zero, &m, Clip { ratio: 0.2, value: 0.2, vf_coef: 0.0 }).unwrap();
        l.loss.backward();
        assert_eq!(lp.grad().double_value(&[0, 0]), 0.0, "clipped ratio gives no gradient");
        let lp = t2(&[&[0.1]]).set_requires_grad(true);
        let l = ppo_losses(&lp, &zero, &zero, &zero, &adv, &zero, &m, Clip { ratio: 0.2, value: 0.2, vf_coef: 0.0 }).unwrap();
        l.loss.backward();
        assert!((lp.grad().double_value(&[0, 0]) + (0.1f64).exp()).abs() < 1e-5, "d(-A e^lp)/dlp = -e^lp");
    }
}
