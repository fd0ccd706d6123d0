//! GPT-2 with a KV cache over an ONNX Runtime session, in optimum's I/O layout (`input_ids`,
//! `attention_mask`, `position_ids`, `past_key_values.N.key/value` -> `logits`, `present.N.key/value`).
//! The cache stays in ONNX Runtime's output values between steps. A beam reorder does not gather
//! the cache (transformers' `Cache.reorder_cache` copies every row with `index_select`): logical
//! rows map to physical rows, a beam that continues from a row it alone uses stays there, and
//! only rows that several beams share are copied, in place, into rows no beam needs any more.
//! The cache keeps the graph's own element type (float32 or float16, from the session's metadata;
//! see [`super::kv_cache`]); float16 logits are converted to f32 for the host search.

use std::collections::HashMap;

use ort::session::{Session, SessionInputValue};
use ort::value::{DynValue, TensorElementType, TensorRef};

use crate::policy::kv_cache::{FloatType, GraphFloat, KvCache};
use crate::policy::model::{CausalLm, PaddedBatch};
use crate::{Error, Result};

/// The shape facts of a GPT-2 graph (from the Hugging Face `config.json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gpt2Dims {
    pub n_layer: usize,
    pub n_head: usize,
    pub head_dim: usize,
    pub vocab_size: usize,
    pub n_positions: usize,
}

impl Gpt2Dims {
    /// The shape of a GPT-2 `config.json` (read by the one GPT-2 config reader,
    /// [`crate::export::Gpt2Config`]).
    pub fn from_config_json(text: &str) -> Result<Self> {
        Ok(Self::from_config(&crate::export::Gpt2Config::from_json(text)?))
    }
    /// The shape of a parsed GPT-2 config.
    pub fn from_config(c: &crate::export::Gpt2Config) -> Self {
        Gpt2Dims { n_layer: c.n_layer, n_head: c.n_head, head_dim: c.head_dim(), vocab_size: c.vocab_size, n_positions: c.context() }
    }
}

#[derive(Debug, Clone, Copy)]
enum Slot {
    InputIds,
    AttentionMask,
    PositionIds,
    /// Index into the cache vector (2 * layer + 0 for key, + 1 for value).
    Past(usize),
}

/// GPT-2 over ONNX Runtime (see the module doc).
pub struct OnnxGpt2 {
    session: Session,
    dims: Gpt2Dims,
    slots: Vec<Slot>,
    present_names: Vec<String>,
    cache: KvCache,
    logits_type: FloatType,
    rows: usize,
    /// Logical row -> physical row of the cache (the graph runs on physical rows).
    phys: Vec<usize>,
    past_len: usize,
    /// `[rows, past_len]` mask of the cached positions (physical rows).
    mask: Vec<i64>,
    /// Next position id of each physical row.
    next_pos: Vec<i64>,
    /// Last-position logits, logical row order.
    logits: Vec<f32>,
    scratch_mask: Vec<i64>,
    scratch_ids: Vec<i64>,
}

impl OnnxGpt2 {
    /// Wrap a session; checks that the graph has exactly the expected inputs and outputs, that
    /// the ids, mask and positions are int64, that every past and present tensor has one element
    /// type (float32 or float16) and that the logits are float32 or float16.
    pub fn new(session: Session, dims: Gpt2Dims) -> Result<Self> {
        let mut by_name: HashMap<String, Slot> = HashMap::new();
        by_name.insert("input_ids".into(), Slot::InputIds);
        by_name.insert("attention_mask".into(), Slot::AttentionMask);
        by_name.insert("position_ids".into(), Slot::PositionIds);
        for l in 0..dims.n_layer {
            by_name.insert(format!("past_key_values.{l}.key"), Slot::Past(2 * l));
            by_name.insert(format!("past_key_values.{l}.value"), Slot::Past(2 * l + 1));
        }
        let mut slots = Vec::new();
        let mut kv_type: Option<(FloatType, String)> = None;
        for input in session.inputs() {
            let (name, ty) = (input.name(), input.dtype().tensor_type());
            let slot = match by_name.remove(name) {
                Some(s) => s,
                None => return Err(Error::ModelFormat(format!("GPT-2 graph has an unexpected input `{name}`"))),
            };
            match slot {
                Slot::Past(_) => {
                    let t = FloatType::of_tensor(name, ty)?;
                    match &kv_type {
                        None => kv_type = Some((t, name.to_string())),
                        Some((first, first_name)) if *first != t => {
                            return Err(Error::ModelFormat(format!(
                                "GPT-2 graph inputs `{first_name}` ({}) and `{name}` ({}) differ in element type",
                                first.name(),
                                t.name()
                            )))
                        }
                        Some(_) => {}
                    }
                }
                _ if ty != Some(TensorElementType::Int64) => {
                    return Err(Error::ModelFormat(format!("GPT-2 graph input `{name}` has element type {ty:?}, expected int64")))
                }
                _ => {}
            }
            slots.push(slot);
        }
        if let Some(missing) = by_name.keys().next() {
            return Err(Error::ModelFormat(format!("GPT-2 graph lacks the input `{missing}`")));
        }
        let mut present_names = Vec::new();
        for l in 0..dims.n_layer {
            present_names.push(format!("present.{l}.key"));
            present_names.push(format!("present.{l}.value"));
        }
        let kv_type = match kv_type {
            Some((t, _)) => t,
            None => return Err(Error::ModelFormat("GPT-2 graph has no `past_key_values` inputs".into())),
        };
        let out_type = |need: &str| -> Result<FloatType> {
            match session.outputs().iter().find(|o| o.name() == need) {
                Some(o) => FloatType::of_tensor(need, o.dtype().tensor_type()),
                None => Err(Error::ModelFormat(format!("GPT-2 graph lacks the output `{need}`"))),
            }
        };
        for name in &present_names {
            let t = out_type(name)?;
            if t != kv_type {
                return Err(Error::ModelFormat(format!(
                    "GPT-2 graph output `{name}` is {} but its past_key_values inputs are {}",
                    t.name(),
                    kv_type.name()
                )));
            }
        }
        let logits_type = out_type("logits")?;
        let n = 2 * dims.n_layer;
        Ok(OnnxGpt2 {
            session,
            dims,
            slots,
            present_names,
            cache: KvCache::new(kv_type, n),
            logits_type,
            rows: 0,
            phys: Vec::new(),
            past_len: 0,
            mask: Vec::new(),
            next_pos: Vec::new(),
            logits: Vec::new(),
            scratch_mask: Vec::new(),
            scratch_ids: Vec::new(),
        })
    }

