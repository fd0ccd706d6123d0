//! Prompt text: GPT-2 byte-level BPE for the policy, CLIP BPE for the scorer (the `tokenizers`
//! crate), the front-ends' prompt syntax kept through a rewrite, and the CLIP token budget.

pub mod budget;
pub mod clip;
pub mod gpt2;
pub mod syntax;

pub use gpt2::Gpt2Tokenizer;
