//! The causal-LM interface the decoders drive: batched forward steps over a KV cache, logits of the
//! last position, and cache row selection (beam reorder / prompt-to-beam expansion), as in
//! transformers' `generate()` with `use_cache=True`.

use crate::Result;

/// A batch of prompts, left-padded to a common length the way transformers pads decoder-only
/// inputs (`padding_side="left"`): `attention_mask` is 0 on padding, positions are
/// `cumsum(mask) - 1` with masked positions set to 1.
#[derive(Debug, Clone, PartialEq)]
pub struct PaddedBatch {
    pub rows: usize,
    pub seq_len: usize,
    /// `[rows, seq_len]` row-major.
    pub input_ids: Vec<i64>,
    pub attention_mask: Vec<i64>,
    pub position_ids: Vec<i64>,
    /// Real (unpadded) length of each row.
    pub lengths: Vec<usize>,
}

impl PaddedBatch {
    /// Left-pad `prompts` with `pad_token_id`. Every prompt must be non-empty.
    pub fn left_padded(prompts: &[Vec<u32>], pad_token_id: u32) -> Result<Self> {
        if prompts.is_empty() {
            return Err(crate::Error::InvalidOptions("no prompts given".into()));
        }
        if prompts.iter().any(|p| p.is_empty()) {
            return Err(crate::Error::EmptyPrompt);
        }
        let rows = prompts.len();
        let seq_len = prompts.iter().map(|p| p.len()).max().unwrap_or(0);
        let mut input_ids = vec![pad_token_id as i64; rows * seq_len];
        let mut attention_mask = vec![0i64; rows * seq_len];
        let mut position_ids = vec![1i64; rows * seq_len];
        for (r, p) in prompts.iter().enumerate() {
            let off = seq_len - p.len();
            for (j, &t) in p.iter().enumerate() {
                let at = r * seq_len + off + j;
                input_ids[at] = t as i64;
                attention_mask[at] = 1;
                position_ids[at] = j as i64;
            }
        }
        Ok(PaddedBatch { rows, seq_len, input_ids, attention_mask, position_ids, lengths: prompts.iter().map(|p| p.len()).collect() })
    }
}

/// A GPT-2-style causal language model with a KV cache, driven one step at a time.
///
/// Rows are independent sequences. After `prefill`, `logits()` holds the logits of each row's last
/// position; `select_rows` rebuilds the batch from existing rows (row `i` of the new batch is old
/// row `src[i]`; rows may repeat or be dropped); `step` appends one token per row.
pub trait CausalLm {
    fn vocab_size(&self) -> usize;
    /// The longest sequence (prompt + generated) the model accepts (GPT-2's `n_positions`).
    fn max_positions(&self) -> usize;
    /// Run the prompts, replacing any cache.
    fn prefill(&mut self, batch: &PaddedBatch) -> Result<()>;
    /// Keep/duplicate/reorder cache rows.
    fn select_rows(&mut self, src: &[usize]) -> Result<()>;
    /// Append one token to each current row and run it.
    fn step(&mut self, tokens: &[u32]) -> Result<()>;
    /// Number of rows in the current batch.
    fn rows(&self) -> usize;
    /// Last-position logits, `[rows, vocab_size]` row-major (f32).
    fn logits(&self) -> &[f32];
}
