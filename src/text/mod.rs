//! Tokenizers: GPT-2 byte-level BPE for the policy, CLIP BPE for the scorer (the `tokenizers` crate).

pub mod clip;
pub mod gpt2;

pub use gpt2::Gpt2Tokenizer;
