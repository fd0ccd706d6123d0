//! From rollouts (plain token ids) to the tensors PPO trains on: prompts left-padded and responses
//! right-padded into one [batch, Lq + Lr] batch with its attention mask, and per response token
//! the log-probability under a GPT-2 (the rollout policy, the frozen SFT reference, or the policy
//! being updated) and the value network's estimate. Token j of a response sits at position
//! `Lq + j` and is predicted by position `Lq + j - 1`, which also gives its state's value.

use tch::{Device, Kind, Tensor};

use super::math::response_mask;
use super::value;
use crate::error::Result;
use crate::model::{Gpt2, Params};

/// A padded batch of prompt + response sequences.
pub struct Packed {
    /// [B, Lq + Lr] token ids (padding: `pad`).
    pub ids: Tensor,
    /// [B, Lq + Lr] 1 on real prompt tokens and on response tokens up to the first EOS.
    pub attention: Tensor,
    /// [B, Lr] f32 response mask (see `math::response_mask`).
    pub response_mask: Tensor,
    /// [B, Lr] response ids.
    pub response_ids: Tensor,
    pub lq: i64,
    pub lr: i64,
}

impl Packed {
    /// Pack prompts (`queries`, unpadded) and `responses` (generated ids, EOS included when the
    /// search ended there) on `device`.
    pub fn new(queries: &[Vec<i64>], responses: &[Vec<i64>], eos: i64, pad: i64, device: Device) -> Result<Self> {
        let b = queries.len();
        let lq = queries.iter().map(Vec::len).max().unwrap_or(0).max(1);
        let lr = responses.iter().map(Vec::len).max().unwrap_or(0).max(1);
        let l = lq + lr;
        let mut ids = vec![pad; b * l];
        let mut att = vec![0i64; b * l];
        let mut rids = vec![pad; b * lr];
        for i in 0..b {
            let q = &queries[i];
            let off = lq - q.len();
            for (j, &t) in q.iter().enumerate() {
                ids[i * l + off + j] = t;
                att[i * l + off + j] = 1;
            }
            let r = &responses[i];
            let keep = super::math::effective_len(r, eos);
            for (j, &t) in r.iter().enumerate() {
                ids[i * l + lq + j] = t;
                rids[i * lr + j] = t;
                if j < keep {
                    att[i * l + lq + j] = 1;
                }
            }
        }
        let (bi, li, lri) = (b as i64, l as i64, lr as i64);
        Ok(Packed {
            ids: Tensor::f_from_slice(&ids)?.f_view([bi, li])?.f_to_device(device)?,
            attention: Tensor::f_from_slice(&att)?.f_view([bi, li])?.f_to_device(device)?,
            response_mask: response_mask(responses, eos, lr)?.f_to_device(device)?,
            response_ids: Tensor::f_from_slice(&rids)?.f_view([bi, lri])?.f_to_device(device)?,
            lq: lq as i64,
            lr: lr as i64,
        })
    }

    /// Rows `start..start+len` of every tensor.
    pub fn rows(&self, start: i64, len: i64) -> Result<Packed> {
        Ok(Packed {
            ids: self.ids.f_narrow(0, start, len)?,
            attention: self.attention.f_narrow(0, start, len)?,
            response_mask: self.response_mask.f_narrow(0, start, len)?,
            response_ids: self.response_ids.f_narrow(0, start, len)?,
            lq: self.lq,
            lr: self.lr,
        })
    }

    pub fn batch(&self) -> i64 {
        self.ids.size()[0]
    }
}

/// Log-probabilities [B, Lr] of the response tokens under the GPT-2 `params` (masked positions
/// hold whatever the model gives: callers multiply by the response mask).
pub fn response_logprobs(params: &Params, compute: Kind, p: &Packed) -> Result<Tensor> {
    let logits = Gpt2::new(params, compute).logits_masked(&p.ids, &p.attention)?;
    let lp = logits.f_narrow(1, p.lq - 1, p.lr)?.f_log_softmax(-1, Kind::Float)?;
    Ok(lp.f_gather(-1, &p.response_ids.f_unsqueeze(-1)?, false)?.f_squeeze_dim(-1)?)
}

/// Values [B, Lr] of the states before each response token.
pub fn response_values(params: &Params, compute: Kind, p: &Packed) -> Result<Tensor> {
    let v = value::values(params, compute, &p.ids, &p.attention)?;
    Ok(v.f_narrow(1, p.lq - 1, p.lr)?)
}

/// `f` over micro-batches of rows, concatenated along the batch (no gradients).
pub fn chunked(p: &Packed, micro: usize, mut f: impl FnMut(&Packed) -> Result<Tensor>) -> Result<Tensor> {
    let _g = tch::no_grad_guard();
    let b = p.batch();
    let mut outs = Vec::new();
    let mut s = 0;
    while s < b {
        let n = (micro as i64).min(b - s);
        outs.push(f(&p.rows(s, n)?)?);
        s += n;
    }
    Ok(Tensor::f_cat(&outs, 0)?)
}
