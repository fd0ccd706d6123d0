//! Engine: owns a loaded bundle and its sessions; the Rust API that the C ABI wraps.
//! Input checks (empty / too-long prompt, decoding options) follow docs/method.md §2 and
//! transformers' `generate()` argument rules; see `engine/validate.rs`.

mod baseline_cache;
mod pairs;
mod params;
mod score;
mod validate;

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::bundle::{Bundle, Checksums};
use crate::error::{Error, Result};
use crate::policy::config::DecodingConfig;
use crate::policy::prompt::{finish_output, format_input};
use crate::policy::{generate, Controls, Gpt2Dims, OnnxGpt2};
use crate::runtime::{ProviderChoice, ProviderKind, Runtime, SessionOptions};
use crate::text::gpt2::Gpt2Tokenizer;
use crate::text::{budget, syntax};

pub use params::{DecodingParams, StrategyKind};
pub use validate::{check_prompt_text, validate_decoding, validate_engine_options};
pub use pairs::{PairScore, PairScores, PairStats, UserBaseline};
pub use score::{BestOfN, CandidateScore, ScoreOptions, ScoreResult, BASELINE_CACHE_CAPACITY};

/// How to open an engine.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Explicit path of the ONNX Runtime shared library (first place searched).
    pub ort_library_path: Option<PathBuf>,
    pub provider: ProviderChoice,
    /// CUDA device ordinal.
    pub device_id: i32,
    /// ONNX Runtime intra-op threads (0 = ONNX Runtime's default).
    pub intra_op_threads: usize,
    /// Skip hashing the bundle's files at load (off by default): the manifest, each file's
    /// presence and each file's size are still checked (docs/bundle-format.md).
    pub skip_checksums: bool,
    /// Most x-baselines (user prompt's CLIP text embedding and image aesthetics) the score cache
    /// keeps; 0 disables it. Default [`BASELINE_CACHE_CAPACITY`]; a PPO run wants thousands.
    pub baseline_cache_capacity: usize,
    /// On CPU, decode with promptist's packed MatMul kernel for the policy's constant weights
    /// (AVX-512F machines; see [`crate::runtime::packed_gemm`]). On by default; off runs ONNX
    /// Runtime's own Gemm. No effect on CUDA or without AVX-512F.
    pub packed_matmul: bool,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            ort_library_path: None,
            provider: ProviderChoice::default(),
            device_id: 0,
            intra_op_threads: 0,
            skip_checksums: false,
            baseline_cache_capacity: BASELINE_CACHE_CAPACITY,
            packed_matmul: true,
        }
    }
}

/// Options of one `optimize` call.
#[derive(Debug, Clone)]
pub struct OptimizeOptions {
    pub decoding: DecodingConfig,
    /// See [`DecodingParams::keep_syntax`]. Default true.
    pub keep_syntax: bool,
    /// See [`DecodingParams::max_clip_tokens`]. Default 75; 0 = off.
    pub max_clip_tokens: usize,
}

impl Default for OptimizeOptions {
    fn default() -> Self {
        OptimizeOptions::from(&DecodingParams::default())
    }
}

impl OptimizeOptions {
    /// These decoding settings, with the other options at their defaults.
    pub fn with_decoding(decoding: DecodingConfig) -> Self {
        OptimizeOptions { decoding, ..OptimizeOptions::default() }
    }
}

impl From<&DecodingParams> for OptimizeOptions {
    fn from(p: &DecodingParams) -> Self {
        OptimizeOptions { decoding: p.to_config(), keep_syntax: p.keep_syntax, max_clip_tokens: p.max_clip_tokens }
    }
}

