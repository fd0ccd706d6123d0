//! Shared helpers of the score parity tests: locating the reference Python venv and running the
//! `tests/python/score_*.py` reference scripts. A missing venv is a test FAILURE with a message.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;

/// The reference Python: `$PROMPTIST_PYTHON`, else `~/.cache/promptist/venv/bin/python`.
pub fn python() -> PathBuf {
    if let Ok(p) = std::env::var("PROMPTIST_PYTHON") {
        return PathBuf::from(p);
    }
    let home = std::env::var("HOME").expect("HOME is not set");
    let p = PathBuf::from(home).join(".cache/promptist/venv/bin/python");
    assert!(
        p.exists(),
        "reference Python venv not found at {} (set PROMPTIST_PYTHON to a python with torch, diffusers, open_clip)",
        p.display()
    );
    p
}

pub fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/python")
        .join(name)
}

/// Run a reference script and parse its stdout as JSON; panics with stderr on failure.
pub fn run_json(name: &str, args: &[&str]) -> serde_json::Value {
    let out = Command::new(python())
        .arg(script(name))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run the reference Python for {name}: {e}"));
    assert!(
        out.status.success(),
        "{name} failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{name}: bad JSON output: {e}"))
}

pub fn f32s(v: &serde_json::Value) -> Vec<f32> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_f64().expect("number") as f32)
        .collect()
}

pub fn i64s(v: &serde_json::Value) -> Vec<i64> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_i64().expect("integer"))
        .collect()
}

/// Max abs difference over every element (lengths must match).
pub fn max_abs(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "length mismatch");
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0f32, f32::max)
}
