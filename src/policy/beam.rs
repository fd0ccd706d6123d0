//! Beam search with transformers 5.23's semantics (`GenerationMixin._beam_search`, vectorised
//! version): per prompt keep the top `2 * num_beams` continuations of all beams; a continuation
//! that ends in EOS (or reaches `max_new_tokens`) is a finished hypothesis only if it ranks in the
//! top `num_beams`; the best `num_beams` unfinished continue.
//!
//! Length penalty: a finished hypothesis scores `sum_logprobs / (generated_len ** length_penalty)`
//! where `generated_len` counts the GENERATED tokens only (the prompt is not counted) and includes
//! the final EOS token when there is one. With the demo's -1.0 this is `sum_logprobs * len`.
//! Early stopping (`EarlyStopping::Heuristic`, transformers' default `early_stopping=False`): a
//! prompt is done once it holds `num_beams` finished hypotheses and the best running beam, scored
//! at the current generated length (`max_new_tokens` for `Never` with a positive penalty), is no
//! better than the worst of them. Arithmetic is f32 like the reference's tensors.

use crate::policy::config::{DecodingConfig, EarlyStopping, Strategy};
use crate::policy::generate::{without_eos, Controls, GenerateOutput, Hypothesis, Margin, PromptOutput};
use crate::policy::logits::{row_candidates, Adjust};
use crate::policy::model::{CausalLm, PaddedBatch};
use crate::{Error, Result};

#[derive(Clone)]
struct Beam {
    score: f32,
    tokens: Vec<u32>,
}

struct Finished {
    score: f32,
    tokens: Vec<u32>,
}

struct PromptState {
    running: Vec<Beam>,
    finished: Vec<Finished>,
    unsatisfied: bool,
    margin: Margin,
}

/// `x / (len ** lp)` as torch does it: the divisor is a Python float, applied in f32.
fn penalised(x: f32, len: usize, lp: f32) -> f32 {
    x / ((len as f64).powf(lp as f64) as f32)
}