/// One rewritten prompt.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    /// The rewrite; when the prompt's syntax was kept, the user's prompt followed by the rewrite's
    /// new phrases (so it differs from the decoded `token_ids`).
    pub text: String,
    /// CLIP tokens of `text` (its plain text; start and end not counted).
    pub clip_tokens: usize,
    /// The user's own text alone is over `max_clip_tokens`: `text` is that text, unchanged.
    pub over_budget: bool,
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
/// many threads at once. Argument checks, tokenization and detokenization run in parallel; the
/// decoding loop holds the policy-session lock (ONNX Runtime's `Session::run` takes `&mut`, and the
/// KV cache lives in the model object), so concurrent `optimize` calls on one engine decode one
/// after another. Open several engines to decode in parallel.
pub struct Engine {
    bundle: Bundle,
    tokenizer: Gpt2Tokenizer,
    model: Mutex<OnnxGpt2>,
    n_ctx: usize,
    eos_token_id: u32,
    provider: ProviderKind,
    /// The score models (None when the bundle has no score components).
    score: Option<score::ScoreEngine>,
    /// The embedded CLIP tokenizer for `max_clip_tokens`, built on first use and freed with the
    /// engine.
    budget_tokenizer: std::sync::OnceLock<crate::text::clip::ClipTokenizer>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("bundle", &self.bundle.root())
            .field("provider", &self.provider)
            .field("n_ctx", &self.n_ctx)
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// Open the bundle at `bundle_path`: validate its manifest and checksums, load ONNX Runtime,
    /// create the policy session on the requested provider and load the tokenizer.
    ///
    /// ONNX Runtime is loaded once per process: an explicit `ort_library_path` is the only place
    /// tried (RUNTIME_NOT_FOUND when it cannot be loaded), and once a library is loaded a different
    /// `ort_library_path` is INVALID_OPTIONS naming both.
    pub fn open(bundle_path: impl AsRef<Path>, options: &EngineOptions) -> Result<Engine> {
        validate_engine_options(options)?;
        let checksums = if options.skip_checksums { Checksums::Skip } else { Checksums::Verify };
        let bundle = Bundle::open(bundle_path.as_ref(), checksums)?;
        let policy = bundle.policy()?.clone();
        let cfg = policy.config;
        let tokenizer = policy.load_tokenizer()?;
        let runtime = Runtime::get(options.ort_library_path.as_deref())?;
        let session_options = SessionOptions {
            provider: options.provider,
            device_id: options.device_id,
            intra_op_threads: options.intra_op_threads,
            packed_matmul: false,
        };
        let policy_options = SessionOptions { packed_matmul: options.packed_matmul, ..session_options.clone() };
        let (session, provider) = runtime.session(&policy.model, &policy_options, None)?;
        let dims = Gpt2Dims {
            n_layer: cfg.n_layer,
            n_head: cfg.n_head,
            head_dim: cfg.n_embd / cfg.n_head,
            vocab_size: cfg.vocab_size,
            n_positions: cfg.n_ctx,
        };
        let model = OnnxGpt2::new(session, dims)?;
        let score = score::ScoreEngine::open(&bundle, &runtime, &session_options, options.baseline_cache_capacity)?;
        Ok(Engine {
            bundle,
            tokenizer,
            model: Mutex::new(model),
            n_ctx: cfg.n_ctx,
            eos_token_id: cfg.eos_token_id,
            provider,
            score,
            budget_tokenizer: std::sync::OnceLock::new(),
        })
    }

    /// Rewrite `prompt` with the policy (docs/method.md §1-2): the input is
    /// `prompt.trim() + " Rephrase:"` without BOS; each candidate is its generated tokens (EOS
    /// excluded) decoded without special tokens and trimmed. Candidates come best first.
    pub fn optimize(&self, prompt: &str, options: &OptimizeOptions) -> Result<OptimizeResult> {
        self.optimize_with_progress(prompt, options, None)
    }