    pub fn dims(&self) -> Gpt2Dims {
        self.dims
    }

    /// The element type of the graph's KV cache (past and present tensors).
    pub fn kv_type(&self) -> FloatType {
        self.cache.element_type()
    }

    /// The element type of the graph's `logits` (converted to f32 for the search).
    pub fn logits_type(&self) -> FloatType {
        self.logits_type
    }

    /// Run the graph on `[rows, seq]` ids with the given full mask and positions; keep the
    /// presents as the new cache and the last position's logits.
    fn run(&mut self, ids: &[i64], mask: &[i64], pos: &[i64], rows: usize, seq: usize) -> Result<()> {
        let total = self.past_len + seq;
        let (h, d) = (self.dims.n_head, self.dims.head_dim);
        let mut inputs: Vec<SessionInputValue<'_>> = Vec::with_capacity(self.slots.len());
        for slot in &self.slots {
            let v: SessionInputValue<'_> = match *slot {
                Slot::InputIds => TensorRef::from_array_view(([rows, seq], ids))?.into(),
                Slot::AttentionMask => TensorRef::from_array_view(([rows, total], mask))?.into(),
                Slot::PositionIds => TensorRef::from_array_view(([rows, seq], pos))?.into(),
                Slot::Past(i) => self.cache.input(i, [rows, h, self.past_len, d])?,
            };
            inputs.push(v);
        }
        let mut outputs = self.session.run(inputs.as_slice())?;
        drop(inputs);
        {
            let logits = outputs
                .get("logits")
                .ok_or_else(|| Error::Inference("the graph returned no `logits`".into()))?;
            let (phys, out, vocab) = (&self.phys, &mut self.logits, self.dims.vocab_size);
            match self.logits_type {
                FloatType::F32 => last_logits::<f32>(logits, phys, rows, seq, vocab, out)?,
                FloatType::F16 => last_logits::<half::f16>(logits, phys, rows, seq, vocab, out)?,
            }
        }
        for (i, name) in self.present_names.iter().enumerate() {
            let v = outputs
                .remove(name.as_str())
                .ok_or_else(|| Error::Inference(format!("the graph returned no `{name}`")))?;
            self.cache.store(i, name, v, [rows, h, total, d])?;
        }
        self.past_len = total;
        Ok(())
    }

    /// Same number of rows: keep every physical row that some beam continues from, copy only
    /// the shared ones into freed rows.
    fn reorder_in_place(&mut self, src: &[usize]) -> Result<()> {
        let n = self.rows;
        let mut used = vec![false; n];
        let mut new_phys = vec![usize::MAX; n];
        let mut pending = Vec::new();
        for (i, &s) in src.iter().enumerate() {
            let p = self.phys[s];
            if used[p] {
                pending.push(i);
            } else {
                used[p] = true;
                new_phys[i] = p;
            }
        }
        let mut free: Vec<usize> = (0..n).filter(|&p| !used[p]).collect();
        // (from, to) physical copies; `from` rows are all kept, `to` rows are all freed.
        let mut copies = Vec::with_capacity(pending.len());
        for &i in &pending {
            let to = free.pop().ok_or_else(|| Error::Internal("reorder: no free row".into()))?;
            copies.push((self.phys[src[i]], to));
            new_phys[i] = to;
        }
        if !copies.is_empty() {
            let row = self.dims.n_head * self.past_len * self.dims.head_dim;
            self.cache.copy_rows(&copies, row)?;
            let p = self.past_len;
            for &(from, to) in &copies {
                self.mask.copy_within(from * p..(from + 1) * p, to * p);
                self.next_pos[to] = self.next_pos[from];
            }
        }
        let v = self.dims.vocab_size;
        if self.logits.len() == n * v {
            let old = std::mem::take(&mut self.logits);
            self.logits.reserve(n * v);
            for &s in src {
                self.logits.extend_from_slice(&old[s * v..(s + 1) * v]);
            }
        }
        self.phys = new_phys;
        Ok(())
    }

    /// A different number of rows (prompt-to-beam expansion, dropping finished prompts): gather
    /// into fresh contiguous buffers in logical order.
    fn gather(&mut self, src: &[usize]) -> Result<()> {
        let row = self.dims.n_head * self.past_len * self.dims.head_dim;
        let phys_src: Vec<usize> = src.iter().map(|&s| self.phys[s]).collect();
        self.cache.gather(&phys_src, row)?;
        let p = self.past_len;
        let mut mask = Vec::with_capacity(src.len() * p);
        for &s in &phys_src {
            mask.extend_from_slice(&self.mask[s * p..(s + 1) * p]);
        }
        self.mask = mask;
        self.next_pos = phys_src.iter().map(|&s| self.next_pos[s]).collect();
        let v = self.dims.vocab_size;
        if self.logits.len() == self.rows * v {
            let mut logits = Vec::new();
            crate::policy::kv_cache::try_reserve(&mut logits, src.len() * v)?;
            for &s in src {
                logits.extend_from_slice(&self.logits[s * v..(s + 1) * v]);
            }
            self.logits = logits;
        }
        self.rows = src.len();
        self.phys = (0..src.len()).collect();
        Ok(())
    }
}

