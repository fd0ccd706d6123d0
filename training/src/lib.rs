//! promptist-train: the Promptist trainer on tch (libtorch). GPT-2 policy with Hugging Face names
//! (model/), SFT data (data/), the SFT loop (sft/), bundle export through the library's ONNX
//! builders (export.rs), the synthetic demo corpus and its tokenizer (demo/), and the throughput
//! benchmark (bench.rs).

pub mod bench;
pub mod demo;
pub mod device;
pub mod error;
pub mod export;
pub mod metrics;
pub mod data;
pub mod model;
pub mod ppo;
pub mod sft;

pub use error::{Result, TrainError};
