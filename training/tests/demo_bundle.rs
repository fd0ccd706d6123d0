//! The committed SYNTHETIC demo bundle (training/demo/bundle): it opens with the library's bundle
//! loader (hashes, policy config, tokenizer with its own EOS id and vocabulary), is small, says
//! it is synthetic, and its ONNX policy under onnxruntime gives the same greedy rewrites that the
//! trainer's tch model printed into training/demo/samples.txt when the bundle was made.

mod common;

use std::process::Command;

use promptist::bundle::load::{Bundle, Checksums};

#[test]
fn demo_bundle_loads_and_reproduces_its_samples() {
    let dir = common::repo_root().join("training").join("demo");
    let root = dir.join("bundle");
    let b = Bundle::open(&root, Checksums::Verify).expect("the demo bundle opens with the library's loader");
    assert!(b.manifest().provenance.synthetic_training_data, "the demo must be labelled synthetic");
    assert!(b.manifest().description.contains("SYNTHETIC"));
    assert!(!b.random_weights());
    let pol = b.policy().unwrap();
    let tok = pol.load_tokenizer().unwrap();
    assert_eq!(tok.eos_id(), pol.config.eos_token_id);
    assert!(pol.config.vocab_size < 1000, "small vocabulary");
    for f in b.manifest().components["policy"].files.values() {
        assert!(f.size < 8 * 1024 * 1024, "every committed file stays under 8 MB");
    }
    // samples.txt lines: "source -> output"
    let samples = std::fs::read_to_string(dir.join("samples.txt")).unwrap();
    let pairs: Vec<(String, String)> = samples
        .lines()
        .filter_map(|l| l.split_once(" -> "))
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    assert!(pairs.len() >= 3);
    let script = common::repo_root().join("tests/python/train_demo_check.py");
    let out = Command::new(common::python()).arg(&script).arg(&root).args(pairs.iter().map(|p| &p.0)).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let got: Vec<serde_json::Value> = String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(got.len(), pairs.len());
    for ((src, want), g) in pairs.iter().zip(&got) {
        assert_eq!(g["output"].as_str().unwrap(), want, "ONNX rewrite of {src:?}");
        assert!(want.matches(", ").count() >= 3, "a rewrite adds modifiers: {want}");
    }
}
