//! One engine under load from many threads (docs/c-abi.md, "Threading"): 16 threads x 200 calls
//! mixing optimize and score give exactly the single-threaded results; a cancel flag set from
//! another thread during a score stops it within one denoising step; engines opened and freed
//! on several threads at once all work. Tiny random models (the score engine tests' bundles).
//! Needs ORT_DYLIB_PATH.

mod common;
#[path = "score_engine_common/mod.rs"]
mod score_engine_common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use promptist::diffusion::pipeline::{SdSettings, Stage};
use promptist::engine::{Engine, EngineOptions, OptimizeOptions, ScoreOptions};
use promptist::policy::config::DecodingConfig;
use promptist::Code;
use score_engine_common::bundles;

const THREADS: usize = 16;
const CALLS: usize = 200;
const PROMPTS: [&str; 4] = ["a red fox", "portrait of a sailor", "a castle at dawn", "a bowl of fruit"];

fn small_score() -> ScoreOptions {
    ScoreOptions { sd: SdSettings { width: 64, height: 64, steps: 2, ..Default::default() }, images_per_prompt: 1, ..Default::default() }
}

fn small_optimize() -> OptimizeOptions {
    OptimizeOptions::with_decoding(DecodingConfig { max_new_tokens: 6, num_return_sequences: 2, ..DecodingConfig::default() })
}

/// What one call returns, comparable across runs: the candidates' ids and scores, or the reward's
/// parts (bit patterns, so "equal" means identical).
#[derive(Debug, Clone, PartialEq)]
enum Outcome {
    Optimize(Vec<(Vec<u32>, u32)>),
    Score(Vec<u64>),
}

fn call(e: &Engine, k: usize) -> Outcome {
    let p = PROMPTS[k % PROMPTS.len()];
    if k % 4 == 3 {
        let r = e.score(p, &format!("{p}, highly detailed"), &small_score(), &mut |_, _, _| true).unwrap();
        let w = &r.candidates[0].reward;
        Outcome::Score([w.reward, w.relevance].iter().chain(&w.similarity).chain(&w.aesthetic_y).chain(&w.aesthetic_x).map(|v| v.to_bits()).collect())
    } else {
        let r = e.optimize(p, &small_optimize()).unwrap();
        Outcome::Optimize(r.candidates.iter().map(|c| (c.token_ids.clone(), c.score.to_bits())).collect())
    }
}

#[test]
fn sixteen_threads_mixing_optimize_and_score_match_single_threaded() {
    common::ort_ready();
    let e = Arc::new(Engine::open(&bundles().score, &EngineOptions::default()).unwrap());
    // The expected outcome of each kind of call, single-threaded (every call of a kind is the same
    // computation: the score engine's baseline cache does not change results, only work).
    let expected: Vec<Outcome> = (0..8).map(|k| call(&e, k)).collect();
    let done = Arc::new(AtomicUsize::new(0));
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let (e, expected, done) = (Arc::clone(&e), expected.clone(), Arc::clone(&done));
            std::thread::spawn(move || {
                for i in 0..CALLS {
                    let k = (t * 7 + i) % 8;
                    assert_eq!(call(&e, k), expected[k], "thread {t} call {i} (kind {k}) differs from the single-threaded result");
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("a worker thread failed");
    }
    assert_eq!(done.load(Ordering::Relaxed), THREADS * CALLS);
}

#[test]
fn cancel_from_another_thread_stops_a_score_within_one_step() {
    common::ort_ready();
    let e = Engine::open(&bundles().score, &EngineOptions::default()).unwrap();
    let flag = Arc::new(AtomicBool::new(false));
    let steps_after = Arc::new(AtomicUsize::new(0));
    let opts = ScoreOptions { sd: SdSettings { width: 64, height: 64, steps: 200, ..Default::default() }, images_per_prompt: 1, use_baseline_cache: false, ..Default::default() };
    let setter = {
        let flag = Arc::clone(&flag);
        std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(300));
            flag.store(true, Ordering::Release);
        })
    };
    let mut seen_flag_at: Option<usize> = None;
    let mut denoise_steps = 0usize;
    let mut progress = |s: Stage, _: usize, _: usize| {
        if s == Stage::Denoise {
            denoise_steps += 1;
            if seen_flag_at.is_some() {
                steps_after.fetch_add(1, Ordering::Relaxed);
            }
        }
        if flag.load(Ordering::Acquire) {
            seen_flag_at.get_or_insert(denoise_steps);
            return false;
        }
        true
    };
    let err = e.score("a red fox", "a red fox, 8k", &opts, &mut progress).unwrap_err();
    setter.join().unwrap();
    assert_eq!(err.code(), Code::Cancelled, "{err}");
    assert!(seen_flag_at.is_some(), "the flag was set while the score ran");
    assert!(denoise_steps < 400, "stopped before the end ({denoise_steps} of 400 denoising steps)");
    assert_eq!(steps_after.load(Ordering::Relaxed), 0, "no denoising step ran after the cancel was seen");
}

#[test]
fn engines_open_and_free_on_many_threads_at_once() {
    common::ort_ready();
    let handles: Vec<_> = (0..8)
        .map(|t| {
            std::thread::spawn(move || {
                for i in 0..3 {
                    let e = Engine::open(&bundles().policy_only, &EngineOptions::default()).unwrap();
                    let r = e.optimize(PROMPTS[(t + i) % PROMPTS.len()], &small_optimize()).unwrap();
                    assert!(!r.candidates.is_empty());
                    drop(e);
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("a thread opening and freeing engines failed");
    }
}
