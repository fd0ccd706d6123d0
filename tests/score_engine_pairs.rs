//! `Engine::score_pairs` (the PPO reward stage: many (x, y) pairs in one call) on the tiny random
//! score bundle: the same numbers as `score_many` per pair whatever `sd.max_batch`, one baseline
//! per distinct x, the statistics, the configurable cache (capacity, no images kept unless asked,
//! cumulative hits / misses), and scoring without the cache equal to the cached path bit for bit.
//! Needs ORT_DYLIB_PATH (fails with a clear message without it).

mod common;
mod score_engine_common;

use promptist::diffusion::pipeline::{SdSettings, Stage};
use promptist::engine::{Engine, EngineOptions, PairScores, ScoreOptions, BASELINE_CACHE_CAPACITY};
use promptist::reward::math::Reward;
use promptist::Code;
use score_engine_common::bundles;

fn small(seed: u64, max_batch: usize) -> ScoreOptions {
    ScoreOptions {
        sd: SdSettings { width: 64, height: 64, steps: 3, max_batch, ..Default::default() },
        images_per_prompt: 2,
        seed,
        ..Default::default()
    }
}

fn open_with(capacity: usize) -> Engine {
    Engine::open(&bundles().score, &EngineOptions { baseline_cache_capacity: capacity, ..Default::default() }).unwrap()
}

fn none() -> impl FnMut(Stage, usize, usize) -> bool {
    |_, _, _| true
}

/// Every number of a reward, as bits.
fn reward_bits(r: &Reward) -> Vec<u64> {
    let mut v = vec![r.reward.to_bits(), r.relevance.to_bits(), r.aesthetic_gain.to_bits()];
    for s in [&r.similarity, &r.aesthetic_y, &r.aesthetic_x] {
        v.extend(s.iter().map(|x| x.to_bits()));
    }
    v
}

fn bits(r: &PairScores) -> Vec<u64> {
    r.pairs.iter().flat_map(|p| reward_bits(&p.reward)).collect()
}

fn assert_close(a: &Reward, b: &Reward, tol: f64, what: &str) {
    let scalars = [("reward", a.reward, b.reward), ("relevance", a.relevance, b.relevance), ("aesthetic_gain", a.aesthetic_gain, b.aesthetic_gain)];
    for (name, x, y) in scalars {
        assert!((x - y).abs() <= tol, "{what}: {name} {x} vs {y}");
    }
    for (name, x, y) in [("similarity", &a.similarity, &b.similarity), ("aesthetic_y", &a.aesthetic_y, &b.aesthetic_y), ("aesthetic_x", &a.aesthetic_x, &b.aesthetic_x)] {
        assert_eq!(x.len(), y.len(), "{what}: {name} lengths");
        for (i, (p, q)) in x.iter().zip(y).enumerate() {
            assert!((p - q).abs() <= tol, "{what}: {name}[{i}] {p} vs {q}");
        }
    }
}

const PAIRS: [(&str, &str); 5] = [
    ("a dog", "a dog in the snow, concept art"),
    ("a cat", "a cat, highly detailed, artstation"),
    ("a dog", "a dog, 8k"),
    ("a red fox", "a red fox at dawn, oil painting"),
    ("a cat", "a cat"),
];

