//! GPT-2 forward pass (Radford et al. 2019) with the semantics of transformers'
//! `GPT2LMHeadModel` (pre-LayerNorm blocks, Conv1D projections `x @ W + b` with W [in, out],
//! causal scaled-dot-product attention, `gelu_new`, LM head tied to `wte` or separate), for training with teacher
//! forcing: right-padded batches need no padding mask, since a causal query never sees later
//! positions. Padded batches (left-padded queries with right-padded responses, as PPO scores them)
//! go through `hidden_masked` / `logits_masked` with transformers' `generate()` positions and a
//! key-padding mask; `forward` also serves the KV-cached decoder (lm.rs). Dropout is not applied
//! (the paper fine-tunes with dropout 0).

use tch::{Kind, Tensor};

use super::params::Params;
use crate::error::{Result, TrainError};

/// How queries see keys in [`Gpt2::forward`].
pub(crate) enum Attn<'t> {
    /// Causal over the new tokens only (no cache, no padding): SDPA's `is_causal`.
    Causal,
    /// A boolean `[batch, 1, seq, past + seq]` mask, true = attend.
    Mask(&'t Tensor),
}

/// transformers' `generate()` positions of a (bool) attention mask [batch, seq]:
/// `cumsum(mask) - 1`, padded positions set to 1.
pub fn positions(real: &Tensor) -> Result<Tensor> {
    let pos = real.f_to_kind(Kind::Int64)?.f_cumsum(-1, Kind::Int64)?.f_sub_scalar(1)?;
    Ok(pos.f_masked_fill(&real.f_to_kind(Kind::Bool)?.f_logical_not()?, 1)?)
}

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
        let t = ids.size2()?.1;
        let pos = Tensor::f_arange(t, (Kind::Int64, ids.device()))?;
        self.forward(ids, &pos, Attn::Causal, None)
    }

    /// Float32 logits [batch, seq, vocab]: `h @ wte^T` (tied head) or `h @ lm_head^T`.
    pub fn logits(&self, ids: &Tensor) -> Result<Tensor> {
        self.head(&self.hidden(ids)?)
    }

    /// Hidden states after `ln_f` (float32 [batch, seq, n_embd]) of a padded batch: `attention_mask`
    /// [batch, seq] (int64 or bool, 1 = real token) may pad on the left (queries) and on the right
    /// (responses) at once. Positions follow transformers' `generate()`: `cumsum(mask) - 1`, with
    /// padded positions set to 1; each query sees the earlier real keys and itself (so a padded
    /// query's row is finite; its output is meaningless and must be ignored).
    pub fn hidden_masked(&self, ids: &Tensor, attention_mask: &Tensor) -> Result<Tensor> {
        let (b, t) = ids.size2()?;
        if attention_mask.size() != [b, t] {
            return Err(TrainError::Data(format!("attention_mask has shape {:?}, ids [{b}, {t}]", attention_mask.size())));
        }
        let real = attention_mask.f_to_kind(Kind::Bool)?;
        let pos = positions(&real)?;
        let dev = ids.device();
        let causal = Tensor::f_ones([t, t], (Kind::Bool, dev))?.f_tril(0)?;
        let eye = Tensor::f_eye(t, (Kind::Bool, dev))?;
        // [b, 1, t, t]: causal AND key is real, OR the diagonal.
        let allow = causal.f_unsqueeze(0)?.f_logical_and(&real.f_unsqueeze(1)?)?.f_logical_or(&eye.f_unsqueeze(0)?)?.f_unsqueeze(1)?;
        self.forward(ids, &pos, Attn::Mask(&allow), None)
    }

    /// Float32 logits [batch, seq, vocab] of [`Gpt2::hidden_masked`].
    pub fn logits_masked(&self, ids: &Tensor, attention_mask: &Tensor) -> Result<Tensor> {
        self.head(&self.hidden_masked(ids, attention_mask)?)
    }

    /// The LM head on float32 hidden states `[.., n_embd]` -> float32 logits `[.., vocab]`.
    pub fn head(&self, h: &Tensor) -> Result<Tensor> {
        let wte = if self.params.cfg.tie_word_embeddings { self.p("transformer.wte.weight")? } else { self.p(super::params::LM_HEAD)? };
        let logits = if self.compute == Kind::Float {
            h.f_matmul(&wte.f_tr()?)?
        } else {
            h.f_to_kind(self.compute)?.f_matmul(&wte.f_to_kind(self.compute)?.f_tr()?)?.f_to_kind(Kind::Float)?
        };
        Ok(logits)
    }

    /// The transformer: token + position embeddings, the blocks, `ln_f`. `pos` is [seq] or
    /// [batch, seq]. With `cache` (per layer (key, value) `[batch, heads, past, head_dim]`, empty
    /// before the first call), the new keys and values are appended to it and the queries attend
    /// to the cached keys too; `attn` then covers all `past + seq` keys.
    pub(crate) fn forward(&self, ids: &Tensor, pos: &Tensor, attn: Attn<'_>, mut cache: Option<&mut Vec<(Tensor, Tensor)>>) -> Result<Tensor> {
        let cfg = &self.params.cfg;
        let (b, t) = ids.size2()?;
        let past = match cache.as_deref() {
            Some(c) if !c.is_empty() => c[0].0.size()[2],
            _ => 0,
        };
        if (past + t) as usize > cfg.context() {
            return Err(TrainError::Data(format!("sequence of {} tokens exceeds the context of {}", past + t, cfg.context())));
        }
        if let (Some(c), Attn::Causal) = (cache.as_deref(), &attn) {
            if !c.is_empty() {
                return Err(TrainError::Data("a causal forward over a filled cache needs an explicit mask".into()));
            }
        }
        let (e, nh) = (cfg.n_embd as i64, cfg.n_head as i64);
        let hd = e / nh;
        let wte = self.p("transformer.wte.weight")?;
        let wpe = self.p("transformer.wpe.weight")?;
        let mut h = Tensor::f_embedding(wte, ids, -1, false, false)?.f_add(&Tensor::f_embedding(wpe, pos, -1, false, false)?)?;
        for i in 0..cfg.n_layer {
            let pre = format!("transformer.h.{i}");
            let a = self.layer_norm(&h, &format!("{pre}.ln_1"))?;
            let qkv = self.conv1d(&a, &format!("{pre}.attn.c_attn"))?;
            let parts = qkv.f_split(e, -1)?;
            let heads = |x: &Tensor| -> Result<Tensor> { Ok(x.f_view([b, t, nh, hd])?.f_transpose(1, 2)?) };
            let (q, mut k, mut v) = (heads(&parts[0])?, heads(&parts[1])?, heads(&parts[2])?);
            if let Some(c) = cache.as_deref_mut() {
                if c.len() > i {
                    k = Tensor::f_cat(&[&c[i].0, &k], 2)?;
                    v = Tensor::f_cat(&[&c[i].1, &v], 2)?;
                    c[i] = (k.shallow_clone(), v.shallow_clone());
                } else {
                    k = k.f_contiguous()?;
                    v = v.f_contiguous()?;
                    c.push((k.shallow_clone(), v.shallow_clone()));
                }
            }
            let mut scale = if cfg.scale_attn_weights { 1.0 / (hd as f64).sqrt() } else { 1.0 };
            if cfg.scale_attn_by_inverse_layer_idx {
                scale /= (i + 1) as f64;
            }
            let y = match attn {
                Attn::Causal => Tensor::f_scaled_dot_product_attention::<Tensor>(&q, &k, &v, None, 0.0, true, scale, false)?,
                Attn::Mask(m) => Tensor::f_scaled_dot_product_attention(&q, &k, &v, Some(m), 0.0, false, scale, false)?,
            };
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
