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

/// The SFT tests' data: the seeded synthetic corpus (`n_targets` targets) written to
/// `dir/corpus.jsonl`, its options (mc + mcm sources, 10 % validation, 128 tokens, errors on bad
/// rows) and a 512-token BPE trained on its (source, target) pairs.
pub fn synthetic_sft_data(dir: &Path, n_targets: usize, seed: u64) -> (promptist_train::data::prepare::DataOptions, promptist::text::gpt2::Gpt2Tokenizer) {
    use promptist_train::data::{bad::BadRows, prepare::DataOptions, read::Columns, sources, OnBadRow};
    tch::set_num_threads(1);
    let corpus = dir.join("corpus.jsonl");
    promptist_train::demo::corpus::write_corpus(&corpus, n_targets, seed).unwrap();
    let opts = DataOptions {
        files: vec![corpus],
        columns: Columns::default(),
        sources: sources::SourceOptions::with_kinds(seed, "mc,mcm", None).unwrap(),
        on_bad_row: OnBadRow::Error,
        val_fraction: 0.1,
        max_length: 128,
        seed,
    };
    let mut bad = BadRows::new(OnBadRow::Error);
    let recs = promptist_train::data::read::read_file(&opts.files[0], &opts.columns, &mut bad).unwrap().0;
    let pairs = sources::build_pairs(&recs, &opts.sources, &mut bad).unwrap();
    let texts: Vec<String> = pairs.iter().flatten().map(|p| format!("{} Rephrase: {}", p.source, p.target)).collect();
    let tok = promptist_train::demo::bpe::train_tokenizer(&texts, 512, &dir.join("tok")).unwrap();
    (opts, tok)
}
