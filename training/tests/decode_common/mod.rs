//! Shared parts of the tch decoding tests: the peaked tiny checkpoint with a boosted EOS row, the
//! prompt list, sequence comparison, and the float-tie detector (the tch search rerun with seeded
//! antithetic logit noise: a prompt whose result changes is float-sensitive), and the padded-forward
//! and KV-cache cases of lm.rs on any device (lm_cuda.rs runs them on CUDA).
#![allow(dead_code)]

use std::path::Path;

use promptist::export::gpt2_config::Gpt2Config;
use promptist::export::tiny::LmHead;
use promptist::policy::{generate, CausalLm, Controls, Margin, PaddedBatch, PromptOutput};
use promptist_train::model::{DiverseOptions, Gpt2, Params, PromptRollouts, TchLm};
use tch::{Device, Kind, Tensor};

pub const EOS: u32 = 50256;
pub const EOS_BOOST: f32 = 2.5;
pub const MAX_NEW: usize = 75;
pub const JITTER: f32 = 1e-4;
/// Noise runs of the detector: a seed and its negated (antithetic) noise, so that an exact tie
/// between two candidates is broken one way in one run and the other way in the other.
pub const JITTER_RUNS: [(u64, f32); 2] = [(1, 1.0), (1, -1.0)];
pub const MAX_TIES: usize = 1;
pub const SCORE_RTOL: f32 = 1e-4;

/// Short text-to-image prompts (the library's decode parity list).
pub const PROMPTS: [&str; 26] = [
    "a cat sitting on a windowsill", "portrait of an old fisherman", "a castle on a hill at sunset",
    "a futuristic city skyline", "a bowl of fruit on a table", "a dragon flying over mountains",
    "an astronaut riding a horse", "a cozy cabin in the snowy woods", "a robot playing the violin",
    "a lighthouse in a storm", "a forest with glowing mushrooms", "a steampunk airship",
    "a girl reading a book under a tree", "a vintage car on a desert road", "an owl in the moonlight",
    "a bustling market in marrakech", "underwater coral reef with fish", "a samurai in the rain",
    "a watercolor painting of paris", "a knight facing a giant", "a tiny house on a floating island",
    "mars colony at dawn", "A Fox In Autumn Leaves.", "  a sailing ship, oil painting  ",
    "café terrace at night — van gogh style", "neon tokyo street 🌃",
];

/// One prompt's returned sequences: (ids, score, finished if known).
pub type Seqs = Vec<(Vec<u32>, f32, Option<bool>)>;

pub fn from_tch(p: &PromptRollouts) -> Seqs {
    p.sequences.iter().map(|r| (r.tokens.clone(), r.score, Some(r.finished))).collect()
}

pub fn from_lib(p: &PromptOutput) -> Seqs {
    p.hypotheses.iter().map(|h| (h.tokens.clone(), h.score, Some(h.finished))).collect()
}

/// `TchLm` with a seeded uniform noise in [-eps, eps] added to every logit it returns.
pub struct Jitter<'a> {
    pub inner: TchLm<'a>,
    pub eps: f32,
    pub seed: u64,
    pub calls: u64,
    pub buf: Vec<f32>,
}

pub fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

impl Jitter<'_> {
    fn refresh(&mut self) {
        self.calls += 1;
        let base = mix(self.seed ^ mix(self.calls));
        let eps = self.eps;
        self.buf.clear();
        self.buf.extend(self.inner.logits().iter().enumerate().map(|(i, &x)| {
            let u = (mix(base ^ i as u64) >> 40) as f32 / (1u64 << 24) as f32;
            x + eps * (2.0 * u - 1.0)
        }));
    }
}

impl CausalLm for Jitter<'_> {
    fn vocab_size(&self) -> usize {
        self.inner.vocab_size()
    }
    fn max_positions(&self) -> usize {
        self.inner.max_positions()
    }
    fn prefill(&mut self, b: &PaddedBatch) -> promptist::Result<()> {
        self.inner.prefill(b)?;
        self.refresh();
        Ok(())
    }
    fn select_rows(&mut self, src: &[usize]) -> promptist::Result<()> {
        self.inner.select_rows(src)?;
        self.refresh();
        Ok(())
    }
    fn step(&mut self, t: &[u32]) -> promptist::Result<()> {
        self.inner.step(t)?;
        self.refresh();
        Ok(())
    }
    fn rows(&self) -> usize {
        self.inner.rows()
    }
    fn logits(&self) -> &[f32] {
        &self.buf
    }
}

