//! The SYNTHETIC demo: a seeded generator of plain subjects paired with engineered prompts
//! (corpus.rs) and a small byte-level BPE tokenizer trained on that corpus (bpe.rs), so a tiny
//! GPT-2 policy trained on it stays a few MB. Nothing here is real user data.

pub mod bpe;
pub mod corpus;
