//! The padded teacher-forcing forward (`logits_masked`) and the KV-cached decoder (`TchLm`) against
//! the plain unpadded forward, on a tiny GPT-2 with a peaked (scale 30) untied head: every logit
//! within 1e-5. Rows have left padding (queries) and right padding (responses) at once; the cached
//! decoder is checked after prefill, after every step, after beam-style reorders (rows repeated and
//! dropped) and after an expansion to more rows.

mod common;

use promptist::export::gpt2_config::Gpt2Config;
use promptist::export::tiny::LmHead;
use promptist::policy::{CausalLm, PaddedBatch};
use promptist_train::model::{Gpt2, Params, TchLm};
use tch::{Device, Kind, Tensor};

const TOL: f32 = 1e-5;

fn params(seed: u64) -> Params {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = Gpt2Config::tiny();
    cfg.vocab_size = 1000;
    cfg.eos_token_id = Some(999);
    cfg.bos_token_id = Some(999);
    promptist::export::write_random_checkpoint(dir.path(), &cfg, seed, LmHead::Untied { scale: 30.0 }).unwrap();
    Params::load_dir(dir.path(), Device::Cpu).unwrap().0
}

fn to_vec(t: &Tensor) -> Vec<f32> {
    Vec::<f32>::try_from(&t.to_kind(Kind::Float).contiguous().view([-1])).unwrap()
}

/// Logits of one unpadded sequence, [len, vocab] flattened.
fn plain(m: &Gpt2, ids: &[i64]) -> Vec<f32> {
    let t = Tensor::from_slice(ids).view([1, ids.len() as i64]);
    to_vec(&m.logits(&t).unwrap())
}

fn seq(r: usize, n: usize) -> Vec<i64> {
    (0..n).map(|j| ((r * 131 + j * 37 + 5) % 1000) as i64).collect()
}

#[test]
fn logits_masked_match_unpadded_rows() {
    tch::set_num_threads(1);
    let _g = tch::no_grad_guard();
    let p = params(21);
    let m = Gpt2::new(&p, Kind::Float);
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
    let ids_t = Tensor::from_slice(&ids).view(shape);
    let mask_t = Tensor::from_slice(&mask).view(shape);
    for mask_t in [mask_t.shallow_clone(), mask_t.to_kind(Kind::Bool)] {
        let got = m.logits_masked(&ids_t, &mask_t).unwrap();
        assert_eq!(got.size(), [rows.len() as i64, t as i64, v as i64]);
        let got = to_vec(&got);
        assert!(got.iter().all(|x| x.is_finite()), "non-finite logits (fully padded rows must not give NaN)");
        let mut worst = 0f32;
        for (r, &(l, n, _)) in rows.iter().enumerate() {
            let want = plain(&m, &seq(r, n));
            let at = (r * t + l) * v;
            worst = worst.max(common::max_abs_diff(&got[at..at + n * v], &want));
        }
        eprintln!("logits_masked vs unpadded rows ({:?} mask): max |diff| = {worst:.3e} over every real position", mask_t.kind());
        assert!(worst <= TOL, "max diff {worst}");
    }
    // hidden_masked is the same forward before the head
    let h = m.hidden_masked(&ids_t, &mask_t).unwrap();
    assert_eq!(h.size(), [rows.len() as i64, t as i64, p.cfg.n_embd as i64]);
    assert_eq!(h.kind(), Kind::Float);
}

#[test]
fn logits_masked_bf16_close_to_fp32() {
    tch::set_num_threads(1);
    let _g = tch::no_grad_guard();
    let p = params(22);
    let ids = Tensor::from_slice(&[999i64, 999, 5, 6, 7, 8, 9, 10, 999, 999]).view([1, 10]);
    let mask = Tensor::from_slice(&[0i64, 0, 1, 1, 1, 1, 1, 1, 0, 0]).view([1, 10]);
    let a = to_vec(&Gpt2::new(&p, Kind::Float).logits_masked(&ids, &mask).unwrap());
    let b = Gpt2::new(&p, Kind::BFloat16).logits_masked(&ids, &mask).unwrap();
    assert_eq!(b.kind(), Kind::Float);
    let b = to_vec(&b);
    let v = p.cfg.vocab_size;
    let amax = a[2 * v..8 * v].iter().fold(0f32, |m, x| m.max(x.abs()));
    let d = common::max_abs_diff(&a[2 * v..8 * v], &b[2 * v..8 * v]);
    eprintln!("bf16 vs fp32 logits_masked: max |diff| {d:.3e} (max |logit| {amax:.2})");
    assert!(d <= 0.05 * amax, "bf16 drifted: {d}");
}