/// For each of `which`, whether the tch search returns other ids than `base` under logit noise.
pub fn float_sensitive(params: &Params, prompts: &[Vec<u32>], which: &[usize], opts: &DiverseOptions, base: &[Seqs]) -> Vec<bool> {
    let mut out = vec![false; which.len()];
    if which.is_empty() {
        return out;
    }
    let sub: Vec<Vec<u32>> = which.iter().map(|&i| prompts[i].clone()).collect();
    for (seed, sign) in JITTER_RUNS {
        let mut lm = Jitter { inner: TchLm::new(params, Kind::Float), eps: sign * JITTER, seed, calls: 0, buf: Vec::new() };
        let mut ctl = Controls { eos_token_id: EOS, pad_token_id: EOS, min_new_tokens: 0, progress: None };
        let res = generate(&mut lm, &sub, &opts.config(), &mut ctl).unwrap();
        for (k, p) in res.prompts.iter().enumerate() {
            let ids: Vec<&Vec<u32>> = p.hypotheses.iter().map(|h| &h.tokens).collect();
            let want: Vec<&Vec<u32>> = base[which[k]].iter().map(|s| &s.0).collect();
            out[k] |= ids != want;
        }
    }
    out
}

/// The peaked tiny checkpoint with the EOS row of the head boosted.
pub fn checkpoint(dir: &Path) {
    promptist::export::write_random_checkpoint(dir, &Gpt2Config::tiny(), 0, LmHead::Untied { scale: 30.0 }).unwrap();
    let path = dir.join("model.safetensors");
    let mut w = promptist::weights::read_safetensors(&path).unwrap();
    let head = w.tensors.get_mut("lm_head.weight").expect("untied head");
    let e = head.shape[1];
    for x in &mut head.data[EOS as usize * e..(EOS as usize + 1) * e] {
        *x *= EOS_BOOST;
    }
    let meta = std::collections::HashMap::from([("format".to_string(), "pt".to_string())]);
    promptist::weights::write_safetensors(&w, &path, promptist::weights::safetensors_io::StoreDtype::F32, Some(meta)).unwrap();
}

/// Compare every returned sequence of every prompt; returns (identical prompts, ties, failures).
pub fn compare(label: &str, ours: &[Seqs], theirs: &[Seqs], margins: &[f32], sensitive: &dyn Fn(&[usize]) -> Vec<bool>) -> (usize, Vec<String>, Vec<String>) {
    assert_eq!(ours.len(), theirs.len(), "{label}: number of prompts");
    let (mut same, mut ties, mut fails) = (0, Vec::new(), Vec::new());
    let differ: Vec<usize> = ours.iter().zip(theirs).enumerate().filter(|(_, (a, b))| a.iter().map(|s| &s.0).ne(b.iter().map(|s| &s.0))).map(|(i, _)| i).collect();
    let sens = sensitive(&differ);
    for (i, (a, b)) in ours.iter().zip(theirs).enumerate() {
        let (ta, tb): (Vec<&Vec<u32>>, Vec<&Vec<u32>>) = (a.iter().map(|s| &s.0).collect(), b.iter().map(|s| &s.0).collect());
        if ta == tb {
            same += 1;
            for (j, (x, y)) in a.iter().zip(b).enumerate() {
                if (x.1 - y.1).abs() > SCORE_RTOL * 1f32.max(y.1.abs()) {
                    fails.push(format!("{label} prompt {i} seq {j}: same ids, score {} vs {}", x.1, y.1));
                }
                if let (Some(fx), Some(fy)) = (x.2, y.2) {
                    if fx != fy {
                        fails.push(format!("{label} prompt {i} seq {j}: same ids, finished {fx} vs {fy}"));
                    }
                }
            }
            continue;
        }
        let first = ta.iter().zip(&tb).position(|(x, y)| x != y);
        let msg = format!("{label} prompt {i}: ids differ (first at returned sequence {first:?}); library margin {:.3e}", margins[i]);
        let k = differ.iter().position(|&d| d == i).unwrap();
        if sens[k] {
            ties.push(format!("{msg}; the tch search changes under logit noise {JITTER}: float-level TIE"));
        } else {
            fails.push(format!("{msg}\n  ours:   {:?}\n  theirs: {:?}", &ta[..ta.len().min(2)], &tb[..tb.len().min(2)]));
        }
    }
    (same, ties, fails)
}

