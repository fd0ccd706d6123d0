//! The PPO rollout proof: diverse beam search on the tch policy (the library's search through
//! `TchLm`) returns the same sequences as (i) the library's ONNX decoder on the bundle exported from
//! the same weights by the trainer's exporter and (ii) transformers 4.53.3
//! `generate(num_beams=n, num_beam_groups=n, diversity_penalty=1.0, num_return_sequences=n,
//! do_sample=False)`, for n = 16 and 8, on 26 prompts run as one left-padded batch.
//!
//! Weights: a seeded tiny GPT-2 whose untied LM head has std 0.02 * 30 (peaked next-token
//! distributions, as the library's decode parity tests use) with the EOS row scaled by 2.5 so that
//! sequences end at varied lengths. Every returned sequence of every prompt is compared; matched
//! sequences' scores must agree to 1e-4 (relative). Tie detection: a difference counts as a
//! float-level tie only when the prompt's result is float-sensitive, i.e. the tch search itself
//! returns other ids when its logits get a seeded noise of JITTER (absolute, far above the measured
//! 1e-5 gap between implementations, far below the peaked head's logit gaps); ties are printed and
//! at most MAX_TIES per comparison are accepted; any other difference fails. (The library's
//! `Margin` is printed too but cannot serve here: with one beam per group it is 0 whenever a group
//! ends on its best candidate, since `is_done` then compares a hypothesis with its own score.) The
//! detector is itself checked on a head with two identical rows (an exact tie it must flag).
//! Needs ORT (ORT_DYLIB_PATH) and the reference Python with the transformers 4.53.3 overlay
//! (PROMPTIST_PYTHON, PROMPTIST_TF4): a missing one fails with a message, never a skip.

mod common;
mod decode_common;

use std::path::{Path, PathBuf};
use std::process::Command;

use decode_common::*;
use promptist::policy::{generate, CausalLm, Controls, Gpt2Dims, OnnxGpt2, PaddedBatch};
use promptist::runtime::{Runtime, SessionOptions};
use promptist::text::gpt2::Gpt2Tokenizer;
use promptist_train::model::rollout_decode::prompt_ids;
use promptist_train::model::{diverse_decode_ids, diverse_rollouts, DiverseOptions, Params, TchLm};
use tch::{Device, Kind};

fn ort_path() -> PathBuf {
    let p = std::env::var_os("ORT_DYLIB_PATH").map(PathBuf::from);
    match p {
        Some(p) if p.is_file() => p,
        other => panic!("ORT_DYLIB_PATH is unset or missing ({other:?}): this test runs the library's ONNX decoder; source tests/env.sh or point it at libonnxruntime.so"),
    }
}

fn tf4() -> PathBuf {
    let p = std::env::var_os("PROMPTIST_TF4").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/promptist/tf4"));
    assert!(
        p.join("transformers/__init__.py").is_file(),
        "the transformers 4.53.3 overlay is missing at {} (group beam search reference): source tests/env.sh or set PROMPTIST_TF4",
        p.display()
    );
    p
}

/// The library's ONNX decoder on the exported bundle.
fn onnx_search(bundle: &Path, prompts: &[Vec<u32>], opts: &DiverseOptions) -> (Vec<Seqs>, Vec<f32>) {
    let rt = Runtime::get(Some(&ort_path())).unwrap();
    let so = SessionOptions { intra_op_threads: 1, ..Default::default() };
    let (session, _) = rt.session(&bundle.join("policy/model.onnx"), &so, None).unwrap();
    let dims = Gpt2Dims::from_config_json(&std::fs::read_to_string(bundle.join("policy/config.json")).unwrap()).unwrap();
    let mut lm = OnnxGpt2::new(session, dims).unwrap();
    let mut ctl = Controls { eos_token_id: EOS, pad_token_id: EOS, min_new_tokens: 0, progress: None };
    let out = generate(&mut lm, prompts, &opts.config(), &mut ctl).unwrap();
    (out.prompts.iter().map(from_lib).collect(), out.prompts.iter().map(|p| gap(&p.margin)).collect())
}

