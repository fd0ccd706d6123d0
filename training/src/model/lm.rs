//! The tch GPT-2 as the library's [`promptist::policy::CausalLm`] (a KV-cached decoder in the
//! manner of transformers' `generate()` with `use_cache=True`), so the trainer's rollouts run the
//! library's own decoders (its diverse beam search: transformers 4.53.3 `_group_beam_search`).
//! The cache (per layer keys and values `[rows, heads, past, head_dim]`), the padding mask and the
//! next positions stay on the parameters' device; only the last position's logits come to the
//! host. Everything runs under `no_grad`.

use promptist::policy::{CausalLm, PaddedBatch};
use tch::{Kind, Tensor};

use super::gpt2::{Attn, Gpt2};
use super::params::Params;
use crate::error::TrainError;

/// A KV-cached decoder over [`Params`] (see the module doc).
pub struct TchLm<'a> {
    model: Gpt2<'a>,
    /// Per layer (key, value) `[rows, heads, past, head_dim]`, in the compute kind.
    cache: Vec<(Tensor, Tensor)>,
    /// `[rows, past]` bool, true on real tokens.
    mask: Option<Tensor>,
    /// `[rows]` int64: the position id of each row's next token.
    next_pos: Option<Tensor>,
    rows: usize,
    /// `[rows, vocab]` row-major float32 on the host.
    logits: Vec<f32>,
    /// Reused buffer of row reorders (the logits are large: rows x 50257 floats).
    spare: Vec<f32>,
}

fn lib_err(e: TrainError) -> promptist::Error {
    match e {
        TrainError::Promptist(e) => e,
        other => promptist::Error::Inference(other.to_string()),
    }
}

impl<'a> TchLm<'a> {
    /// A decoder over `params` with matmuls and attention in `compute` (Float, BFloat16, Half).
    pub fn new(params: &'a Params, compute: Kind) -> Self {
        Self { model: Gpt2::new(params, compute), cache: Vec::new(), mask: None, next_pos: None, rows: 0, logits: Vec::new(), spare: Vec::new() }
    }

    fn state(&self) -> promptist::Result<(&Tensor, &Tensor)> {
        match (&self.mask, &self.next_pos) {
            (Some(m), Some(p)) => Ok((m, p)),
            _ => Err(promptist::Error::Internal("TchLm used before prefill".into())),
        }
    }

    /// Run `ids` [rows, t] with positions `pos` and the full key mask `keys` [rows, past + t]
    /// (bool); keep the new cache and the last position's logits.
    fn run(&mut self, ids: &Tensor, pos: &Tensor, keys: &Tensor) -> std::result::Result<(), TrainError> {
        let (rows, t) = ids.size2()?;
        let total = keys.size()[1];
        let past = total - t;
        let dev = ids.device();
        // query i (absolute past + i) sees key j when j <= past + i and key j is real, or j = past + i.
        let qi = Tensor::f_arange_start(past, total, (Kind::Int64, dev))?.f_unsqueeze(1)?;
        let kj = Tensor::f_arange(total, (Kind::Int64, dev))?.f_unsqueeze(0)?;
        let causal = kj.f_le_tensor(&qi)?;
        let diag = kj.f_eq_tensor(&qi)?;
        let allow = causal.f_unsqueeze(0)?.f_logical_and(&keys.f_unsqueeze(1)?)?.f_logical_or(&diag.f_unsqueeze(0)?)?.f_unsqueeze(1)?;
        let h = self.model.forward(ids, pos, Attn::Mask(&allow), Some(&mut self.cache))?;
        let last = h.f_select(1, t - 1)?;
        let logits = self.model.head(&last)?.f_to_kind(Kind::Float)?.f_to_device(tch::Device::Cpu)?.f_contiguous()?;
        let n = rows as usize * self.model.params.cfg.vocab_size;
        // into the reused host buffer (no fresh allocation per step)
        self.logits.resize(n, 0.0);
        logits.f_copy_data(&mut self.logits, n)?;
        Ok(())
    }