pub fn gap(m: &Margin) -> f32 {
    m.gap
}


// ---- padded forward / KV cache cases, on any device ----

/// A tiny GPT-2 (vocab 1000) with a peaked (scale 30) untied head on `device`.
pub fn small_params(seed: u64, device: Device) -> Params {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = Gpt2Config::tiny();
    cfg.vocab_size = 1000;
    cfg.eos_token_id = Some(999);
    cfg.bos_token_id = Some(999);
    promptist::export::write_random_checkpoint(dir.path(), &cfg, seed, LmHead::Untied { scale: 30.0 }).unwrap();
    Params::load_dir(dir.path(), device).unwrap().0
}

pub fn to_vec(t: &Tensor) -> Vec<f32> {
    Vec::<f32>::try_from(&t.to_kind(Kind::Float).to_device(Device::Cpu).contiguous().view([-1])).unwrap()
}

fn ids_tensor(v: &[i64], shape: [i64; 2], device: Device) -> Tensor {
    Tensor::from_slice(v).view(shape).to_device(device)
}

/// Logits of one unpadded sequence, [len, vocab] flattened.
fn plain(m: &Gpt2, ids: &[i64]) -> Vec<f32> {
    to_vec(&m.logits(&ids_tensor(ids, [1, ids.len() as i64], m.params.device)).unwrap())
}

fn seq(r: usize, n: usize) -> Vec<i64> {
    (0..n).map(|j| ((r * 131 + j * 37 + 5) % 1000) as i64).collect()
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "length mismatch");
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

/// `logits_masked` of rows with left and right padding against each row's unpadded `logits` on
/// its real positions (int64 and bool masks); returns the max |diff|, which must be <= tol.
pub fn masked_case(p: &Params, tol: f32) -> f32 {
    let _g = tch::no_grad_guard();
    let m = Gpt2::new(p, Kind::Float);
    let v = p.cfg.vocab_size;
    // (left pad, real length, right pad); total 14
    let rows = [(0usize, 14usize, 0usize), (3, 11, 0), (0, 9, 5), (4, 6, 4), (6, 1, 7)];
    let t = 14;
    let (mut ids, mut mask) = (Vec::new(), Vec::new());
    for (r, &(l, n, rp)) in rows.iter().enumerate() {
        assert_eq!(l + n + rp, t);
        ids.extend(std::iter::repeat_n(999i64, l).chain(seq(r, n)).chain(std::iter::repeat_n(999, rp)));
        mask.extend(std::iter::repeat_n(0i64, l).chain(std::iter::repeat_n(1, n)).chain(std::iter::repeat_n(0, rp)));
    }
    let shape = [rows.len() as i64, t as i64];
    let ids_t = ids_tensor(&ids, shape, p.device);
    let mask_t = ids_tensor(&mask, shape, p.device);
    let mut worst = 0f32;
    for mask_t in [mask_t.shallow_clone(), mask_t.to_kind(Kind::Bool)] {
        let got = m.logits_masked(&ids_t, &mask_t).unwrap();
        assert_eq!(got.size(), [rows.len() as i64, t as i64, v as i64]);
        assert_eq!(got.kind(), Kind::Float);
        let got = to_vec(&got);
        assert!(got.iter().all(|x| x.is_finite()), "non-finite logits (fully padded rows must not give NaN)");
        let mut w = 0f32;
        for (r, &(l, n, _)) in rows.iter().enumerate() {
            let want = plain(&m, &seq(r, n));
            let at = (r * t + l) * v;
            w = w.max(max_abs_diff(&got[at..at + n * v], &want));
        }
        eprintln!("[{:?}] logits_masked vs unpadded rows ({:?} mask): max |diff| = {w:.3e} over every real position", p.device, mask_t.kind());
        assert!(w <= tol, "max diff {w} > {tol}");
        worst = worst.max(w);
    }
    let h = m.hidden_masked(&ids_t, &mask_t).unwrap();
    assert_eq!(h.size(), [rows.len() as i64, t as i64, p.cfg.n_embd as i64]);
    assert_eq!(h.kind(), Kind::Float);
    worst
}

