//! Engine: owns a loaded bundle and its sessions; the Rust API that the C ABI wraps.

use std::path::PathBuf;

use crate::policy::config::DecodingConfig;
use crate::runtime::{ProviderChoice, ProviderKind};

/// How to open an engine.
#[derive(Debug, Clone, Default)]
pub struct EngineOptions {
    /// Explicit path of the ONNX Runtime shared library (first place searched).
    pub ort_library_path: Option<PathBuf>,
    pub provider: ProviderChoice,
    /// CUDA device ordinal.
    pub device_id: i32,
    /// ONNX Runtime intra-op threads (0 = ONNX Runtime's default).
    pub intra_op_threads: usize,
    /// Verify every file's sha256 at load (on by default in `Engine::open`).
    pub skip_checksums: bool,
}

/// Options of one `optimize` call.
#[derive(Debug, Clone, Default)]
pub struct OptimizeOptions {
    pub decoding: DecodingConfig,
}

/// One rewritten prompt.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub text: String,
    /// The decoder's score (beam score with length penalty, or sum of log-probs).
    pub score: f32,
    /// The generated token ids (input excluded, EOS excluded).
    pub token_ids: Vec<u32>,
}

/// The result of `optimize`: candidates best first.
#[derive(Debug, Clone, PartialEq)]
pub struct OptimizeResult {
    pub candidates: Vec<Candidate>,
    /// The sampling seed that was used (None for deterministic strategies).
    pub seed: Option<u64>,
    pub provider: ProviderKind,
}
