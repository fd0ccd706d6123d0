//! Export: the ONNX writer and the graph builders that turn checkpoint weights into the ONNX graphs
//! the runtime executes (GPT-2 policy now), plus the checkpoint -> bundle converter and the seeded
//! tiny-model generator used by tests.
//!
//! Entry points: [`onnx::GraphBuilder`] + [`onnx::save_model`] (any graph), [`build_gpt2`]
//! (GPT-2 with KV cache from a [`crate::weights::WeightMap`]), [`convert_checkpoint`] (a Hugging
//! Face folder -> bundle), [`write_random_checkpoint`] (seeded random checkpoint folder).

pub mod gpt2;
pub mod gpt2_config;
pub mod onnx;
pub(crate) mod optimum_import;

pub use gpt2::{build_gpt2, AttentionImpl, Gpt2ExportOptions};
pub use gpt2_config::Gpt2Config;
pub mod convert;
pub mod tiny;

pub use convert::{convert_checkpoint, ConvertOptions};
pub use tiny::{random_gpt2_weights, write_random_checkpoint, LmHead};

// Stable Diffusion / CLIP / aesthetic graph builders.
pub mod aesthetic;
pub mod clip_open;
pub mod clip_text;
pub mod clip_vision;
pub mod nn;
pub mod scorer_export;
pub mod sd_config;
pub mod sd_pipeline;
pub mod unet;
pub(crate) mod unet_blocks;
pub mod vae;
pub mod sd_convert;
