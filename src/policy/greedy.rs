//! Greedy decoding as transformers' `_sample` with `do_sample=False`: argmax of the processed
//! logits each step; a row stops at EOS (transformers keeps padding it; here its row is dropped
//! from the batch, which does not change the other rows).

use crate::policy::config::DecodingConfig;
use crate::policy::generate::{advance_rows, without_eos, Controls, GenerateOutput, Hypothesis, Margin, PromptOutput};
use crate::policy::logits::{top_k, RowStats};
use crate::policy::model::{CausalLm, PaddedBatch};
use crate::Result;

pub(crate) fn run(model: &mut dyn CausalLm, prompts: &[Vec<u32>], cfg: &DecodingConfig, ctl: &mut Controls<'_>) -> Result<GenerateOutput> {
    let n = prompts.len();
    let vocab = model.vocab_size();
    let eos = ctl.eos_token_id;
    model.prefill(&PaddedBatch::left_padded(prompts, ctl.pad_token_id)?)?;
    let mut tokens: Vec<Vec<u32>> = vec![Vec::new(); n];
    let mut scores = vec![0f32; n];
    let mut margins = vec![Margin::none(); n];
    // Prompt index of each live model row.
    let mut live: Vec<usize> = (0..n).collect();
    let mut top = Vec::with_capacity(2);
    let mut buf: Vec<f32> = Vec::new();
    for step in 0..cfg.max_new_tokens {
        let logits = model.logits();
        let mut next = Vec::with_capacity(live.len());
        for (r, &p) in live.iter().enumerate() {
            let row = &logits[r * vocab..(r + 1) * vocab];
            let stats = RowStats::of(row);
            // argmax over the processed row (EOS at -inf while suppressed), first index on ties.
            let row_used: &[f32] = if step < ctl.min_new_tokens {
                buf.clear();
                buf.extend_from_slice(row);
                buf[eos as usize] = f32::NEG_INFINITY;
                &buf
            } else {
                row
            };
            top_k(row_used, 2, &mut top);
            let (best, tok) = top[0];
            if let Some(&(second, _)) = top.get(1) {
                margins[p].note(best, second, step);
            }
            scores[p] += stats.log_prob(row[tok as usize]);
            tokens[p].push(tok);
            next.push(tok);
        }
        if !advance_rows(model, ctl, step, cfg.max_new_tokens, &mut live, next)? {
            break;
        }
    }
    let prompts_out = tokens
        .into_iter()
        .zip(scores)
        .zip(margins)
        .map(|((t, score), margin)| {
            let (tokens, finished) = without_eos(t, eos);
            PromptOutput { hypotheses: vec![Hypothesis { tokens, score, finished }], margin }
        })
        .collect();
    Ok(GenerateOutput { prompts: prompts_out, seed: None })
}
