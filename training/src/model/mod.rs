//! The GPT-2 policy on tch: parameters named exactly like Hugging Face `GPT2LMHeadModel` keys
//! (params.rs), the forward pass (gpt2.rs), and conversions to and from the library's WeightMap.

pub mod generate;
pub mod gpt2;
pub mod params;

pub use gpt2::Gpt2;
pub use params::Params;
