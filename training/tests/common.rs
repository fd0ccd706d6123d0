//! Shared helpers of the trainer's integration tests: the reference Python (which must exist:
//! a missing venv is a failure with a clear message, never a silent skip), temp folders.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The reference Python: $PROMPTIST_PYTHON, else ~/.cache/promptist/venv/bin/python.
pub fn python() -> PathBuf {
    let p = std::env::var_os("PROMPTIST_PYTHON").map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/promptist/venv/bin/python")
    });
    assert!(
        p.is_file(),
        "reference Python not found at {} (set PROMPTIST_PYTHON or source tests/env.sh): this test needs torch + transformers + onnxruntime",
        p.display()
    );
    p
}

/// Run a tests/python script with arguments; panics with its stderr on failure.
pub fn run_py(script: &str, args: &[&Path]) {
    let s = repo_root().join("tests").join("python").join(script);
    let out = Command::new(python()).arg(&s).args(args).output().expect("running the reference Python");
    assert!(out.status.success(), "{} failed:\n{}", s.display(), String::from_utf8_lossy(&out.stderr));
}

/// Max |a - b| over every element (shapes must match).
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "length mismatch");
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}
