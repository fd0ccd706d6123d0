//! A small deterministic byte-level BPE trainer (Sennrich et al. 2016, with GPT-2's byte-level
//! alphabet and pre-tokenizer), for the demo policy's own vocabulary. Words come from the
//! `tokenizers` crate's GPT-2 ByteLevel pre-tokenizer; each round merges the most frequent adjacent
//! pair (ties: the lexicographically smallest), so the same corpus always gives the same merges.
//! Ids: the 256 byte symbols (by code point), then merges in order, then `<|endoftext|>` last, as
//! in GPT-2. The result is written as vocab.json + merges.txt and loaded through the library's
//! GPT-2 tokenizer builder, so it is configured exactly like the real GPT-2 tokenizer.

use std::collections::BTreeMap;
use std::path::Path;

use promptist::text::gpt2::{Gpt2Tokenizer, EOS_TOKEN};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::{OffsetReferential, OffsetType, PreTokenizedString, PreTokenizer};

use crate::error::{Result, TrainError};

fn pre_tokenize(text: &str) -> Result<Vec<String>> {
    let mut pts = PreTokenizedString::from(text);
    ByteLevel::new(false, true, true).pre_tokenize(&mut pts).map_err(|e| TrainError::Data(format!("pre-tokenize: {e}")))?;
    Ok(pts.get_splits(OffsetReferential::Original, OffsetType::Byte).into_iter().map(|(s, _, _)| s.to_string()).collect())
}

/// Train merges on `texts` until the vocabulary has `vocab_size` entries (EOS included) or no pair
/// occurs at least `min_frequency` times. Returns (vocab in id order, merges).
pub fn train_bpe(texts: &[String], vocab_size: usize, min_frequency: u64) -> Result<(Vec<String>, Vec<(String, String)>)> {
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    for t in texts {
        for w in pre_tokenize(t)? {
            *counts.entry(w).or_insert(0) += 1;
        }
    }
    let mut alphabet: Vec<char> = ByteLevel::alphabet().into_iter().collect();
    alphabet.sort_unstable();
    let mut vocab: Vec<String> = alphabet.iter().map(|c| c.to_string()).collect();
    let mut words: Vec<(Vec<String>, u64)> = counts.into_iter().map(|(w, c)| (w.chars().map(|ch| ch.to_string()).collect(), c)).collect();
    let mut merges = Vec::new();
    while vocab.len() + 1 < vocab_size {
        let mut pairs: BTreeMap<(&str, &str), u64> = BTreeMap::new();
        for (syms, c) in &words {
            for w in syms.windows(2) {
                *pairs.entry((w[0].as_str(), w[1].as_str())).or_insert(0) += c;
            }
        }
        // max count, ties broken by the smallest pair (BTreeMap order; strict > keeps the first)
        let mut best: Option<((&str, &str), u64)> = None;
        for (p, &c) in &pairs {
            if best.map_or(true, |(_, bc)| c > bc) {
                best = Some((*p, c));
            }
        }
        let Some(((a, b), c)) = best else { break };
        if c < min_frequency {
            break;
        }
        let (a, b) = (a.to_string(), b.to_string());
        let merged = format!("{a}{b}");
        for (syms, _) in words.iter_mut() {
            let mut i = 0;
            let mut out = Vec::with_capacity(syms.len());
            while i < syms.len() {
                if i + 1 < syms.len() && syms[i] == a && syms[i + 1] == b {
                    out.push(merged.clone());
                    i += 2;
                } else {
                    out.push(std::mem::take(&mut syms[i]));
                    i += 1;
                }
            }
            *syms = out;
        }
        vocab.push(merged);
        merges.push((a, b));
    }
    vocab.push(EOS_TOKEN.to_string());
    Ok((vocab, merges))
}

/// Train and build the tokenizer; `work_dir` receives `vocab.json` and `merges.txt`.
pub fn train_tokenizer(texts: &[String], vocab_size: usize, work_dir: &Path) -> Result<Gpt2Tokenizer> {
    let (vocab, merges) = train_bpe(texts, vocab_size, 2)?;
    std::fs::create_dir_all(work_dir).map_err(|e| TrainError::io(format!("creating {}", work_dir.display()), e))?;
    let map: serde_json::Map<String, serde_json::Value> = vocab.iter().enumerate().map(|(i, t)| (t.clone(), serde_json::Value::from(i))).collect();
    let vpath = work_dir.join("vocab.json");
    let mpath = work_dir.join("merges.txt");
    std::fs::write(&vpath, serde_json::Value::Object(map).to_string()).map_err(|e| TrainError::io(format!("writing {}", vpath.display()), e))?;
    let mut m = String::from("#version: 0.2\n");
    for (a, b) in &merges {
        m.push_str(&format!("{a} {b}\n"));
    }
    std::fs::write(&mpath, m).map_err(|e| TrainError::io(format!("writing {}", mpath.display()), e))?;
    Ok(Gpt2Tokenizer::from_vocab_merges(&vpath, &mpath)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_round_trips() {
        let texts: Vec<String> = (0..50).map(|i| format!("a red fox {i}, highly detailed, digital painting Rephrase: a red fox")).collect();
        let a = train_bpe(&texts, 400, 2).unwrap();
        let b = train_bpe(&texts, 400, 2).unwrap();
        assert_eq!(a, b);
        let dir = tempfile::tempdir().unwrap();
        let tok = train_tokenizer(&texts, 400, dir.path()).unwrap();
        assert_eq!(tok.eos_id() as usize, tok.vocab_size() - 1);
        let s = "a red fox, highly detailed<|endoftext|>";
        let ids = tok.encode(s).unwrap();
        assert_eq!(tok.decode(&ids).unwrap(), s);
        assert!(ids.len() < 12, "{ids:?}");
    }
}