/// The cached decoder's current logits against `logits_masked` of each row's full history.
fn check_rows(m: &Gpt2, lm: &TchLm, hist: &[Vec<i64>], what: &str) -> f32 {
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
    let full = to_vec(&m.logits_masked(&Tensor::from_slice(&ids).view(shape), &Tensor::from_slice(&mask).view(shape)).unwrap());
    let mut worst = 0f32;
    for (r, _) in hist.iter().enumerate() {
        let at = (r * t + t - 1) * v;
        worst = worst.max(common::max_abs_diff(&got[r * v..(r + 1) * v], &full[at..at + v]));
    }
    assert!(worst <= TOL, "{what}: max diff {worst}");
    worst
}

#[test]
fn kv_cache_matches_full_forward() {
    tch::set_num_threads(1);
    let _g = tch::no_grad_guard();
    let p = params(23);
    let m = Gpt2::new(&p, Kind::Float);
    let mut lm = TchLm::new(&p, Kind::Float);
    assert_eq!(lm.vocab_size(), 1000);
    assert_eq!(lm.max_positions(), 256);
    let prompts: Vec<Vec<u32>> = vec![seq(0, 7), seq(1, 3), seq(2, 10), seq(3, 1)].into_iter().map(|s| s.into_iter().map(|x| x as u32).collect()).collect();
    let mut hist: Vec<Vec<i64>> = prompts.iter().map(|p| p.iter().map(|&x| x as i64).collect()).collect();
    lm.prefill(&PaddedBatch::left_padded(&prompts, 999).unwrap()).unwrap();
    let mut worst = check_rows(&m, &lm, &hist, "prefill");
    // expansion to beams: 4 prompts x 3 rows
    let expand: Vec<usize> = (0..4).flat_map(|p| [p, p, p]).collect();
    lm.select_rows(&expand).unwrap();
    hist = expand.iter().map(|&s| hist[s].clone()).collect();
    worst = worst.max(check_rows(&m, &lm, &hist, "expand"));
    for step in 0..9usize {
        let toks: Vec<u32> = (0..hist.len()).map(|r| ((r * 53 + step * 17 + 1) % 1000) as u32).collect();
        lm.step(&toks).unwrap();
        for (h, &t) in hist.iter_mut().zip(&toks) {
            h.push(t as i64);
        }
        worst = worst.max(check_rows(&m, &lm, &hist, &format!("step {step}")));
        // beam-style reorder: rows repeated, some dropped, order changed
        let n = hist.len();
        let src: Vec<usize> = (0..n).map(|i| (i * 7 + step) % n / 2 * 2).collect();
        lm.select_rows(&src).unwrap();
        hist = src.iter().map(|&s| hist[s].clone()).collect();
        worst = worst.max(check_rows(&m, &lm, &hist, &format!("reorder after step {step}")));
        if step == 5 {
            // drop rows (a finished prompt leaves the batch)
            let keep: Vec<usize> = (3..n).collect();
            lm.select_rows(&keep).unwrap();
            hist = keep.iter().map(|&s| hist[s].clone()).collect();
            worst = worst.max(check_rows(&m, &lm, &hist, "drop"));
        }
    }
    eprintln!("TchLm prefill/steps/select_rows vs logits_masked of the full sequence: max |diff| = {worst:.3e} (every logit)");
    assert!(lm.select_rows(&[hist.len()]).is_err(), "out-of-range row must be an error");
    assert!(lm.step(&[1]).is_err(), "token count must match the rows");
}
