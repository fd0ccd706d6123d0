//! Shared support of the integration tests (used as `mod common;`): locating the reference Python
//! venv and the repository's data files, running the `tests/python/*.py` reference scripts, and reading their
//! outputs. Anything missing is a test FAILURE with a message saying what to set, never a skip.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// The reference Python: `$PROMPTIST_PYTHON` (the python binary), else
/// `~/.cache/promptist/venv/bin/python`, which must exist.
pub fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("PROMPTIST_PYTHON") {
        return PathBuf::from(p);
    }
    let home = std::env::var_os("HOME").expect("HOME is not set");
    let p = PathBuf::from(home).join(".cache/promptist/venv/bin/python");
    assert!(
        p.is_file(),
        "the Python reference venv is missing ({}); create it or set PROMPTIST_PYTHON to a python with torch, transformers, diffusers, open_clip and onnx",
        p.display()
    );
    p
}

/// A file or folder of the data shipped in the repository (`src/data/<rel>`, e.g. `gpt2`); it must exist.
pub fn data_path(rel: &str) -> PathBuf {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/data").join(rel);
    assert!(p.exists(), "{} does not exist (the repository's src/data/ is incomplete)", p.display());
    p
}

/// Report a test that cannot run on this machine: the reason goes to stderr and, when the test
/// command set `PROMPTIST_SKIP_LOG`, into that file, so the run counts it as skipped, not passed.
pub fn skip(test: &str, reason: &str) {
    eprintln!("SKIPPED {test}: {reason}");
    if let Some(p) = std::env::var_os("PROMPTIST_SKIP_LOG") {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new().append(true).create(true).open(p).expect("open PROMPTIST_SKIP_LOG");
        writeln!(f, "{test}: {reason}").expect("write PROMPTIST_SKIP_LOG");
    }
}

/// `tests/python/<name>`.
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

/// A raw little-endian f32 file written by a reference script.
pub fn read_f32(p: &Path) -> Vec<f32> {
    std::fs::read(p)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", p.display()))
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
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

/// Fails with a clear message unless ORT_DYLIB_PATH names the ONNX Runtime library.
pub fn ort_ready() {
    let p = std::env::var("ORT_DYLIB_PATH").expect("ORT_DYLIB_PATH must name the ONNX Runtime library (libonnxruntime.so.1.31.1)");
    assert!(Path::new(&p).is_file(), "ORT_DYLIB_PATH={p} is not a file");
}

/// One call of an exported GPT-2 graph (optimum's I/O names) on batch `b`: `ids`/`pos` are
/// [b, seq], `mask` is [b, past + seq], `past` holds 2 * n_layer key/value tensors. Returns the
/// logits [b, seq, vocab] flattened and the presents in the same order as `past`.
pub fn gpt2_step(
    s: &mut ort::session::Session,
    n_layer: usize,
    ids: &[i64],
    mask: &[i64],
    pos: &[i64],
    b: usize,
    past: Vec<ort::value::DynValue>,
) -> (Vec<f32>, Vec<ort::value::DynValue>) {
    use ort::session::SessionInputValue;
    use ort::value::Tensor;
    use promptist::export::gpt2;
    let (seq, t) = (ids.len() / b, mask.len() / b);
    let mut feed: Vec<(String, SessionInputValue)> = vec![
        (gpt2::INPUT_IDS.into(), Tensor::from_array(([b, seq], ids.to_vec())).unwrap().into()),
        (gpt2::ATTENTION_MASK.into(), Tensor::from_array(([b, t], mask.to_vec())).unwrap().into()),
        (gpt2::POSITION_IDS.into(), Tensor::from_array(([b, seq], pos.to_vec())).unwrap().into()),
    ];
    for (i, kv) in past.into_iter().enumerate() {
        let name = if i % 2 == 0 { gpt2::past_key_name(i / 2) } else { gpt2::past_value_name(i / 2) };
        feed.push((name, kv.into()));
    }
    let mut out = s.run(feed).unwrap();
    let logits = out[gpt2::LOGITS].try_extract_tensor::<f32>().unwrap().1.to_vec();
    let mut presents = Vec::new();
    for i in 0..n_layer {
        presents.push(out.remove(gpt2::present_key_name(i)).unwrap());
        presents.push(out.remove(gpt2::present_value_name(i)).unwrap());
    }
    (logits, presents)
}
