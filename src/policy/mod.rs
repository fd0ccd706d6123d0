//! GPT-2 policy decoding (greedy, beam, diverse beam, sampling) over a causal LM; method per
//! SPEC section 2 and transformers' `generate()` semantics.

pub mod config;