/// transformers 4.53.3 group beam search (tests/python/decode_hf_generate.py), all prompts in one
/// left-padded batch.
fn hf_search(ck: &Path, prompts: &[Vec<u32>], opts: &DiverseOptions, tmp: &Path) -> Vec<Seqs> {
    let req = serde_json::json!({
        "prompts": prompts, "strategy": "diverse", "num_beams": opts.num_beams, "num_beam_groups": opts.num_beam_groups,
        "diversity_penalty": opts.diversity_penalty, "length_penalty": opts.length_penalty, "early_stopping": "heuristic",
        "max_new_tokens": opts.max_new_tokens, "num_return_sequences": opts.num_return_sequences, "batch": true,
    });
    let req_path = tmp.join(format!("hf_request_{}.json", opts.num_beams));
    std::fs::write(&req_path, req.to_string()).unwrap();
    let script = common::repo_root().join("tests/python/decode_hf_generate.py");
    let out = Command::new(common::python()).env("PYTHONPATH", tf4()).arg(&script).arg(ck).arg(&req_path).output().expect("running the reference Python");
    assert!(out.status.success(), "{} failed:\n{}", script.display(), String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    let v: serde_json::Value = serde_json::from_str(text.trim().lines().last().unwrap()).unwrap();
    assert_eq!(v["transformers"], "4.53.3", "the reference must be transformers 4.53.3 (group beam search)");
    v["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            r["hypotheses"]
                .as_array()
                .unwrap()
                .iter()
                .map(|h| {
                    let toks = h["tokens"].as_array().unwrap().iter().map(|t| t.as_u64().unwrap() as u32).collect();
                    (toks, h["score"].as_f64().expect("sequences_scores") as f32, None)
                })
                .collect()
        })
        .collect()
}

struct Fixture {
    dir: tempfile::TempDir,
    params: Params,
    tok: Gpt2Tokenizer,
    sources: Vec<String>,
    prompts: Vec<Vec<u32>>,
}

fn fixture() -> Fixture {
    tch::set_num_threads(1);
    let (ort, tf4_dir, py) = (ort_path(), tf4(), common::python());
    eprintln!("ORT {}, transformers overlay {}, python {}", ort.display(), tf4_dir.display(), py.display());
    let dir = tempfile::tempdir().unwrap();
    let ck = dir.path().join("ck");
    checkpoint(&ck);
    let eopts = promptist_train::export::ExportOptions { external_threshold_bytes: None, ..Default::default() };
    promptist_train::export::export_bundle(&ck, &dir.path().join("bundle"), &eopts).unwrap();
    let (params, unused) = Params::load_dir(&ck, Device::Cpu).unwrap();
    assert!(unused.is_empty(), "{unused:?}");
    let tok = Gpt2Tokenizer::embedded().unwrap();
    let sources: Vec<String> = PROMPTS.iter().map(|s| s.to_string()).collect();
    let prompts: Vec<Vec<u32>> = sources.iter().map(|s| prompt_ids(&tok, s).unwrap()).collect();
    assert!(prompts.iter().all(|p| !p.is_empty() && !p.contains(&EOS)));
    Fixture { dir, params, tok, sources, prompts }
}

