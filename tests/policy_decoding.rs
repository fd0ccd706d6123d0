//! Decoder behaviour on a toy causal LM (deterministic hashed logits): strategy invariants,
//! n-best order, forced length, sampling seeds, batching, validation and cancellation. Parity
//! with transformers on real GPT-2 graphs is in tests/python/test_decode_parity.py.

use promptist::policy::config::{DecodingConfig, EarlyStopping, Strategy};
use promptist::policy::{generate, CausalLm, Controls, PaddedBatch};
use promptist::{Error, Result};

const V: usize = 64;
const EOS: u32 = 63;

/// Rows hold their real token history; logits are a hash of it, peaked, with EOS growing likelier
/// with length.
struct Toy {
    rows: Vec<Vec<u32>>,
    logits: Vec<f32>,
}

fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

impl Toy {
    fn new() -> Self {
        Toy { rows: Vec::new(), logits: Vec::new() }
    }
    fn row_logits(hist: &[u32]) -> Vec<f32> {
        let h = hist.iter().fold(1469598103934665603u64, |a, &t| mix(a ^ t as u64));
        let mut out: Vec<f32> = (0..V as u64).map(|t| ((mix(h ^ (t << 32)) >> 40) as f32 / (1u64 << 24) as f32) * 8.0).collect();
        out[EOS as usize] = hist.len() as f32 * 0.35 - 1.0;
        out
    }
    fn refresh(&mut self) {
        self.logits = self.rows.iter().flat_map(|r| Toy::row_logits(r)).collect();
    }
}

impl CausalLm for Toy {
    fn vocab_size(&self) -> usize {
        V
    }
    fn max_positions(&self) -> usize {
        128
    }
    fn prefill(&mut self, b: &PaddedBatch) -> Result<()> {
        self.rows = (0..b.rows)
            .map(|r| (0..b.seq_len).filter(|&j| b.attention_mask[r * b.seq_len + j] == 1).map(|j| b.input_ids[r * b.seq_len + j] as u32).collect())
            .collect();
        self.refresh();
        Ok(())
    }
    fn select_rows(&mut self, src: &[usize]) -> Result<()> {
        self.rows = src.iter().map(|&s| self.rows[s].clone()).collect();
        self.refresh();
        Ok(())
    }
    fn step(&mut self, tokens: &[u32]) -> Result<()> {
        for (r, &t) in self.rows.iter_mut().zip(tokens) {
            r.push(t);
        }
        self.refresh();
        Ok(())
    }
    fn rows(&self) -> usize {
        self.rows.len()
    }
    fn logits(&self) -> &[f32] {
        &self.logits
    }
}

fn ctl() -> Controls<'static> {
    Controls { eos_token_id: EOS, pad_token_id: EOS, min_new_tokens: 0, progress: None }
}

fn beam(n: usize, lp: f32, ret: usize, new: usize) -> DecodingConfig {
    DecodingConfig { strategy: Strategy::Beam { num_beams: n, length_penalty: lp, early_stopping: EarlyStopping::Heuristic }, max_new_tokens: new, num_return_sequences: ret }
}

fn prompts() -> Vec<Vec<u32>> {
    vec![vec![1, 2, 3], vec![7], vec![10, 11, 12, 13, 14], vec![5, 5]]
}

#[test]
fn greedy_follows_the_argmax() {
    let cfg = DecodingConfig { strategy: Strategy::Greedy, max_new_tokens: 20, num_return_sequences: 1 };
    let out = generate(&mut Toy::new(), &prompts(), &cfg, &mut ctl()).unwrap();
    for (p, o) in prompts().iter().zip(&out.prompts) {
        let mut hist = p.clone();
        let mut want = Vec::new();
        for _ in 0..20 {
            let l = Toy::row_logits(&hist);
            let t = (0..V).max_by(|&a, &b| l[a].total_cmp(&l[b]).then(b.cmp(&a))).unwrap() as u32;
            if t == EOS {
                break;
            }
            want.push(t);
            hist.push(t);
        }
        assert_eq!(o.hypotheses[0].tokens, want);
    }
    assert_eq!(out.seed, None);
}

