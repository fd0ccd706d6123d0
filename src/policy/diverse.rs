//! Diverse (group) beam search as transformers 4.53.3's `_group_beam_search` with its
//! `BeamSearchScorer` / `BeamHypotheses` (Vijayakumar et al., "Diverse Beam Search"): the beams of
//! a prompt form `num_beam_groups` groups searched one after the other each step; a group's
//! log-probabilities are lowered by `diversity_penalty * count` for every token the earlier groups
//! chose at this step (Hamming diversity). Each group keeps its own finished list of `group_size`
//! hypotheses, scored `sum_logprobs / (generated_len ** length_penalty)` in f64 with
//! `generated_len` = generated tokens (prompt excluded, final EOS included); a group is done when
//! it is full and `worst >= best_candidate / (generated_len ** length_penalty)`. A done group
//! keeps emitting PAD tokens (which later groups see in their penalty, as in the reference).

use std::collections::HashMap;

use crate::policy::config::{DecodingConfig, EarlyStopping, Strategy};
use crate::policy::generate::{Controls, GenerateOutput, Hypothesis, Margin, PromptOutput};
use crate::policy::logits::{row_candidates, Adjust};
use crate::policy::model::{CausalLm, PaddedBatch};
use crate::{Error, Result};

#[derive(Clone)]
struct Beam {
    score: f32,
    tokens: Vec<u32>,
}

/// transformers' `BeamHypotheses` (insertion-ordered list, `worst_score`).
struct Hyps {
    beams: Vec<(f64, Vec<u32>, bool)>,
    worst: f64,
}

impl Hyps {
    fn add(&mut self, tokens: Vec<u32>, eos_end: bool, score: f64, cap: usize, margin: &mut Margin, step: usize) {
        if self.beams.len() >= cap {
            margin.note(score as f32, self.worst as f32, step);
        }
        if self.beams.len() < cap || score > self.worst {
            self.beams.push((score, tokens, eos_end));
            if self.beams.len() > cap {
                // sorted((s, idx)): the smallest score goes, the oldest first among equals.
                let mut order: Vec<usize> = (0..self.beams.len()).collect();
                order.sort_by(|&a, &b| self.beams[a].0.total_cmp(&self.beams[b].0).then(a.cmp(&b)));
                self.worst = self.beams[order[1]].0;
                self.beams.remove(order[0]);
            } else {
                self.worst = self.worst.min(score);
            }
        }
    }
}

struct Group {
    running: Vec<Beam>,
    hyps: Hyps,
    done: bool,
}

fn lp_div(len: usize, lp: f32) -> f64 {
    (len as f64).powf(lp as f64)
}