/// The cached decoder's current logits against `logits_masked` of each row's full history.
fn check_rows(m: &Gpt2, lm: &TchLm, hist: &[Vec<i64>], what: &str, tol: f32) -> f32 {
    let v = m.params.cfg.vocab_size;
    let got = lm.logits();
    assert_eq!(lm.rows(), hist.len());
    assert_eq!(got.len(), hist.len() * v);
    let t = hist.iter().map(|h| h.len()).max().unwrap();
    // left-padded full histories, as generate() sees them
    let (mut ids, mut mask) = (Vec::new(), Vec::new());
    for h in hist {
        ids.extend(std::iter::repeat_n(999i64, t - h.len()).chain(h.iter().copied()));
        mask.extend(std::iter::repeat_n(0i64, t - h.len()).chain(std::iter::repeat_n(1, h.len())));
    }
    let shape = [hist.len() as i64, t as i64];
    let dev = m.params.device;
    let full = to_vec(&m.logits_masked(&ids_tensor(&ids, shape, dev), &ids_tensor(&mask, shape, dev)).unwrap());
    let mut worst = 0f32;
    for r in 0..hist.len() {
        let at = (r * t + t - 1) * v;
        worst = worst.max(max_abs_diff(&got[r * v..(r + 1) * v], &full[at..at + v]));
    }
    assert!(worst <= tol, "{what}: max diff {worst} > {tol}");
    worst
}

/// `TchLm` after prefill, an expansion to beams, steps, beam-style reorders (rows repeated and
/// dropped) and a row drop, against `logits_masked` of the full sequences; returns the max |diff|.
pub fn cache_case(p: &Params, tol: f32) -> f32 {
    let _g = tch::no_grad_guard();
    let m = Gpt2::new(p, Kind::Float);
    let mut lm = TchLm::new(p, Kind::Float);
    assert_eq!(lm.vocab_size(), 1000);
    assert_eq!(lm.max_positions(), 256);
    let prompts: Vec<Vec<u32>> = vec![seq(0, 7), seq(1, 3), seq(2, 10), seq(3, 1)].into_iter().map(|s| s.into_iter().map(|x| x as u32).collect()).collect();
    let mut hist: Vec<Vec<i64>> = prompts.iter().map(|p| p.iter().map(|&x| x as i64).collect()).collect();
    lm.prefill(&PaddedBatch::left_padded(&prompts, 999).unwrap()).unwrap();
    let mut worst = check_rows(&m, &lm, &hist, "prefill", tol);
    // expansion to beams: 4 prompts x 3 rows
    let expand: Vec<usize> = (0..4).flat_map(|p| [p, p, p]).collect();
    lm.select_rows(&expand).unwrap();
    hist = expand.iter().map(|&s| hist[s].clone()).collect();
    worst = worst.max(check_rows(&m, &lm, &hist, "expand", tol));
    for step in 0..9usize {
        let toks: Vec<u32> = (0..hist.len()).map(|r| ((r * 53 + step * 17 + 1) % 1000) as u32).collect();
        lm.step(&toks).unwrap();
        for (h, &t) in hist.iter_mut().zip(&toks) {
            h.push(t as i64);
        }
        worst = worst.max(check_rows(&m, &lm, &hist, &format!("step {step}"), tol));
        // beam-style reorder: rows repeated, some dropped, order changed
        let n = hist.len();
        let src: Vec<usize> = (0..n).map(|i| (i * 7 + step) % n / 2 * 2).collect();
        lm.select_rows(&src).unwrap();
        hist = src.iter().map(|&s| hist[s].clone()).collect();
        worst = worst.max(check_rows(&m, &lm, &hist, &format!("reorder after step {step}"), tol));
        if step == 5 {
            // drop rows (a finished prompt leaves the batch)
            let keep: Vec<usize> = (3..n).collect();
            lm.select_rows(&keep).unwrap();
            hist = keep.iter().map(|&s| hist[s].clone()).collect();
            worst = worst.max(check_rows(&m, &lm, &hist, "drop", tol));
        }
    }
    eprintln!("[{:?}] TchLm prefill/steps/select_rows vs logits_masked of the full sequence: max |diff| = {worst:.3e} (every logit)", p.device);
    assert!(lm.select_rows(&[hist.len()]).is_err(), "out-of-range row must be an error");
    assert!(lm.step(&[1]).is_err(), "token count must match the rows");
    worst
}