fn parity(nb: usize) {
    let Fixture { dir, params, tok, sources, prompts } = fixture();
    let (ck, bundle) = (dir.path().join("ck"), dir.path().join("bundle"));
    let mut failures = Vec::new();
    {
        let opts = DiverseOptions::new(nb, 1.0, MAX_NEW);
        let t = std::time::Instant::now();
        let tch_out = diverse_decode_ids(&params, Kind::Float, &prompts, EOS, &opts).unwrap();
        let tch_s = t.elapsed().as_secs_f64();
        let ours: Vec<Seqs> = tch_out.iter().map(from_tch).collect();
        assert!(ours.iter().all(|s| s.len() == nb), "every prompt returns {nb} sequences");
        let t = std::time::Instant::now();
        let (onnx, onnx_gaps) = onnx_search(&bundle, &prompts, &opts);
        let onnx_s = t.elapsed().as_secs_f64();
        let t = std::time::Instant::now();
        let hf = hf_search(&ck, &prompts, &opts, dir.path());
        let hf_s = t.elapsed().as_secs_f64();
        let tch_margins: Vec<f32> = tch_out.iter().map(|p| gap(&p.margin)).collect();
        let ended: usize = ours.iter().flatten().filter(|s| s.2 == Some(true)).count();
        let lens: Vec<usize> = ours.iter().flatten().map(|s| s.0.len()).collect();
        let distinct = ours.iter().filter(|s| s.iter().map(|x| &x.0).collect::<std::collections::BTreeSet<_>>().len() == nb).count();
        eprintln!(
            "[beams=groups={nb}] {} prompts x {nb} sequences; EOS-ended {ended}/{}; lengths {}..{}; prompts with all-distinct sequences {distinct}/{}; smallest margin {:.3e}; seconds: tch {tch_s:.2}, onnx {onnx_s:.2}, transformers (process) {hf_s:.2}",
            prompts.len(),
            lens.len(),
            lens.iter().min().unwrap(),
            lens.iter().max().unwrap(),
            prompts.len(),
            tch_margins.iter().fold(f32::INFINITY, |a, &b| a.min(b)),
        );
        // ONNX: the closer call of the two searches decides what counts as a tie.
        let onnx_margins: Vec<f32> = tch_margins.iter().zip(&onnx_gaps).map(|(a, b)| a.min(*b)).collect();
        for (label, theirs, margins) in [(format!("tch vs ONNX beams={nb}"), &onnx, &onnx_margins), (format!("tch vs transformers 4.53.3 beams={nb}"), &hf, &tch_margins)] {
            let sensitive = |which: &[usize]| float_sensitive(&params, &prompts, which, &opts, &ours);
            let (same, ties, fails) = compare(&label, &ours, theirs, margins, &sensitive);
            let seqs_same: usize = ours.iter().zip(theirs.iter()).map(|(a, b)| a.iter().zip(b).filter(|(x, y)| x.0 == y.0).count()).sum();
            eprintln!("[{label}] identical prompts {same}/{}; identical sequences {seqs_same}/{}; float-level ties {}; other differences {}", ours.len(), ours.len() * nb, ties.len(), fails.len());
            for t in &ties {
                eprintln!("  TIE: {t}");
            }
            if ties.len() > MAX_TIES {
                failures.push(format!("{label}: {} ties > {MAX_TIES}", ties.len()));
            }
            failures.extend(fails);
        }
        if nb == 8 {
            // the text entry point gives the same ids
            let text = diverse_rollouts(&params, Kind::Float, &tok, &sources, nb, 1.0, MAX_NEW).unwrap();
            let ids: Vec<Vec<Vec<u32>>> = ours.iter().map(|s| s.iter().map(|x| x.0.clone()).collect()).collect();
            assert_eq!(text, ids, "diverse_rollouts on the source texts");
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn diverse_beam_16_matches_onnx_and_transformers() {
    parity(16);
}

#[test]
fn diverse_beam_8_matches_onnx_and_transformers() {
    parity(8);
}

/// The tie detector flags an exact tie: LM-head row `b` made equal to the row of the first step's
/// best token `a`, so `a` and `b` have bit-identical scores at every step.
#[test]
fn tie_detector_flags_an_exact_tie() {
    tch::set_num_threads(1);
    let dir = tempfile::tempdir().unwrap();
    let ck = dir.path().join("ck");
    checkpoint(&ck);
    let tok = Gpt2Tokenizer::embedded().unwrap();
    let prompt = vec![prompt_ids(&tok, PROMPTS[0]).unwrap()];
    let (params, _) = Params::load_dir(&ck, Device::Cpu).unwrap();
    let a = {
        let mut lm = TchLm::new(&params, Kind::Float);
        lm.prefill(&PaddedBatch::left_padded(&prompt, EOS).unwrap()).unwrap();
        let l = lm.logits();
        (0..l.len()).max_by(|&i, &j| l[i].total_cmp(&l[j])).unwrap()
    };
    let b = if a == 0 { 1 } else { a - 1 };
    let mut w = promptist::weights::read_safetensors(&ck.join("model.safetensors")).unwrap();
    let head = w.tensors.get_mut("lm_head.weight").unwrap();
    let e = head.shape[1];
    let row: Vec<f32> = head.data[a * e..(a + 1) * e].to_vec();
    head.data[b * e..(b + 1) * e].copy_from_slice(&row);
    let weights = w;
    let (tied, _) = Params::from_weights(&params.cfg, &weights, Device::Cpu).unwrap();
    let opts = DiverseOptions::new(8, 1.0, 20);
    let base: Vec<Seqs> = diverse_decode_ids(&tied, Kind::Float, &prompt, EOS, &opts).unwrap().iter().map(from_tch).collect();
    let firsts: Vec<u32> = base[0].iter().filter_map(|s| s.0.first().copied()).collect();
    assert!(firsts.contains(&(a as u32)) && firsts.contains(&(b as u32)), "both tied tokens start a returned sequence: {firsts:?} (a {a}, b {b})");
    assert_eq!(float_sensitive(&tied, &prompt, &[0], &opts, &base), vec![true], "an exact tie must be flagged");
    // and the untouched weights are not float-sensitive on this prompt
    let plain: Vec<Seqs> = diverse_decode_ids(&params, Kind::Float, &prompt, EOS, &opts).unwrap().iter().map(from_tch).collect();
    assert_eq!(float_sensitive(&params, &prompt, &[0], &opts, &plain), vec![false]);
    // a real difference (no diversity penalty: the groups repeat each other) is a failure, not a tie
    let other: Vec<Seqs> = diverse_decode_ids(&params, Kind::Float, &prompt, EOS, &DiverseOptions::new(8, 0.0, 20)).unwrap().iter().map(from_tch).collect();
    let sensitive = |which: &[usize]| float_sensitive(&params, &prompt, which, &opts, &plain);
    let (same, ties, fails) = compare("dp 1.0 vs 0.0", &plain, &other, &[0.0], &sensitive);
    assert_eq!((same, ties.len(), fails.len()), (0, 0, 1), "{ties:?} {fails:?}");
}