#[test]
fn pairs_match_score_many_for_every_batch_size() {
    // Reference: each pair alone through score_many on its own engine (batch 4, the default).
    let reference = open_with(BASELINE_CACHE_CAPACITY);
    let mut o_ref = small(5, 4);
    o_ref.return_images = true;
    let singles: Vec<_> = PAIRS.iter().map(|&(x, y)| reference.score_many(x, &[y], &o_ref, &mut none()).unwrap()).collect();
    let mut worst = 0f64;
    for max_batch in [1, 3, 16] {
        let e = open_with(BASELINE_CACHE_CAPACITY);
        let mut o = small(5, max_batch);
        o.return_images = true;
        let r = e.score_pairs(&PAIRS, &o, &mut none()).unwrap();
        assert_eq!(r.pairs.len(), PAIRS.len());
        assert_eq!(r.users.iter().map(|u| u.prompt.as_str()).collect::<Vec<_>>(), ["a dog", "a cat", "a red fox"]);
        assert_eq!((r.seed, r.images_per_prompt), (5, 2));
        assert!(r.random_weights);
        for (i, (p, s)) in r.pairs.iter().zip(&singles).enumerate() {
            assert_eq!((p.user_prompt.as_str(), p.candidate.as_str()), PAIRS[i]);
            assert_eq!(r.users[p.user_index].prompt, PAIRS[i].0);
            let c = &s.candidates[0];
            assert_close(&p.reward, &c.reward, 1e-5, &format!("pair {i}, max_batch {max_batch}"));
            let (a, b) = (&p.reward, &c.reward);
            for (x, y) in a.similarity.iter().chain(&a.aesthetic_y).chain(&a.aesthetic_x).zip(b.similarity.iter().chain(&b.aesthetic_y).chain(&b.aesthetic_x)) {
                worst = worst.max((x - y).abs());
            }
            worst = worst.max((a.reward - b.reward).abs());
            assert_eq!(p.images.len(), 2);
            for (img, want) in p.images.iter().zip(&c.images) {
                assert_eq!((img.width, img.height), (64, 64));
                let d = img.rgb8.iter().zip(&want.rgb8).map(|(&u, &v)| (i32::from(u) - i32::from(v)).abs()).max().unwrap();
                assert!(d <= 1, "pair {i}, max_batch {max_batch}: y image differs by {d} levels");
            }
            let u = &r.users[p.user_index];
            assert_eq!(u.images.len(), 2);
            for (img, want) in u.images.iter().zip(&s.user_images) {
                let d = img.rgb8.iter().zip(&want.rgb8).map(|(&u, &v)| (i32::from(u) - i32::from(v)).abs()).max().unwrap();
                assert!(d <= 1, "pair {i}, max_batch {max_batch}: x image differs by {d} levels");
            }
        }
        // One baseline per distinct x, computed together.
        assert_eq!(r.stats.baselines_hit, 0);
        assert_eq!(r.stats.baselines_computed, 3);
        assert_eq!(r.stats.user_images_generated, 6);
        assert_eq!(r.stats.candidate_images_generated, 10);
        assert_eq!(e.baseline_cache_stats(), (0, 3));
        assert_eq!(e.cached_baselines(), 3);
        // Second call: every baseline from the cache, the same bits.
        let again = e.score_pairs(&PAIRS, &o, &mut none()).unwrap();
        assert_eq!(bits(&again), bits(&r));
        assert_eq!((again.stats.baselines_hit, again.stats.baselines_computed, again.stats.user_images_generated), (3, 0, 0));
        assert!(again.users.iter().all(|u| u.cached && u.images.len() == 2));
        assert_eq!(e.baseline_cache_stats(), (3, 3));
    }
    eprintln!("largest |score_pairs - score_many| over all fields and batch sizes: {worst:e}");
}

#[test]
fn pairs_without_cache_equal_cached_bit_for_bit() {
    let e = open_with(BASELINE_CACHE_CAPACITY);
    let o = small(9, 4);
    let mut off = o.clone();
    off.use_baseline_cache = false;

    let first = e.score_pairs(&PAIRS, &o, &mut none()).unwrap();
    let cached = e.score_pairs(&PAIRS, &o, &mut none()).unwrap();
    assert_eq!(cached.stats.baselines_hit, 3);
    let stats = e.baseline_cache_stats();
    let uncached = e.score_pairs(&PAIRS, &off, &mut none()).unwrap();
    assert_eq!((uncached.stats.baselines_hit, uncached.stats.baselines_computed, uncached.stats.user_images_generated), (0, 3, 6));
    assert!(uncached.users.iter().all(|u| !u.cached));
    assert_eq!(e.baseline_cache_stats(), stats, "a call without the cache looks nothing up");
    assert_eq!(bits(&uncached), bits(&cached));
    assert_eq!(bits(&first), bits(&cached));

    // A call where only some x's are cached, against recomputing all of them: here the baselines
    // come from other batch compositions, so the check is the batching tolerance (1e-5); ONNX
    // Runtime's CPU kernels gave identical bits on the development machine (printed).
    let mixed: Vec<(&str, &str)> = vec![("a red fox", "a fox, 4k"), ("a lighthouse", "a lighthouse at night, matte painting"), ("a dog", "a dog, 8k")];
    let partly = e.score_pairs(&mixed, &o, &mut none()).unwrap();
    assert_eq!((partly.stats.baselines_hit, partly.stats.baselines_computed), (2, 1));
    let all = e.score_pairs(&mixed, &off, &mut none()).unwrap();
    assert_eq!((all.stats.baselines_hit, all.stats.baselines_computed), (0, 3));
    for (i, (p, q)) in all.pairs.iter().zip(&partly.pairs).enumerate() {
        assert_close(&p.reward, &q.reward, 1e-5, &format!("mixed pair {i}"));
    }
    eprintln!("partly cached vs all recomputed, identical bits: {}", bits(&all) == bits(&partly));

    // score_many takes the same flag.
    let a = e.score_many("a cat", &["a cat, 8k"], &o, &mut none()).unwrap();
    let b = e.score_many("a cat", &["a cat, 8k"], &off, &mut none()).unwrap();
    assert_eq!(reward_bits(&a.candidates[0].reward), reward_bits(&b.candidates[0].reward));
}

