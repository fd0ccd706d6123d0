//! GPT-2 policy decoding (greedy, beam, diverse beam, sampling) over a causal LM; method per
//! docs/method.md §2 and transformers' `generate()` semantics (beam search: 5.23's `_beam_search`;
//! diverse beam search: 4.53.3's `_group_beam_search`).
//!
//! Use: wrap a policy session in [`OnnxGpt2`] (it implements [`CausalLm`]), format the prompt
//! with [`prompt::format_input`], tokenise it (no BOS), call [`generate`] with a
//! [`config::DecodingConfig`] and [`Controls`] (EOS/PAD ids, `min_new_tokens`, progress/cancel);
//! each [`Hypothesis`] holds the generated ids (EOS excluded) and its score, best first; decode
//! them and pass the text through [`prompt::finish_output`]. Several prompts in one call run as
//! one left-padded batch, each with its own beams.

pub(crate) mod beam;
pub mod config;
pub(crate) mod diverse;
pub mod generate;
pub(crate) mod greedy;
pub(crate) mod kv_cache;
pub(crate) mod logits;
pub mod model;
pub(crate) mod onnx_gpt2;
pub mod prompt;
pub(crate) mod sample;

pub use generate::{generate, validate, Controls, GenerateOutput, Hypothesis, Margin, PromptOutput};
pub use model::{CausalLm, PaddedBatch};
pub use kv_cache::FloatType;
pub use onnx_gpt2::{Gpt2Dims, OnnxGpt2};
