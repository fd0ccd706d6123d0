//! GPT-2 forward pass (Radford et al. 2019) with the semantics of transformers'
//! `GPT2LMHeadModel` (pre-LayerNorm blocks, Conv1D projections `x @ W + b` with W [in, out],
//! causal scaled-dot-product attention, `gelu_new`, LM head tied to `wte` or separate), for training with teacher
//! forcing: right-padded batches need no padding mask, since a causal query never sees later
//! positions. Dropout is not applied (the paper fine-tunes with dropout 0).

use tch::{Kind, Tensor};

use super::params::Params;
use crate::error::{Result, TrainError};

/// GPT-2 over a parameter set, with a compute kind for mixed precision.
pub struct Gpt2<'a> {
    pub params: &'a Params,
    /// Float for fp32; BFloat16 / Half run matmuls and attention in that type, with LayerNorm,
    /// the residual stream and the logits in float32.
    pub compute: Kind,
}

impl<'a> Gpt2<'a> {
    pub fn new(params: &'a Params, compute: Kind) -> Self {
        Self { params, compute }
    }

    fn p(&self, name: &str) -> Result<&Tensor> {
        self.params.get(name)
    }

    /// Conv1D: `x @ W + b` with W [in, out], in the compute kind.
    fn conv1d(&self, x: &Tensor, prefix: &str) -> Result<Tensor> {
        let w = self.p(&format!("{prefix}.weight"))?;
        let b = self.p(&format!("{prefix}.bias"))?;
        let (x, w, b) = if self.compute == Kind::Float {
            (x.shallow_clone(), w.shallow_clone(), b.shallow_clone())
        } else {
            (x.f_to_kind(self.compute)?, w.f_to_kind(self.compute)?, b.f_to_kind(self.compute)?)
        };
        Ok(x.f_matmul(&w)?.f_add(&b)?)
    }

    /// LayerNorm in float32.
    fn layer_norm(&self, x: &Tensor, prefix: &str) -> Result<Tensor> {
        let w = self.p(&format!("{prefix}.weight"))?;
        let b = self.p(&format!("{prefix}.bias"))?;
        let e = self.params.cfg.n_embd as i64;
        let x = if x.kind() == Kind::Float { x.shallow_clone() } else { x.f_to_kind(Kind::Float)? };
        Ok(x.f_layer_norm([e], Some(w), Some(b), self.params.cfg.layer_norm_epsilon, true)?)
    }

    fn activation(&self, x: &Tensor) -> Result<Tensor> {
        match self.params.cfg.activation_function.as_str() {
            "gelu_new" | "gelu_pytorch_tanh" => Ok(x.f_gelu("tanh")?),
            "gelu" => Ok(x.f_gelu("none")?),
            other => Err(TrainError::Checkpoint(format!("activation {other:?} is not supported"))),
        }
    }

    /// Hidden states after `ln_f` (float32) for `ids` [batch, seq] (int64, positions 0..seq).
    pub fn hidden(&self, ids: &Tensor) -> Result<Tensor> {
        let cfg = &self.params.cfg;
        let (b, t) = ids.size2()?;
        if t as usize > cfg.context() {
            return Err(TrainError::Data(format!("sequence of {t} tokens exceeds the context of {}", cfg.context())));
        }
        let (e, nh) = (cfg.n_embd as i64, cfg.n_head as i64);
        let hd = e / nh;
        let wte = self.p("transformer.wte.weight")?;
        let wpe = self.p("transformer.wpe.weight")?;
        let pos = Tensor::f_arange(t, (Kind::Int64, ids.device()))?;
        let mut h = Tensor::f_embedding(wte, ids, -1, false, false)?.f_add(&Tensor::f_embedding(wpe, &pos, -1, false, false)?)?;
        for i in 0..cfg.n_layer {
            let pre = format!("transformer.h.{i}");
            let a = self.layer_norm(&h, &format!("{pre}.ln_1"))?;
            let qkv = self.conv1d(&a, &format!("{pre}.attn.c_attn"))?;
            let parts = qkv.f_split(e, -1)?;
            let heads = |x: &Tensor| -> Result<Tensor> { Ok(x.f_view([b, t, nh, hd])?.f_transpose(1, 2)?) };
            let (q, k, v) = (heads(&parts[0])?, heads(&parts[1])?, heads(&parts[2])?);
            let mut scale = if cfg.scale_attn_weights { 1.0 / (hd as f64).sqrt() } else { 1.0 };
            if cfg.scale_attn_by_inverse_layer_idx {
                scale /= (i + 1) as f64;
            }
            let y = Tensor::f_scaled_dot_product_attention::<Tensor>(&q, &k, &v, None, 0.0, true, scale, false)?;
            let y = y.f_transpose(1, 2)?.f_contiguous()?.f_view([b, t, e])?;
            let y = self.conv1d(&y, &format!("{pre}.attn.c_proj"))?;
            h = h.f_add(&y)?;
            let m = self.layer_norm(&h, &format!("{pre}.ln_2"))?;
            let m = self.activation(&self.conv1d(&m, &format!("{pre}.mlp.c_fc"))?)?;
            let m = self.conv1d(&m, &format!("{pre}.mlp.c_proj"))?;
            h = h.f_add(&m)?;
        }
        self.layer_norm(&h, "transformer.ln_f")
    }

    /// Float32 logits [batch, seq, vocab]: `h @ wte^T` (tied head) or `h @ lm_head^T`.
    pub fn logits(&self, ids: &Tensor) -> Result<Tensor> {
        let h = self.hidden(ids)?;
        let wte = if self.params.cfg.tie_word_embeddings { self.p("transformer.wte.weight")? } else { self.p(super::params::LM_HEAD)? };
        let logits = if self.compute == Kind::Float {
            h.f_matmul(&wte.f_tr()?)?
        } else {
            h.f_to_kind(self.compute)?.f_matmul(&wte.f_to_kind(self.compute)?.f_tr()?)?.f_to_kind(Kind::Float)?
        };
        Ok(logits)
    }

    /// Sum of the next-token cross-entropy over positions whose label is not -100, and the number
    /// of such positions. `labels` [batch, seq] holds, at position j, the id that position j must
    /// predict (already shifted by the caller), or -100.
    pub fn loss_sum(&self, ids: &Tensor, labels: &Tensor) -> Result<(Tensor, i64)> {
        let logits = self.logits(ids)?;
        let v = self.params.cfg.vocab_size as i64;
        let flat = logits.f_view([-1, v])?;
        let lab = labels.f_view([-1])?;
        let loss = flat.f_cross_entropy_loss::<Tensor>(&lab, None, tch::Reduction::Sum, -100, 0.0)?;
        let n = lab.f_ne(-100)?.f_sum(Kind::Int64)?.f_int64_value(&[])?;
        Ok((loss, n))
    }
}