/// Replace `out` by the last position's logits of each row of `logits` (`[rows, seq, vocab]` of
/// type `T`), rows taken in the order `phys`, as f32.
fn last_logits<T: GraphFloat>(logits: &DynValue, phys: &[usize], rows: usize, seq: usize, vocab: usize, out: &mut Vec<f32>) -> Result<()> {
    let (shape, data) = logits.try_extract_tensor::<T>()?;
    if shape.len() != 3 || shape[0] as usize != rows || shape[1] as usize != seq || shape[2] as usize != vocab {
        return Err(Error::ModelFormat(format!("logits shape {shape:?}, expected [{rows}, {seq}, {vocab}]")));
    }
    out.clear();
    for &r in phys {
        let at = (r * seq + seq - 1) * vocab;
        T::extend_f32(out, &data[at..at + vocab]);
    }
    Ok(())
}

impl CausalLm for OnnxGpt2 {
    fn vocab_size(&self) -> usize {
        self.dims.vocab_size
    }

    fn max_positions(&self) -> usize {
        self.dims.n_positions
    }

    fn prefill(&mut self, batch: &PaddedBatch) -> Result<()> {
        self.cache.clear();
        self.past_len = 0;
        self.rows = batch.rows;
        self.phys = (0..batch.rows).collect();
        self.run(&batch.input_ids, &batch.attention_mask, &batch.position_ids, batch.rows, batch.seq_len)?;
        self.mask = batch.attention_mask.clone();
        self.next_pos = batch.lengths.iter().map(|&l| l as i64).collect();
        Ok(())
    }

    fn select_rows(&mut self, src: &[usize]) -> Result<()> {
        if src.iter().any(|&s| s >= self.rows) {
            return Err(Error::Internal(format!("select_rows: a source row is out of range (rows {})", self.rows)));
        }
        if src.len() == self.rows {
            self.reorder_in_place(src)
        } else {
            self.gather(src)
        }
    }

    fn step(&mut self, tokens: &[u32]) -> Result<()> {
        if tokens.len() != self.rows {
            return Err(Error::Internal(format!("step: {} tokens for {} rows", tokens.len(), self.rows)));
        }
        if self.past_len + 1 > self.dims.n_positions {
            return Err(Error::PromptTooLong { tokens: self.past_len, new_tokens: 1, context: self.dims.n_positions });
        }
        let (rows, p) = (self.rows, self.past_len);
        let mut mask = std::mem::take(&mut self.scratch_mask);
        mask.clear();
        for r in 0..rows {
            mask.extend_from_slice(&self.mask[r * p..(r + 1) * p]);
            mask.push(1);
        }
        let mut ids = std::mem::take(&mut self.scratch_ids);
        ids.clear();
        ids.resize(rows, 0);
        for (i, &t) in tokens.iter().enumerate() {
            ids[self.phys[i]] = t as i64;
        }
        let pos = self.next_pos.clone();
        let res = self.run(&ids, &mask, &pos, rows, 1);
        self.scratch_ids = ids;
        res?;
        self.scratch_mask = std::mem::replace(&mut self.mask, mask);
        for p in self.next_pos.iter_mut() {
            *p += 1;
        }
        Ok(())
    }

    fn rows(&self) -> usize {
        self.rows
    }

    fn logits(&self) -> &[f32] {
        &self.logits
    }
}
