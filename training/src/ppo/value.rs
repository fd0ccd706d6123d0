//! The PPO networks of docs/method.md §5: the value network is a separate GPT-2 initialised from the
//! SFT checkpoint with a head `Linear(n_embd, 2*n_embd) -> ReLU -> Linear(2*n_embd, 1)` (named
//! `v_head.0.*` / `v_head.2.*` as a torch `nn.Sequential`, default torch Linear init), and the
//! policy may train only its top k blocks (the reference freezes the embeddings and the lower
//! blocks and trains 2).

use tch::{Kind, Tensor};

use crate::error::Result;
use crate::model::{Gpt2, Params};

pub const HEAD_IN_W: &str = "v_head.0.weight";
pub const HEAD_IN_B: &str = "v_head.0.bias";
pub const HEAD_OUT_W: &str = "v_head.2.weight";
pub const HEAD_OUT_B: &str = "v_head.2.bias";

/// Add a freshly initialised value head to `params` (torch's Linear default: weight and bias
/// uniform in +-1/sqrt(fan_in)), drawn from libtorch's CPU generator seeded with `seed`.
pub fn add_value_head(params: &mut Params, seed: u64) -> Result<()> {
    let e = params.cfg.n_embd as i64;
    let h = 2 * e;
    tch::manual_seed(seed as i64);
    let u = |shape: &[i64], fan_in: i64| -> Result<Tensor> {
        let b = 1.0 / (fan_in as f64).sqrt();
        Ok(Tensor::f_rand(shape, (Kind::Float, tch::Device::Cpu))?.f_mul_scalar(2.0 * b)?.f_sub_scalar(b)?)
    };
    let dev = params.device;
    params.insert(HEAD_IN_W, u(&[h, e], e)?.f_to_device(dev)?)?;
    params.insert(HEAD_IN_B, u(&[h], e)?.f_to_device(dev)?)?;
    params.insert(HEAD_OUT_W, u(&[1, h], h)?.f_to_device(dev)?)?;
    params.insert(HEAD_OUT_B, u(&[1], h)?.f_to_device(dev)?)?;
    Ok(())
}

/// The three networks of a fresh run from the SFT folder `sft` (read once): the frozen KL
/// reference, the policy and the value network (the SFT body plus a new head seeded with
/// `cfg.seed`), and their optimizers.
pub struct FreshNetworks {
    pub reference: Params,
    pub policy: Params,
    pub value: Params,
    pub policy_opt: crate::sft::optim::AdamW,
    pub value_opt: crate::sft::optim::AdamW,
}

impl FreshNetworks {
    pub fn from_sft(sft: &std::path::Path, cfg: &super::config::PpoConfig, device: tch::Device) -> Result<Self> {
        let (policy, _) = Params::load_dir(sft, device)?;
        let reference = frozen_copy(&policy)?;
        let mut value = policy.try_clone()?;
        add_value_head(&mut value, cfg.seed)?;
        let policy_opt = crate::sft::optim::AdamW::new(cfg.adamw(), &policy)?;
        let value_opt = crate::sft::optim::AdamW::new(cfg.adamw(), &value)?;
        Ok(Self { reference, policy, value, policy_opt, value_opt })
    }
}

/// A copy of `params` that needs no gradients (the KL reference).
pub fn frozen_copy(params: &Params) -> Result<Params> {
    let p = params.try_clone()?;
    for (_, t) in p.named() {
        let _ = t.f_set_requires_grad(false)?;
    }
    Ok(p)
}

/// Values [b, t] of every position of `ids` under `attention_mask`.
pub fn values(params: &Params, compute: Kind, ids: &Tensor, attention_mask: &Tensor) -> Result<Tensor> {
    let h = Gpt2::new(params, compute).hidden_masked(ids, attention_mask)?;
    let z = h.f_linear(params.get(HEAD_IN_W)?, Some(params.get(HEAD_IN_B)?))?.f_relu()?;
    Ok(z.f_linear(params.get(HEAD_OUT_W)?, Some(params.get(HEAD_OUT_B)?))?.f_squeeze_dim(-1)?)
}

/// Train only the top `k` transformer blocks (and the final LayerNorm): the embeddings (and with
/// them a tied LM head) and the lower blocks stop requiring gradients. Returns the number of
/// trainable scalars.
pub fn train_top_blocks(params: &Params, k: usize) -> Result<usize> {
    let n = params.cfg.n_layer;
    let first = n.saturating_sub(k);
    let mut trainable = 0;
    for (name, t) in params.named() {
        let keep = match block_index(name) {
            Some(i) => i >= first,
            None => name.starts_with("transformer.ln_f") || (name == crate::model::params::LM_HEAD),
        };
        let _ = t.f_set_requires_grad(keep)?;
        if keep {
            trainable += t.numel();
        }
    }
    Ok(trainable)
}

fn block_index(name: &str) -> Option<usize> {
    name.strip_prefix("transformer.h.")?.split('.').next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use promptist::export::gpt2_config::Gpt2Config;

    fn tiny() -> Params {
        let cfg = Gpt2Config::tiny();
        Params::random(&cfg, 1, tch::Device::Cpu).unwrap()
    }

    #[test]
    fn value_head_shapes_and_init_bounds() {
        let mut p = tiny();
        add_value_head(&mut p, 3).unwrap();
        let e = p.cfg.n_embd as i64;
        assert_eq!(p.get(HEAD_IN_W).unwrap().size(), vec![2 * e, e]);
        assert_eq!(p.get(HEAD_OUT_W).unwrap().size(), vec![1, 2 * e]);
        let bound = 1.0 / (e as f64).sqrt();
        assert!(p.get(HEAD_IN_W).unwrap().abs().max().double_value(&[]) <= bound);
        let ids = Tensor::from_slice(&[1i64, 2, 3, 4, 5, 6]).view([2, 3]);
        let mask = Tensor::from_slice(&[0i64, 1, 1, 1, 1, 1]).view([2, 3]);
        let v = values(&p, Kind::Float, &ids, &mask).unwrap();
        assert_eq!(v.size(), vec![2, 3]);
        assert!(v.isfinite().all().int64_value(&[]) == 1);
    }

    #[test]
    fn copies_are_independent_and_the_reference_is_frozen() {
        let p = tiny();
        let r = frozen_copy(&p).unwrap();
        let name = "transformer.h.0.attn.c_attn.weight";
        assert!(r.get(name).unwrap().equal(p.get(name).unwrap()));
        assert!(r.named().all(|(_, t)| !t.requires_grad()) && p.named().all(|(_, t)| t.requires_grad()));
        let _ = tch::no_grad(|| r.get(name).unwrap().shallow_clone().fill_(0.0));
        assert!(!r.get(name).unwrap().equal(p.get(name).unwrap()), "a copy shares no storage");
    }

    #[test]
    fn top_blocks_only() {
        let p = tiny();
        let n = p.cfg.n_layer;
        train_top_blocks(&p, 1).unwrap();
        for (name, t) in p.named() {
            let want = name.starts_with(&format!("transformer.h.{}.", n - 1)) || name.starts_with("transformer.ln_f");
            assert_eq!(t.requires_grad(), want, "{name}");
        }
    }
}
