//! GPT-2 policy decoding (greedy, beam, diverse beam, sampling) over a causal LM; method per
//! SPEC section 2 and transformers' `generate()` semantics.

pub mod beam;
pub mod config;
pub mod diverse;
pub mod generate;
pub mod greedy;
pub mod logits;
pub mod model;
pub mod onnx_gpt2;
pub mod prompt;
pub mod sample;

pub use generate::{generate, Controls, GenerateOutput, Hypothesis, Margin, PromptOutput};
pub use model::{CausalLm, PaddedBatch};
pub use onnx_gpt2::{Gpt2Dims, OnnxGpt2};