#[test]
fn beam_returns_sorted_n_best_and_batches_like_single_calls() {
    let cfg = beam(6, -1.0, 4, 15);
    let batched = generate(&mut Toy::new(), &prompts(), &cfg, &mut ctl()).unwrap();
    for (i, p) in prompts().iter().enumerate() {
        let single = generate(&mut Toy::new(), std::slice::from_ref(p), &cfg, &mut ctl()).unwrap();
        assert_eq!(single.prompts[0].hypotheses, batched.prompts[i].hypotheses, "prompt {i}");
        let h = &batched.prompts[i].hypotheses;
        assert_eq!(h.len(), 4);
        assert!(h.windows(2).all(|w| w[0].score >= w[1].score));
        assert!(h.iter().all(|x| !x.tokens.contains(&EOS) && x.tokens.len() <= 15));
    }
}

#[test]
fn beam_search_is_never_worse_than_greedy_with_length_penalty_zero() {
    let g = DecodingConfig { strategy: Strategy::Greedy, max_new_tokens: 12, num_return_sequences: 1 };
    let greedy = generate(&mut Toy::new(), &prompts(), &g, &mut ctl()).unwrap();
    let b = generate(&mut Toy::new(), &prompts(), &beam(8, 0.0, 1, 12), &mut ctl()).unwrap();
    for (gp, bp) in greedy.prompts.iter().zip(&b.prompts) {
        assert!(bp.hypotheses[0].score >= gp.hypotheses[0].score - 1e-4, "{} < {}", bp.hypotheses[0].score, gp.hypotheses[0].score);
    }
}

#[test]
fn min_new_tokens_forces_the_full_length() {
    let mut c = ctl();
    c.min_new_tokens = 25;
    for cfg in [beam(8, -1.0, 8, 25), DecodingConfig { strategy: Strategy::Greedy, max_new_tokens: 25, num_return_sequences: 1 }] {
        let out = generate(&mut Toy::new(), &prompts(), &cfg, &mut c).unwrap();
        for p in &out.prompts {
            assert!(p.hypotheses.iter().all(|h| h.tokens.len() == 25 && !h.finished));
        }
    }
    // Without it, the toy model's EOS ends some sequences early.
    let out = generate(&mut Toy::new(), &prompts(), &beam(8, -1.0, 8, 25), &mut ctl()).unwrap();
    assert!(out.prompts.iter().any(|p| p.hypotheses.iter().any(|h| h.finished)));
}

#[test]
fn diverse_groups_differ_and_n_best_is_sorted() {
    let cfg = DecodingConfig {
        strategy: Strategy::DiverseBeam { num_beams: 8, num_beam_groups: 4, diversity_penalty: 5.0, length_penalty: 1.0, early_stopping: EarlyStopping::Heuristic },
        max_new_tokens: 10,
        num_return_sequences: 8,
    };
    let out = generate(&mut Toy::new(), &prompts(), &cfg, &mut ctl()).unwrap();
    for p in &out.prompts {
        assert_eq!(p.hypotheses.len(), 8);
        assert!(p.hypotheses.windows(2).all(|w| w[0].score >= w[1].score));
        let firsts: std::collections::HashSet<_> = p.hypotheses.iter().filter_map(|h| h.tokens.first()).collect();
        assert!(firsts.len() >= 3, "a strong Hamming penalty should spread first tokens: {firsts:?}");
    }
}

#[test]
fn sampling_is_reproducible_from_the_returned_seed() {
    let s = |seed| DecodingConfig { strategy: Strategy::Sample { temperature: 1.5, top_k: 0, top_p: 0.95, seed }, max_new_tokens: 20, num_return_sequences: 3 };
    let a = generate(&mut Toy::new(), &prompts(), &s(Some(42)), &mut ctl()).unwrap();
    let b = generate(&mut Toy::new(), &prompts(), &s(Some(42)), &mut ctl()).unwrap();
    assert_eq!(a, b);
    assert_eq!(a.seed, Some(42));
    let c = generate(&mut Toy::new(), &prompts(), &s(Some(43)), &mut ctl()).unwrap();
    assert_ne!(a.prompts, c.prompts);
    let drawn = generate(&mut Toy::new(), &prompts(), &s(None), &mut ctl()).unwrap();
    let seed = drawn.seed.expect("a drawn seed is returned");
    let again = generate(&mut Toy::new(), &prompts(), &s(Some(seed)), &mut ctl()).unwrap();
    assert_eq!(drawn.prompts, again.prompts);
}

