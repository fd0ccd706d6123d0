//! Engine: owns a loaded bundle and its sessions; the Rust API that the C ABI wraps.
//! Input checks (empty / too-long prompt, decoding options) follow SPEC section 2 and
//! transformers' `generate()` argument rules; see `engine/validate.rs`.

mod params;
mod validate;

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::policy::config::DecodingConfig;
use crate::runtime::{ProviderChoice, ProviderKind};

pub use params::{DecodingParams, StrategyKind};
pub use validate::{check_prompt_text, validate_decoding, validate_engine_options};

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

impl From<&DecodingParams> for OptimizeOptions {
    fn from(p: &DecodingParams) -> Self {
        OptimizeOptions { decoding: p.to_config() }
    }
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
    /// True when the bundle's policy has random weights: the candidates are meaningless and
    /// every front-end must say so (copied from the bundle's provenance).
    pub random_weights: bool,
}

/// A loaded bundle ready to optimize prompts. `Engine` is `Send + Sync`: one engine may serve
/// many threads at once (what is serialised is documented on [`Engine::optimize`]).
pub struct Engine {
    bundle_path: PathBuf,
    provider: ProviderKind,
    random_weights: bool,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").field("bundle_path", &self.bundle_path).finish_non_exhaustive()
    }
}

impl Engine {
    /// Open the bundle at `bundle_path`: validate its manifest and checksums, load ONNX Runtime,
    /// create the policy session on the requested provider and load the tokenizer.
    pub fn open(bundle_path: impl AsRef<Path>, options: &EngineOptions) -> Result<Engine> {
        let bundle_path = bundle_path.as_ref();
        validate_engine_options(options)?;
        if !bundle_path.is_dir() {
            return Err(Error::BundleNotFound(bundle_path.to_path_buf()));
        }
        Err(Error::Internal(format!(
            "the engine backend (bundle loading, ONNX Runtime, decoding) is not wired in this build; cannot open {}",
            bundle_path.display()
        )))
    }

    /// Rewrite `prompt` with the policy.
    pub fn optimize(&self, prompt: &str, options: &OptimizeOptions) -> Result<OptimizeResult> {
        validate_decoding(&options.decoding)?;
        check_prompt_text(prompt)?;
        Err(Error::Internal("the engine backend is not wired in this build".into()))
    }

    /// The execution provider the policy session runs on.
    pub fn provider(&self) -> ProviderKind {
        self.provider
    }

    /// True when the bundle's policy has random weights (from its provenance).
    pub fn random_weights(&self) -> bool {
        self.random_weights
    }

    /// The bundle folder this engine was opened from.
    pub fn bundle_path(&self) -> &Path {
        &self.bundle_path
    }
}