pub(crate) fn run(model: &mut dyn CausalLm, prompts: &[Vec<u32>], cfg: &DecodingConfig, ctl: &mut Controls<'_>) -> Result<GenerateOutput> {
    let (nb, lp, early) = match cfg.strategy {
        Strategy::Beam { num_beams, length_penalty, early_stopping } => (num_beams, length_penalty, early_stopping),
        _ => return Err(Error::Internal("beam::run called for another strategy".into())),
    };
    let n = prompts.len();
    let vocab = model.vocab_size();
    let eos = ctl.eos_token_id;
    let k = 2 * nb; // one EOS id: max(2, 1 + n_eos) * num_beams
    let max_new = cfg.max_new_tokens;

    model.prefill(&PaddedBatch::left_padded(prompts, ctl.pad_token_id)?)?;
    let expand: Vec<usize> = (0..n).flat_map(|p| std::iter::repeat_n(p, nb)).collect();
    model.select_rows(&expand)?;

    let mut states: Vec<PromptState> = (0..n)
        .map(|_| PromptState {
            running: (0..nb).map(|b| Beam { score: if b == 0 { 0.0 } else { -1.0e9 }, tokens: Vec::new() }).collect(),
            finished: Vec::new(),
            unsatisfied: true,
            margin: Margin::none(),
        })
        .collect();
    // Prompts whose rows are in the model, in row-block order.
    let mut live: Vec<usize> = (0..n).collect();
    let mut raw = Vec::new();
    let mut row_c = Vec::new();
    let mut cands: Vec<(f32, usize, u32)> = Vec::with_capacity(nb * (k + 1));

    for step in 0..max_new {
        let gen_len = step + 1;
        let last = gen_len == max_new;
        let adjust: Vec<Adjust> = if step < ctl.min_new_tokens { vec![Adjust { token: eos, penalty: f32::INFINITY }] } else { Vec::new() };
        let logits = model.logits();
        let mut next_src = Vec::with_capacity(live.len() * nb);
        let mut next_tok = Vec::with_capacity(live.len() * nb);
        let mut next_live = Vec::with_capacity(live.len());
        for (bi, &p) in live.iter().enumerate() {
            let st = &mut states[p];
            // a. All continuations' accumulated scores (top k + 1 per row is enough for the
            //    global top k and its boundary).
            cands.clear();
            for b in 0..nb {
                let r = bi * nb + b;
                row_candidates(&logits[r * vocab..(r + 1) * vocab], k + 1, &adjust, &mut raw, &mut row_c);
                let s = st.running[b].score;
                cands.extend(row_c.iter().map(|&(l, t)| (l + s, b, t)));
            }
            // torch.topk: descending; equal scores keep the lower flat index (beam, token).
            cands.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
            if cands.len() < nb.min(k) {
                return Err(Error::Internal(format!("beam search found {} continuations for {nb} beams", cands.len())));
            }
            let hits = |c: &(f32, usize, u32)| last || c.2 == eos;
            // An EOS continuation just inside / outside the top `nb` decides a finished hypothesis.
            if cands.len() > nb && (hits(&cands[nb - 1]) || hits(&cands[nb])) {
                st.margin.note(cands[nb - 1].0, cands[nb].0, step);
            }

            // e. Next running beams: the best `nb` of the top `k` continuations that did not stop.
            let mut running = Vec::with_capacity(nb);
            let mut srcs = Vec::with_capacity(nb);
            let mut first_dropped = None;
            for (rank, c) in cands.iter().enumerate().filter(|(_, c)| !hits(c)) {
                if running.len() == nb {
                    first_dropped = Some(c.0);
                    break;
                }
                if rank >= k {
                    break;
                }
                let mut tokens = st.running[c.1].tokens.clone();
                tokens.push(c.2);
                running.push(Beam { score: c.0, tokens });
                srcs.push(c.1);
            }
            if let (Some(d), Some(l)) = (first_dropped, running.last()) {
                st.margin.note(l.score, d, step);
            }
            cands.truncate(k);

            // f. Finished hypotheses: stopped continuations ranked in the top `nb`, while the
            //    prompt can still improve (and, for EarlyStopping::True, is not full).
            let full_and_stop = early == EarlyStopping::True && st.finished.len() == nb;
            if st.unsatisfied && !full_and_stop {
                let mut added = false;
                for c in cands.iter().take(nb).filter(|c| hits(c)) {
                    let mut tokens = st.running[c.1].tokens.clone();
                    tokens.push(c.2);
                    st.finished.push(Finished { score: penalised(c.0, gen_len, lp), tokens });
                    added = true;
                }
                if added {
                    // Stable: earlier (older) hypotheses win ties.
                    st.finished.sort_by(|a, b| b.score.total_cmp(&a.score));
                    if st.finished.len() > nb {
                        st.margin.note(st.finished[nb - 1].score, st.finished[nb].score, step);
                        st.finished.truncate(nb);
                    }
                }
            }
            if last {
                continue;
            }
            if running.len() < nb {
                return Err(Error::Internal("beam search ran out of unfinished continuations".into()));
            }

            // g. Early-stop heuristic on the best running beam.
            let hyp_len = if early == EarlyStopping::Never && lp > 0.0 { max_new } else { gen_len };
            let best_possible = penalised(running[0].score, hyp_len, lp);
            let worst = if st.finished.len() == nb { st.finished[nb - 1].score } else { -1.0e9 };
            if st.finished.len() == nb && st.unsatisfied {
                st.margin.note(best_possible, worst, step);
            }
            st.unsatisfied = st.unsatisfied && best_possible > worst;
            let done = !st.unsatisfied || (early == EarlyStopping::True && st.finished.len() == nb);
            if !done {
                next_src.extend(srcs.iter().map(|&b| bi * nb + b));
                next_tok.extend(running.iter().map(|b| *b.tokens.last().unwrap_or(&eos)));
                next_live.push(p);
            }
            st.running = running;
        }
        ctl.tick(gen_len, max_new)?;
        if last || next_live.is_empty() {
            break;
        }
        model.select_rows(&next_src)?;
        model.step(&next_tok)?;
        live = next_live;
    }

    let prompts_out = states
        .into_iter()
        .map(|mut st| {
            // Defensive: never return fewer than asked (cannot happen once max_new_tokens is reached).
            while st.finished.len() < cfg.num_return_sequences {
                match st.running.get(st.finished.len()) {
                    Some(b) => st.finished.push(Finished { score: b.score, tokens: b.tokens.clone() }),
                    None => break,
                }
            }
            let mut margin = st.margin;
            for w in st.finished.windows(2).take(cfg.num_return_sequences.saturating_sub(1)) {
                margin.note(w[0].score, w[1].score, usize::MAX);
            }
            let hypotheses = st
                .finished
                .into_iter()
                .take(cfg.num_return_sequences)
                .map(|f| {
                    let (tokens, finished) = without_eos(f.tokens, eos);
                    Hypothesis { tokens, score: f.score, finished }
                })
                .collect();
            PromptOutput { hypotheses, margin }
        })
        .collect();
    Ok(GenerateOutput { prompts: prompts_out, seed: None })
}