#[test]
fn top_k_one_sampling_is_greedy() {
    let g = DecodingConfig { strategy: Strategy::Greedy, max_new_tokens: 15, num_return_sequences: 1 };
    let k1 = DecodingConfig { strategy: Strategy::Sample { temperature: 0.7, top_k: 1, top_p: 1.0, seed: Some(1) }, max_new_tokens: 15, num_return_sequences: 1 };
    let a = generate(&mut Toy::new(), &prompts(), &g, &mut ctl()).unwrap();
    let b = generate(&mut Toy::new(), &prompts(), &k1, &mut ctl()).unwrap();
    for (x, y) in a.prompts.iter().zip(&b.prompts) {
        assert_eq!(x.hypotheses[0].tokens, y.hypotheses[0].tokens);
    }
}

#[test]
fn invalid_options_are_rejected() {
    let bad = [
        beam(0, -1.0, 1, 10),
        beam(4, -1.0, 5, 10),
        beam(4, f32::NAN, 1, 10),
        beam(4, -1.0, 1, 0),
        DecodingConfig { strategy: Strategy::DiverseBeam { num_beams: 6, num_beam_groups: 4, diversity_penalty: 1.0, length_penalty: 1.0, early_stopping: EarlyStopping::Heuristic }, max_new_tokens: 5, num_return_sequences: 1 },
        DecodingConfig { strategy: Strategy::Sample { temperature: 0.0, top_k: 0, top_p: 1.0, seed: None }, max_new_tokens: 5, num_return_sequences: 1 },
        DecodingConfig { strategy: Strategy::Greedy, max_new_tokens: 5, num_return_sequences: 2 },
    ];
    for cfg in bad {
        let e = generate(&mut Toy::new(), &prompts(), &cfg, &mut ctl()).unwrap_err();
        assert!(matches!(e, Error::InvalidOptions(_)), "{cfg:?}: {e}");
    }
    let e = generate(&mut Toy::new(), &[vec![]], &beam(2, 1.0, 1, 5), &mut ctl()).unwrap_err();
    assert!(matches!(e, Error::EmptyPrompt));
    let e = generate(&mut Toy::new(), &[vec![1; 100]], &beam(2, 1.0, 1, 75), &mut ctl()).unwrap_err();
    assert!(matches!(e, Error::PromptTooLong { tokens: 100, new_tokens: 75, context: 128 }));
}

#[test]
fn progress_callback_sees_steps_and_can_cancel() {
    let mut seen = Vec::new();
    let mut cb = |s: usize, t: usize| {
        seen.push((s, t));
        s < 3
    };
    let mut c = Controls { progress: Some(&mut cb), ..ctl() };
    c.min_new_tokens = 10;
    let e = generate(&mut Toy::new(), &prompts(), &beam(4, -1.0, 1, 10), &mut c).unwrap_err();
    assert!(matches!(e, Error::Cancelled));
    assert_eq!(seen, vec![(1, 10), (2, 10), (3, 10)]);
}

#[test]
fn left_padding_matches_transformers_positions() {
    let b = PaddedBatch::left_padded(&[vec![5, 6, 7], vec![9]], 50256).unwrap();
    assert_eq!(b.input_ids, vec![5, 6, 7, 50256, 50256, 9]);
    assert_eq!(b.attention_mask, vec![1, 1, 1, 0, 0, 1]);
    // cumsum(mask) - 1, masked positions filled with 1.
    assert_eq!(b.position_ids, vec![0, 1, 2, 1, 1, 0]);
}
