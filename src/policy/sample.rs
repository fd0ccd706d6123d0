//! Multinomial sampling as transformers' `_sample` with `do_sample=True` and its warpers in
//! order: min-new-tokens EOS suppression, `TemperatureLogitsWarper`, `TopKLogitsWarper` (keeps
//! every token >= the k-th value), `TopPLogitsWarper` (drops the low tail whose cumulative
//! probability is <= 1 - top_p, keeping at least one). Random numbers come from a ChaCha20 RNG
//! seeded by the returned seed (drawn from the OS when none is given), so runs are reproducible
//! here, though not bit-identical to torch's generator. Each prompt gets `num_return_sequences`
//! independent samples; they are returned best score (sum of model log-probs) first.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

use crate::policy::config::{DecodingConfig, Strategy};
use crate::policy::generate::{advance_rows, without_eos, Controls, GenerateOutput, Hypothesis, Margin, PromptOutput};
use crate::policy::logits::{top_k, RowStats};
use crate::policy::model::{CausalLm, PaddedBatch};
use crate::{Error, Result};

/// Draw one token from a processed row (see the module doc); None when every token is excluded
/// (an all -inf row). `work` is a reusable buffer.
pub fn sample_row(row: &[f32], temperature: f32, k: usize, top_p: f32, suppress: Option<u32>, rng: &mut ChaCha20Rng, work: &mut Vec<(f32, u32)>) -> Option<u32> {
    let scaled = |i: usize, x: f32| if Some(i as u32) == suppress { f32::NEG_INFINITY } else { x / temperature };
    // Candidates, largest first.
    if k > 0 && k < row.len() {
        let tmp: Vec<f32> = row.iter().enumerate().map(|(i, &x)| scaled(i, x)).collect();
        top_k(&tmp, k, work);
        let kth = work.last().map(|c| c.0).unwrap_or(f32::NEG_INFINITY);
        // Ties with the k-th value are kept too.
        work.clear();
        for (i, &x) in tmp.iter().enumerate() {
            if x >= kth && x > f32::NEG_INFINITY {
                work.push((x, i as u32));
            }
        }
    } else {
        work.clear();
        work.extend(row.iter().enumerate().map(|(i, &x)| (scaled(i, x), i as u32)).filter(|c| c.0 > f32::NEG_INFINITY));
    }
    work.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    if work.is_empty() {
        return None;
    }
    let max = work[0].0;
    let mut probs: Vec<f64> = work.iter().map(|c| ((c.0 - max) as f64).exp()).collect();
    let total: f64 = probs.iter().sum();
    for p in probs.iter_mut() {
        *p /= total;
    }
    if top_p < 1.0 {
        // Ascending cumulative sum from the least likely; remove while <= 1 - top_p.
        let mut cum = 0f64;
        let mut keep = probs.len();
        for i in (0..probs.len()).rev() {
            cum += probs[i];
            if cum <= 1.0 - top_p as f64 && i > 0 {
                keep = i;
            } else {
                break;
            }
        }
        probs.truncate(keep);
        work.truncate(keep);
        let t: f64 = probs.iter().sum();
        for p in probs.iter_mut() {
            *p /= t;
        }
    }
    let u: f64 = rng.random::<f64>();
    let mut acc = 0f64;
    for (i, p) in probs.iter().enumerate() {
        acc += p;
        if u < acc {
            return Some(work[i].1);
        }
    }
    work.last().map(|c| c.1)
}

pub(crate) fn run(model: &mut dyn CausalLm, prompts: &[Vec<u32>], cfg: &DecodingConfig, ctl: &mut Controls<'_>) -> Result<GenerateOutput> {
    let (temperature, k, top_p, seed) = match cfg.strategy {
        Strategy::Sample { temperature, top_k, top_p, seed } => (temperature, top_k, top_p, seed),
        _ => return Err(Error::Internal("sample::run called for another strategy".into())),
    };
    let seed = seed.unwrap_or_else(|| rand::rng().random::<u64>());
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let n = prompts.len();
    let m = cfg.num_return_sequences;
    let vocab = model.vocab_size();
    let eos = ctl.eos_token_id;
    model.prefill(&PaddedBatch::left_padded(prompts, ctl.pad_token_id)?)?;
    let expand: Vec<usize> = (0..n).flat_map(|p| std::iter::repeat_n(p, m)).collect();
    model.select_rows(&expand)?;
    let mut tokens: Vec<Vec<u32>> = vec![Vec::new(); n * m];
    let mut scores = vec![0f32; n * m];
    let mut live: Vec<usize> = (0..n * m).collect();
    let mut work = Vec::new();
    for step in 0..cfg.max_new_tokens {
        let logits = model.logits();
        let suppress = if step < ctl.min_new_tokens { Some(eos) } else { None };
        let mut next = Vec::with_capacity(live.len());
        for (r, &s) in live.iter().enumerate() {
            let row = &logits[r * vocab..(r + 1) * vocab];
            let t = sample_row(row, temperature, k, top_p, suppress, &mut rng, &mut work)
                .ok_or_else(|| Error::Inference("sampling: every token has probability 0 (non-finite logits?)".into()))?;
            scores[s] += RowStats::of(row).log_prob(row[t as usize]);
            tokens[s].push(t);
            next.push(t);
        }
        if !advance_rows(model, ctl, step, cfg.max_new_tokens, &mut live, next)? {
            break;
        }
    }
    let mut out = Vec::with_capacity(n);
    let mut it = tokens.into_iter().zip(scores);
    for _ in 0..n {
        let mut hyps: Vec<Hypothesis> = (&mut it)
            .take(m)
            .map(|(t, score)| {
                let (tokens, finished) = without_eos(t, eos);
                Hypothesis { tokens, score, finished }
            })
            .collect();
        hyps.sort_by(|a, b| b.score.total_cmp(&a.score));
        out.push(PromptOutput { hypotheses: hyps, margin: Margin::none() });
    }
    Ok(GenerateOutput { prompts: out, seed: Some(seed) })
}