    /// [`Engine::optimize`] with a progress callback, called after every decoding step with
    /// (step, max_new_tokens) on the calling thread while the policy-session lock is held;
    /// returning false cancels the call (`Error::Cancelled`).
    pub fn optimize_with_progress(
        &self,
        prompt: &str,
        options: &OptimizeOptions,
        progress: Option<&mut dyn FnMut(usize, usize) -> bool>,
    ) -> Result<OptimizeResult> {
        let cfg = &options.decoding;
        validate_decoding(cfg)?;
        crate::capi::limits::check_range("max_clip_tokens", options.max_clip_tokens, 0, crate::capi::limits::PROMPTIST_MAX_CLIP_TOKENS)?;
        check_prompt_text(prompt)?;
        // With syntax kept, the policy sees the prompt's plain text (docs/prompt-syntax.md).
        let parsed = options.keep_syntax.then(|| syntax::parse(prompt)).filter(|p| !p.spans.is_empty());
        let input = format_input(parsed.as_ref().map_or(prompt, |p| p.plain.as_str()))?;
        let ids = self.tokenizer.encode(&input)?;
        if ids.len() + cfg.max_new_tokens > self.n_ctx {
            return Err(Error::PromptTooLong { tokens: ids.len(), new_tokens: cfg.max_new_tokens, context: self.n_ctx });
        }
        let mut controls = Controls { eos_token_id: self.eos_token_id, pad_token_id: self.eos_token_id, progress, ..Controls::gpt2() };
        let out = {
            // A panic while decoding (caught at the C boundary) poisons the lock; the model's state is
            // rebuilt by every `prefill`, so the next call may use it again.
            let mut model = self.model.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            generate(&mut *model, std::slice::from_ref(&ids), cfg, &mut controls)?
        };
        let seed = out.seed;
        let first = out.prompts.into_iter().next().ok_or_else(|| Error::Internal("the decoder returned no output".into()))?;
        let candidates = first
            .hypotheses
            .into_iter()
            .map(|h| {
                let mut text = finish_output(&self.tokenizer.decode_skip_special(&h.tokens)?);
                if let Some(p) = &parsed {
                    text = syntax::keep_syntax(prompt, &p.plain, &text);
                }
                let fitted = budget::fit(self.budget_tokenizer()?, prompt, &text, options.max_clip_tokens)?;
                Ok(Candidate { text: fitted.text, clip_tokens: fitted.clip_tokens, over_budget: fitted.over_budget, score: h.score, token_ids: h.tokens })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(OptimizeResult { candidates, seed, provider: self.provider, random_weights: self.random_weights() })
    }

    /// The CLIP tokenizer that counts `max_clip_tokens` (the embedded one, built once per engine).
    fn budget_tokenizer(&self) -> Result<&crate::text::clip::ClipTokenizer> {
        if let Some(t) = self.budget_tokenizer.get() {
            return Ok(t);
        }
        // Two threads may both build it; one copy is kept.
        let _ = self.budget_tokenizer.set(crate::text::clip::ClipTokenizer::embedded()?);
        self.budget_tokenizer.get().ok_or_else(|| Error::Internal("the CLIP tokenizer was not kept".into()))
    }

    /// The execution provider the policy session runs on.
    pub fn provider(&self) -> ProviderKind {
        self.provider
    }

    /// True when the bundle's policy has random weights (the policy component's provenance).
    pub fn random_weights(&self) -> bool {
        self.bundle.component_is_random(crate::bundle::POLICY)
    }

    /// True when any score component (SD text encoder, UNet, VAE, scorer CLIP, aesthetic head) has
    /// random weights: rewards are then meaningless.
    pub fn score_is_random(&self) -> bool {
        crate::bundle::layout::SCORE_COMPONENTS.iter().any(|c| self.bundle.component_is_random(c))
    }

    /// The policy's context length (prompt tokens + new tokens must fit).
    pub fn context_length(&self) -> usize {
        self.n_ctx
    }

    /// The bundle folder this engine was opened from.
    pub fn bundle_path(&self) -> &Path {
        self.bundle.root()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Engine>();
    }
}
