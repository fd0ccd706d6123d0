//! `promptist optimize` end to end on a tiny random bundle: `--json` fields, the random-weights
//! note, the sampling seed, and documented exit codes for bad input. Needs ORT_DYLIB_PATH.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn bundle(dir: &Path) -> PathBuf {
    let p = std::env::var("ORT_DYLIB_PATH").expect("ORT_DYLIB_PATH must name the ONNX Runtime library (libonnxruntime.so.1.31.1)");
    assert!(Path::new(&p).is_file(), "ORT_DYLIB_PATH={p} is not a file");
    let ck = dir.join("ck");
    let cfg = promptist::export::Gpt2Config::preset("tiny").unwrap();
    promptist::export::write_random_checkpoint(&ck, &cfg, 4, promptist::export::tiny::LmHead::Untied { scale: promptist::export::tiny::DEFAULT_SCALE }).unwrap();
    let b = dir.join("bundle");
    promptist::export::convert_checkpoint(&ck, &b, &promptist::export::ConvertOptions::default(), &mut |_| {}).unwrap();
    b
}

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_promptist")).args(args).output().expect("run promptist")
}

#[test]
fn optimize_json_and_errors() {
    let dir = tempfile::tempdir().unwrap();
    let b = bundle(dir.path());
    let bs = b.to_str().unwrap();

    let out = run(&["optimize", "a cat on a mat", "--bundle", bs, "--json", "-n", "3", "--num-beams", "4", "--max-new-tokens", "10"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object on stdout");
    assert_eq!(v["candidates"].as_array().unwrap().len(), 3);
    assert_eq!(v["provider"], "cpu");
    assert_eq!(v["random_weights"], true);
    assert!(v["note"].as_str().unwrap().contains("RANDOM"));
    assert!(v["seed"].is_null());
    for c in v["candidates"].as_array().unwrap() {
        assert!(c["text"].is_string() && c["score"].is_number());
        assert!(c["token_ids"].as_array().unwrap().len() <= 10);
    }
    assert!(String::from_utf8_lossy(&out.stderr).contains("RANDOM weights"));

    // Text mode, sampling with a seed: repeatable, seed reported on stderr.
    let args = ["optimize", "a dog", "--bundle", bs, "--strategy", "sample", "--seed", "7", "--max-new-tokens", "6"];
    let (a, b2) = (run(&args), run(&args));
    assert!(a.status.success());
    assert_eq!(a.stdout, b2.stdout);
    assert!(String::from_utf8_lossy(&a.stderr).contains("seed: 7"));

    // Exit codes are the status numbers.
    let code = |args: &[&str]| run(args).status.code().unwrap();
    assert_eq!(code(&["optimize", "a cat", "--bundle", "/nonexistent/bundle"]), 6);
    assert_eq!(code(&["optimize", "   ", "--bundle", bs]), 4);
    assert_eq!(code(&["optimize", "a cat", "--bundle", bs, "--num-beams", "0"]), 3);
    assert_eq!(code(&["optimize", &"cat ".repeat(300), "--bundle", bs]), 5);
    assert_eq!(code(&["optimize", "a cat", "--bundle", bs, "--length-penalty", "-1.5", "--max-new-tokens", "3"]), 0);
}

/// `--keep-syntax` (default true): the prompt's syntax comes back byte for byte; `false` turns it off.
#[test]
fn optimize_keeps_syntax_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let b = bundle(dir.path());
    let bs = b.to_str().unwrap();
    let prompt = "(a cat:1.2) on a mat <lora:catStyle:0.7>";
    let first = |args: &[&str]| -> String {
        let out = run(args);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v["candidates"][0]["text"].as_str().unwrap().to_string()
    };
    let kept = first(&["optimize", prompt, "--bundle", bs, "--json", "--max-new-tokens", "8"]);
    assert!(kept.starts_with(prompt), "{kept:?}");
    assert_eq!(kept, first(&["optimize", prompt, "--bundle", bs, "--json", "--max-new-tokens", "8", "--keep-syntax", "true"]));
    let raw = first(&["optimize", prompt, "--bundle", bs, "--json", "--max-new-tokens", "8", "--keep-syntax", "false"]);
    assert_ne!(raw, kept);
}

/// `--max-clip-tokens` (default 75): the JSON reports each candidate's CLIP tokens within it.
#[test]
fn optimize_fits_the_clip_budget() {
    let dir = tempfile::tempdir().unwrap();
    let b = bundle(dir.path());
    let bs = b.to_str().unwrap();
    let clip = promptist::text::clip::ClipTokenizer::embedded().unwrap();
    for (args, budget) in [(vec![], 75), (vec!["--max-clip-tokens", "6"], 6)] {
        let mut all = vec!["optimize", "a cat on a mat", "--bundle", bs, "--json", "-n", "2", "--num-beams", "2", "--max-new-tokens", "40"];
        all.extend(args);
        let out = run(&all);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        for c in v["candidates"].as_array().unwrap() {
            let n = c["clip_tokens"].as_u64().unwrap();
            assert!(n <= budget && c["over_budget"] == false, "{c}");
            assert_eq!(n as usize, promptist::text::budget::clip_tokens(&clip, c["text"].as_str().unwrap()).unwrap());
        }
    }
    assert_eq!(run(&["optimize", "a cat", "--bundle", bs, "--max-clip-tokens", "5000"]).status.code(), Some(3));
}
