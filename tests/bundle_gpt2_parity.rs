//! Parity of the embedded GPT-2 tokenizer with transformers' `GPT2TokenizerFast`: the reference ids
//! come from tests/python/tok_reference.py run in the Python venv at test time (240 strings:
//! prompts, unicode, emoji, CJK, whitespace runs, `<|endoftext|>` inside text).

use std::path::PathBuf;
use std::process::Command;

use promptist::text::gpt2::Gpt2Tokenizer;

fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("PROMPTIST_PYTHON") {
        return PathBuf::from(p);
    }
    let home = std::env::var_os("HOME").expect("HOME is not set");
    let p = PathBuf::from(home).join(".cache/promptist/venv/bin/python");
    assert!(
        p.is_file(),
        "the Python reference venv is missing ({}); create it or set PROMPTIST_PYTHON",
        p.display()
    );
    p
}

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
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/tok_reference.py");
    let st = Command::new(python()).arg(&script).arg(&out).status().expect("running the Python reference");
    assert!(st.success(), "tok_reference.py failed: {st}");
    let recs: Vec<Record> = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert!(recs.len() >= 200, "only {} reference strings", recs.len());

    let tok = Gpt2Tokenizer::embedded().unwrap();
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
            mismatches.push(format!("{:?}: decoded ours {:?} transformers {:?}", r.text, dec, r.decoded));
        }
    }
    assert!(mismatches.is_empty(), "{} of {} strings differ:\n{}", mismatches.len(), recs.len(), mismatches.join("\n"));
    eprintln!("{} strings, {} tokens: identical ids and round trips", recs.len(), tokens);
}