    fn prefill_inner(&mut self, batch: &PaddedBatch) -> std::result::Result<(), TrainError> {
        let dev = self.model.params.device;
        let shape = [batch.rows as i64, batch.seq_len as i64];
        let ids = Tensor::f_from_slice(&batch.input_ids)?.f_view(shape)?.f_to_device(dev)?;
        let mask = Tensor::f_from_slice(&batch.attention_mask)?.f_view(shape)?.f_to_device(dev)?.f_to_kind(Kind::Bool)?;
        let pos = Tensor::f_from_slice(&batch.position_ids)?.f_view(shape)?.f_to_device(dev)?;
        let lengths: Vec<i64> = batch.lengths.iter().map(|&l| l as i64).collect();
        self.cache.clear();
        self.mask = None;
        self.next_pos = None;
        self.rows = 0;
        self.run(&ids, &pos, &mask)?;
        self.mask = Some(mask);
        self.next_pos = Some(Tensor::f_from_slice(&lengths)?.f_to_device(dev)?);
        self.rows = batch.rows;
        Ok(())
    }

    fn select_inner(&mut self, src: &[usize]) -> std::result::Result<(), TrainError> {
        let dev = self.model.params.device;
        let idx: Vec<i64> = src.iter().map(|&s| s as i64).collect();
        let idx = Tensor::f_from_slice(&idx)?.f_to_device(dev)?;
        for (k, v) in self.cache.iter_mut() {
            *k = k.f_index_select(0, &idx)?;
            *v = v.f_index_select(0, &idx)?;
        }
        let (mask, pos) = self.state()?;
        let (mask, pos) = (mask.f_index_select(0, &idx)?, pos.f_index_select(0, &idx)?);
        self.mask = Some(mask);
        self.next_pos = Some(pos);
        let v = self.model.params.cfg.vocab_size;
        if self.logits.len() == self.rows * v {
            let mut logits = std::mem::take(&mut self.spare);
            logits.clear();
            for &s in src {
                logits.extend_from_slice(&self.logits[s * v..(s + 1) * v]);
            }
            self.spare = std::mem::replace(&mut self.logits, logits);
        }
        self.rows = src.len();
        Ok(())
    }

    fn step_inner(&mut self, tokens: &[u32]) -> std::result::Result<(), TrainError> {
        let dev = self.model.params.device;
        let (mask, pos) = self.state()?;
        let (mask, pos) = (mask.shallow_clone(), pos.shallow_clone());
        let ids: Vec<i64> = tokens.iter().map(|&t| t as i64).collect();
        let ids = Tensor::f_from_slice(&ids)?.f_view([self.rows as i64, 1])?.f_to_device(dev)?;
        let keys = Tensor::f_cat(&[&mask, &Tensor::f_ones([self.rows as i64, 1], (Kind::Bool, dev))?], 1)?;
        self.run(&ids, &pos.f_unsqueeze(1)?, &keys)?;
        self.mask = Some(keys);
        self.next_pos = Some(pos.f_add_scalar(1)?);
        Ok(())
    }
}

impl CausalLm for TchLm<'_> {
    fn vocab_size(&self) -> usize {
        self.model.params.cfg.vocab_size
    }

    fn max_positions(&self) -> usize {
        self.model.params.cfg.context()
    }

    fn prefill(&mut self, batch: &PaddedBatch) -> promptist::Result<()> {
        let _g = tch::no_grad_guard();
        self.prefill_inner(batch).map_err(lib_err)
    }

    fn select_rows(&mut self, src: &[usize]) -> promptist::Result<()> {
        if let Some(&bad) = src.iter().find(|&&s| s >= self.rows) {
            return Err(promptist::Error::Internal(format!("select_rows: source row {bad} is out of range (rows {})", self.rows)));
        }
        let _g = tch::no_grad_guard();
        self.select_inner(src).map_err(lib_err)
    }

    fn step(&mut self, tokens: &[u32]) -> promptist::Result<()> {
        if tokens.len() != self.rows {
            return Err(promptist::Error::Internal(format!("step: {} tokens for {} rows", tokens.len(), self.rows)));
        }
        let past = self.mask.as_ref().map(|m| m.size()[1] as usize).unwrap_or(0);
        if past + 1 > self.max_positions() {
            return Err(promptist::Error::PromptTooLong { tokens: past, new_tokens: 1, context: self.max_positions() });
        }
        let _g = tch::no_grad_guard();
        self.step_inner(tokens).map_err(lib_err)
    }

    fn rows(&self) -> usize {
        self.rows
    }

    fn logits(&self) -> &[f32] {
        &self.logits
    }
}
