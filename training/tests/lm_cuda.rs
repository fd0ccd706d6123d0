//! The padded forward, the KV-cached decoder and the diverse-beam rollouts on CUDA (ignored by
//! default: they need a GPU; run on a GPU machine with
//! `cargo test -p promptist-train --test lm_cuda -- --ignored --nocapture`, or the built test
//! binary with `--ignored`). Without CUDA they fail with a message. Checked: `logits_masked` and
//! `TchLm` against the unpadded forward on CUDA (every logit within 1e-4: CUDA kernels differ from
//! the CPU's in the last bits); the CUDA search returns the CPU search's ids on the peaked tiny
//! checkpoint (the CPU search equals ONNX and transformers: diverse_parity.rs), with the same tie
//! detector; and the rollout time of the 117M shape (random init) in fp32 and bf16.

mod decode_common;

use decode_common::*;
use promptist::export::gpt2_config::Gpt2Config;
use promptist::text::gpt2::Gpt2Tokenizer;
use promptist_train::model::rollout_decode::prompt_ids;
use promptist_train::model::{diverse_decode_ids, DiverseOptions, Params};
use tch::{Device, Kind};

const CUDA_TOL: f32 = 1e-4;

fn cuda() -> Device {
    assert!(
        tch::Cuda::is_available(),
        "CUDA is not available to libtorch: run on a GPU machine with the CUDA torch's lib folder on LD_LIBRARY_PATH"
    );
    Device::Cuda(0)
}

#[test]
#[ignore = "needs CUDA"]
fn cuda_masked_forward_and_cache_match() {
    let dev = cuda();
    masked_case(&small_params(21, dev), CUDA_TOL);
    cache_case(&small_params(23, dev), CUDA_TOL);
}

#[test]
#[ignore = "needs CUDA"]
fn cuda_diverse_search_matches_cpu() {
    let dev = cuda();
    let dir = tempfile::tempdir().unwrap();
    checkpoint(dir.path());
    let (cpu, _) = Params::load_dir(dir.path(), Device::Cpu).unwrap();
    let (gpu, _) = Params::load_dir(dir.path(), dev).unwrap();
    let tok = Gpt2Tokenizer::embedded().unwrap();
    let prompts: Vec<Vec<u32>> = PROMPTS.iter().map(|s| prompt_ids(&tok, s).unwrap()).collect();
    let mut failures = Vec::new();
    for nb in [16usize, 8] {
        let opts = DiverseOptions::new(nb, 1.0, MAX_NEW);
        let t = std::time::Instant::now();
        let a: Vec<Seqs> = diverse_decode_ids(&cpu, Kind::Float, &prompts, EOS, &opts).unwrap().iter().map(from_tch).collect();
        let cpu_s = t.elapsed().as_secs_f64();
        let t = std::time::Instant::now();
        let out = diverse_decode_ids(&gpu, Kind::Float, &prompts, EOS, &opts).unwrap();
        let gpu_s = t.elapsed().as_secs_f64();
        let b: Vec<Seqs> = out.iter().map(from_tch).collect();
        let margins: Vec<f32> = out.iter().map(|p| gap(&p.margin)).collect();
        let label = format!("tch CUDA vs tch CPU beams={nb}");
        let sensitive = |which: &[usize]| float_sensitive(&gpu, &prompts, which, &opts, &b);
        let (same, ties, fails) = compare(&label, &b, &a, &margins, &sensitive);
        eprintln!("[{label}] identical prompts {same}/{}; ties {}; other differences {}; seconds: cpu {cpu_s:.2}, cuda {gpu_s:.2}", prompts.len(), ties.len(), fails.len());
        for t in &ties {
            eprintln!("  TIE: {t}");
        }
        if ties.len() > MAX_TIES {
            failures.push(format!("{label}: {} ties", ties.len()));
        }
        failures.extend(fails);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
#[ignore = "needs CUDA"]
fn cuda_rollout_timing_117m() {
    let dev = cuda();
    let params = Params::random(&Gpt2Config::gpt2(), 7, dev).unwrap();
    let tok = Gpt2Tokenizer::embedded().unwrap();
    for n_prompts in [8usize, 32] {
        let prompts: Vec<Vec<u32>> = (0..n_prompts).map(|i| prompt_ids(&tok, PROMPTS[i % PROMPTS.len()]).unwrap()).collect();
        for (kind, name) in [(Kind::Float, "fp32"), (Kind::BFloat16, "bf16")] {
            let opts = DiverseOptions::new(16, 1.0, MAX_NEW);
            // warm-up (kernels, allocator)
            diverse_decode_ids(&params, kind, &prompts[..1], EOS, &DiverseOptions::new(16, 1.0, 4)).unwrap();
            tch::Cuda::synchronize(0);
            let t = std::time::Instant::now();
            let out = diverse_decode_ids(&params, kind, &prompts, EOS, &opts).unwrap();
            let s = t.elapsed().as_secs_f64();
            let toks: usize = out.iter().flat_map(|p| p.sequences.iter()).map(|r| r.tokens.len()).sum();
            let longest = out.iter().flat_map(|p| p.sequences.iter()).map(|r| r.tokens.len()).max().unwrap();
            eprintln!(
                "117M random init, {name}: {n_prompts} prompts x 16 beams/groups, up to {MAX_NEW} new tokens (longest {longest}): {s:.2} s, {:.0} returned tokens/s",
                toks as f64 / s
            );
        }
    }
}