pub(crate) fn run(model: &mut dyn CausalLm, prompts: &[Vec<u32>], cfg: &DecodingConfig, ctl: &mut Controls<'_>) -> Result<GenerateOutput> {
    let (nb, ng, dp, lp, early) = match cfg.strategy {
        Strategy::DiverseBeam { num_beams, num_beam_groups, diversity_penalty, length_penalty, early_stopping } => {
            (num_beams, num_beam_groups, diversity_penalty, length_penalty, early_stopping)
        }
        _ => return Err(Error::Internal("diverse::run called for another strategy".into())),
    };
    let gs = nb / ng;
    let n = prompts.len();
    let vocab = model.vocab_size();
    let (eos, pad) = (ctl.eos_token_id, ctl.pad_token_id);
    let k = 2 * gs;
    let max_new = cfg.max_new_tokens;

    model.prefill(&PaddedBatch::left_padded(prompts, pad)?)?;
    let expand: Vec<usize> = (0..n).flat_map(|p| std::iter::repeat_n(p, nb)).collect();
    model.select_rows(&expand)?;

    let mut groups: Vec<Vec<Group>> = (0..n)
        .map(|_| {
            (0..ng)
                .map(|_| Group {
                    running: (0..gs).map(|b| Beam { score: if b == 0 { 0.0 } else { -1.0e9 }, tokens: Vec::new() }).collect(),
                    hyps: Hyps { beams: Vec::new(), worst: 1e9 },
                    done: false,
                })
                .collect()
        })
        .collect();
    let mut margins = vec![Margin::none(); n];
    let mut live: Vec<usize> = (0..n).collect();
    let mut raw = Vec::new();
    let mut row_c = Vec::new();
    let mut cands: Vec<(f32, usize, u32)> = Vec::new();

    for step in 0..max_new {
        let gen_len = step + 1;
        let logits = model.logits();
        let mut next_src = Vec::with_capacity(live.len() * nb);
        let mut next_tok = Vec::with_capacity(live.len() * nb);
        let mut next_live = Vec::new();
        for (bi, &p) in live.iter().enumerate() {
            let margin = &mut margins[p];
            let mut current: Vec<u32> = Vec::with_capacity(nb);
            for (g, grp) in groups[p].iter_mut().enumerate() {
                let row0 = bi * nb + g * gs;
                if grp.done {
                    for _ in 0..gs {
                        current.push(pad);
                        next_src.push(row0);
                        next_tok.push(pad);
                    }
                    continue;
                }
                let mut adjust: Vec<Adjust> = Vec::new();
                if step < ctl.min_new_tokens {
                    adjust.push(Adjust { token: eos, penalty: f32::INFINITY });
                }
                if g > 0 && dp > 0.0 {
                    let mut counts: HashMap<u32, u32> = HashMap::new();
                    for &t in &current {
                        *counts.entry(t).or_default() += 1;
                    }
                    let mut c: Vec<(u32, u32)> = counts.into_iter().collect();
                    c.sort_unstable();
                    adjust.extend(c.into_iter().map(|(token, cnt)| Adjust { token, penalty: dp * cnt as f32 }));
                }
                cands.clear();
                for b in 0..gs {
                    let r = row0 + b;
                    row_candidates(&logits[r * vocab..(r + 1) * vocab], k + 1, &adjust, &mut raw, &mut row_c);
                    let s = grp.running[b].score;
                    cands.extend(row_c.iter().map(|&(l, t)| (l + s, b, t)));
                }
                cands.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
                if cands.len() > gs && (cands[gs - 1].2 == eos || cands[gs].2 == eos) {
                    margin.note(cands[gs - 1].0, cands[gs].0, step);
                }
                let best = cands.first().map(|c| c.0 as f64).unwrap_or(f64::NEG_INFINITY);
                // BeamSearchScorer.process
                let mut running = Vec::with_capacity(gs);
                let mut srcs = Vec::with_capacity(gs);
                for (rank, c) in cands.iter().enumerate() {
                    if rank >= k {
                        break;
                    }
                    if c.2 == eos {
                        if rank >= gs {
                            continue;
                        }
                        let tokens = grp.running[c.1].tokens.clone();
                        let score = c.0 as f64 / lp_div(gen_len, lp);
                        grp.hyps.add(tokens, true, score, gs, margin, step);
                    } else {
                        let mut tokens = grp.running[c.1].tokens.clone();
                        tokens.push(c.2);
                        running.push(Beam { score: c.0, tokens });
                        srcs.push(c.1);
                    }
                    if running.len() == gs {
                        // The best continuation left out (EOS ones beyond rank gs never run).
                        if let Some(nx) = cands[rank + 1..].iter().find(|x| x.2 != eos) {
                            margin.note(c.0, nx.0, step);
                        }
                        break;
                    }
                }
                if running.len() < gs {
                    return Err(Error::Internal("group beam search ran out of continuations".into()));
                }
                // BeamHypotheses.is_done
                if grp.hyps.beams.len() >= gs {
                    let highest = match early {
                        EarlyStopping::True => f64::INFINITY,
                        EarlyStopping::Never if lp > 0.0 => best / lp_div(max_new, lp),
                        _ => best / lp_div(gen_len, lp),
                    };
                    if early == EarlyStopping::True {
                        grp.done = true;
                    } else {
                        margin.note(grp.hyps.worst as f32, highest as f32, step);
                        grp.done = grp.done || grp.hyps.worst >= highest;
                    }
                }
                for (b, &s) in running.iter().zip(&srcs) {
                    let t = *b.tokens.last().unwrap_or(&pad);
                    current.push(t);
                    next_src.push(row0 + s);
                    next_tok.push(t);
                }
                grp.running = running;
            }
            if groups[p].iter().any(|g| !g.done) {
                next_live.push(p);
            } else {
                // Drop this prompt's rows from the next step.
                let from = next_src.len() - nb;
                next_src.truncate(from);
                next_tok.truncate(from);
            }
        }
        ctl.tick(gen_len, max_new)?;
        if gen_len == max_new || next_live.is_empty() {
            break;
        }
        model.select_rows(&next_src)?;
        model.step(&next_tok)?;
        live = next_live;
    }

    let mut out = Vec::with_capacity(n);
    for (p, gl) in groups.into_iter().enumerate() {
        let margin = &mut margins[p];
        // finalize: open groups add their running beams at the final length.
        let mut all: Vec<(f64, Vec<u32>, bool)> = Vec::new();
        for mut grp in gl {
            if !grp.done {
                for b in std::mem::take(&mut grp.running) {
                    let len = b.tokens.len().max(1);
                    let score = b.score as f64 / lp_div(len, lp);
                    grp.hyps.add(b.tokens, false, score, gs, margin, usize::MAX);
                }
            }
            // Hypotheses that ended with EOS are stored without it (flag true).
            all.extend(grp.hyps.beams);
        }
        // sorted(key=score) then pop(): highest first, the later one first among equals.
        let mut order: Vec<usize> = (0..all.len()).collect();
        order.sort_by(|&a, &b| all[a].0.total_cmp(&all[b].0));
        order.reverse();
        let take: Vec<usize> = order.into_iter().take(cfg.num_return_sequences).collect();
        for w in take.windows(2) {
            margin.note(all[w[0]].0 as f32, all[w[1]].0 as f32, usize::MAX);
        }
        let hypotheses = take
            .iter()
            .map(|&i| {
                let tokens = all[i].1.clone();
                Hypothesis { tokens, score: all[i].0 as f32, finished: all[i].2 }
            })
            .collect();
        out.push(PromptOutput { hypotheses, margin: *margin });
    }
    Ok(GenerateOutput { prompts: out, seed: None })
}