#[test]
fn cache_capacity_images_and_stats() {
    // Capacity 2: the least recently used x goes.
    let e = open_with(2);
    assert_eq!(e.baseline_cache_capacity(), 2);
    let o = small(1, 4);
    let r = e.score_pairs(&PAIRS, &o, &mut none()).unwrap();
    assert_eq!(r.stats.baselines_computed, 3);
    assert_eq!(e.cached_baselines(), 2);
    let r = e.score_pairs(&[("a red fox", "a fox"), ("a cat", "a cat, 8k"), ("a dog", "a dog, 8k")], &o, &mut none()).unwrap();
    assert_eq!((r.stats.baselines_hit, r.stats.baselines_computed), (2, 1), "{:?}", r.users);
    assert!(!r.users[2].cached, "'a dog' was evicted first");

    // Capacity 0: nothing kept, every lookup a miss.
    let e0 = open_with(0);
    e0.score_pairs(&PAIRS[..2], &o, &mut none()).unwrap();
    let r = e0.score_pairs(&PAIRS[..2], &o, &mut none()).unwrap();
    assert_eq!((r.stats.baselines_hit, r.stats.baselines_computed), (0, 2));
    assert_eq!((e0.cached_baselines(), e0.baseline_cache_stats()), (0, (0, 4)));

    // Without return_images the cache keeps no images; asking for them later recomputes x.
    let e = open_with(4000);
    assert_eq!(e.baseline_cache_capacity(), 4000);
    let r = e.score_pairs(&[("a cat", "a cat, 8k")], &o, &mut none()).unwrap();
    assert!(r.users[0].images.is_empty() && r.pairs[0].images.is_empty());
    let mut with = o.clone();
    with.return_images = true;
    let r2 = e.score_pairs(&[("a cat", "a cat, 8k")], &with, &mut none()).unwrap();
    assert_eq!((r2.stats.baselines_hit, r2.stats.baselines_computed), (0, 1), "no images were kept: recomputed");
    assert_eq!((r2.users[0].images.len(), r2.pairs[0].images.len()), (2, 2));
    assert_eq!(bits(&r2), bits(&r));
    let r3 = e.score_pairs(&[("a cat", "a cat, 8k")], &with, &mut none()).unwrap();
    assert_eq!(r3.stats.baselines_hit, 1);
    assert_eq!(r3.users[0].images, r2.users[0].images);
    let r4 = e.score_pairs(&[("a cat", "a cat, 8k")], &o, &mut none()).unwrap();
    assert_eq!(r4.stats.baselines_hit, 1);
    assert!(r4.users[0].images.is_empty());
    assert_eq!(e.baseline_cache_stats(), (2, 2));
    assert_eq!(e.cached_baselines(), 1);
    // The C-ABI default is unchanged.
    assert_eq!(EngineOptions::default().baseline_cache_capacity, BASELINE_CACHE_CAPACITY);
    assert!(ScoreOptions::default().use_baseline_cache);
}

#[test]
fn pairs_bad_input_and_cancel() {
    let b = bundles();
    let e = open_with(8);
    let code = |p: &[(&str, &str)], o: &ScoreOptions| e.score_pairs(p, o, &mut none()).unwrap_err().code();
    assert_eq!(code(&[], &small(0, 4)), Code::InvalidOptions);
    assert_eq!(code(&[("a", "b"), ("  ", "c")], &small(0, 4)), Code::EmptyPrompt);
    assert_eq!(code(&[("a", "b"), ("c", "\n")], &small(0, 4)), Code::EmptyPrompt);
    let mut o = small(0, 4);
    o.images_per_prompt = 0;
    assert_eq!(code(&[("a", "b")], &o), Code::InvalidOptions);
    assert_eq!(code(&[("a", "b")], &small(0, 0)), Code::InvalidOptions);
    let err = e.score_pairs(&[], &small(0, 4), &mut none()).unwrap_err();
    assert!(err.to_string().contains("pair"), "{err}");
    assert_eq!(e.baseline_cache_stats(), (0, 0), "bad input is rejected before any lookup");

    let p = Engine::open(&b.policy_only, &EngineOptions::default()).unwrap();
    assert_eq!(p.score_pairs(&[("a", "b")], &small(0, 4), &mut none()).unwrap_err().code(), Code::NotInBundle);
    assert_eq!((p.baseline_cache_stats(), p.baseline_cache_capacity()), ((0, 0), 0));

    // Cancelled while denoising the x's: nothing cached. Cancelled while denoising the y's: the
    // finished baselines stay cached.
    let mut denoise = 0;
    let mut cancel_first = |s: Stage, _: usize, _: usize| {
        denoise += usize::from(s == Stage::Denoise);
        denoise < 2
    };
    assert_eq!(e.score_pairs(&PAIRS, &small(0, 4), &mut cancel_first).unwrap_err().code(), Code::Cancelled);
    assert_eq!(e.cached_baselines(), 0);
    let mut denoise = 0;
    let mut cancel_in_y = |s: Stage, _: usize, _: usize| {
        denoise += usize::from(s == Stage::Denoise);
        denoise < 5
    };
    assert_eq!(e.score_pairs(&PAIRS, &small(0, 4), &mut cancel_in_y).unwrap_err().code(), Code::Cancelled);
    assert_eq!(e.cached_baselines(), 3);
    let r = e.score_pairs(&PAIRS, &small(0, 4), &mut none()).unwrap();
    assert_eq!(r.stats.baselines_hit, 3);
}
