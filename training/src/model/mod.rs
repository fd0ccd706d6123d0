//! The GPT-2 policy on tch: parameters named exactly like Hugging Face `GPT2LMHeadModel` keys
//! (params.rs), the forward pass (gpt2.rs), the KV-cached decoder behind the library's `CausalLm`
//! (lm.rs), diverse-beam rollouts through the library's search (rollout_decode.rs), and
//! conversions to and from the library's WeightMap.

pub mod generate;
pub mod gpt2;
pub mod lm;
pub mod params;
pub mod rollout_decode;

pub use gpt2::Gpt2;
pub use lm::TchLm;
pub use params::Params;
pub use rollout_decode::{diverse_decode, diverse_decode_ids, diverse_rollouts, DiverseOptions, PromptRollouts, Rollout};
