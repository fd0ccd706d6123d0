//! Parity of the embedded GPT-2 tokenizer with transformers' `GPT2TokenizerFast`: the reference ids
//! come from tests/python/tok_reference.py run in the Python venv at test time (240 strings:
//! prompts, unicode, emoji, CJK, whitespace runs, `<|endoftext|>` inside text).

mod common;

use std::path::PathBuf;
use std::process::Command;

use promptist::text::gpt2::Gpt2Tokenizer;

use common::{python, script, data_path};

#[derive(serde::Deserialize)]
struct Record {
    text: String,
    ids: Vec<u32>,
    decoded: String,
}

#[test]
fn gpt2_ids_match_transformers() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ref.json");
    let script = script("tok_reference.py");
    let st = Command::new(python())
        .arg(&script)
        .arg(&out)
        .status()
        .expect("running the Python reference");
    assert!(st.success(), "tok_reference.py failed: {st}");
    let recs: Vec<Record> = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert!(recs.len() >= 200, "only {} reference strings", recs.len());

    // The embedded tokenizer, the one transformers serialises (as a converted HF folder may carry),
    // and the one built from vocab.json + merges.txt must all give transformers' ids.
    let hf_json = PathBuf::from(format!("{}.tokenizer.json", out.display()));
    let d = gpt2_dir();
    let tokenizers = [
        ("embedded", Gpt2Tokenizer::embedded().unwrap()),
        (
            "transformers tokenizer.json",
            Gpt2Tokenizer::from_tokenizer_json(&hf_json).unwrap(),
        ),
        (
            "vocab + merges",
            Gpt2Tokenizer::from_vocab_merges(&d.join("encoder.json"), &d.join("vocab.bpe")).unwrap(),
        ),
    ];
    for (what, tok) in &tokenizers {
        let mut mismatches = Vec::new();
        let mut tokens = 0;
        for r in &recs {
            let ids = tok.encode(&r.text).unwrap();
            tokens += ids.len();
            if ids != r.ids {
                mismatches.push(format!("{:?}: ours {:?} transformers {:?}", r.text, ids, r.ids));
                continue;
            }
            let dec = tok.decode(&ids).unwrap();
            if dec != r.decoded || dec != r.text {
                mismatches.push(format!(
                    "{:?}: decoded ours {:?} transformers {:?}",
                    r.text, dec, r.decoded
                ));
            }
        }
        assert!(
            mismatches.is_empty(),
            "{what}: {} of {} strings differ:\n{}",
            mismatches.len(),
            recs.len(),
            mismatches.join("\n")
        );
        eprintln!(
            "{what}: {} strings, {tokens} tokens: identical ids and round trips",
            recs.len()
        );
    }
}

/// The real GPT-2 vocabulary (encoder.json, vocab.bpe) shipped in `src/data/gpt2`.
fn gpt2_dir() -> PathBuf {
    data_path("gpt2")
}
