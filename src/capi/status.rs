//! C enums: `promptist_status`, the one list of status codes (stable numbers, append only; the
//! core's [`crate::error::Code`] is this type), and the provider, strategy and early-stopping
//! values of the options structs.

use std::ffi::{c_char, CStr};

use crate::runtime::ProviderKind;

/// Status returned by every fallible function. The numbers are stable: never renumbered, only
/// appended. `PROMPTIST_STATUS_OK` (0) is success.
#[repr(i32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum promptist_status {
    /// Success.
    Ok = 0,
    /// A required pointer argument was NULL.
    NullArgument = 1,
    /// A string argument was not valid UTF-8.
    InvalidUtf8 = 2,
    /// An options struct or value is invalid (`struct_size` too small, `num_beams` 0, unknown enum value, ...).
    InvalidOptions = 3,
    /// The prompt is empty after trimming white space.
    EmptyPrompt = 4,
    /// The prompt's tokens plus `max_new_tokens` exceed the model's context.
    PromptTooLong = 5,
    /// The bundle path does not exist or is not a directory.
    BundleNotFound = 6,
    /// The bundle manifest or layout is invalid, or one of its files is missing.
    BundleInvalid = 7,
    /// A bundle file's sha256 does not match the manifest.
    BundleChecksum = 8,
    /// The ONNX Runtime shared library could not be found or loaded.
    RuntimeNotFound = 9,
    /// The requested execution provider (e.g. CUDA) could not be registered.
    ProviderUnavailable = 10,
    /// ONNX Runtime failed while creating a session or running a graph.
    Inference = 11,
    /// The tokenizer failed.
    Tokenizer = 12,
    /// The bundle lacks a component this call needs.
    NotInBundle = 13,
    /// The call was cancelled.
    Cancelled = 14,
    /// A file system error.
    Io = 15,
    /// Model weights or a model file are malformed.
    ModelFormat = 16,
    /// A panic or broken invariant inside the library (a bug: please report it).
    Internal = 17,
}

/// Every status, in number order (`ALL_STATUSES[n]` is status `n`; a test checks it).
pub(crate) const ALL_STATUSES: [promptist_status; 18] = [
    promptist_status::Ok,
    promptist_status::NullArgument,
    promptist_status::InvalidUtf8,
    promptist_status::InvalidOptions,
    promptist_status::EmptyPrompt,
    promptist_status::PromptTooLong,
    promptist_status::BundleNotFound,
    promptist_status::BundleInvalid,
    promptist_status::BundleChecksum,
    promptist_status::RuntimeNotFound,
    promptist_status::ProviderUnavailable,
    promptist_status::Inference,
    promptist_status::Tokenizer,
    promptist_status::NotInBundle,
    promptist_status::Cancelled,
    promptist_status::Io,
    promptist_status::ModelFormat,
    promptist_status::Internal,
];

impl promptist_status {
    pub fn as_i32(self) -> i32 {
        self as i32
    }

    /// The status with number `v`, if there is one.
    pub fn from_i32(v: i32) -> Option<Self> {
        usize::try_from(v).ok().and_then(|i| ALL_STATUSES.get(i)).copied()
    }

    /// The stable name (e.g. "BUNDLE_NOT_FOUND"), as `promptist_status_name` returns it.
    pub fn c_name(self) -> &'static CStr {
        match self {
            Self::Ok => c"OK",
            Self::NullArgument => c"NULL_ARGUMENT",
            Self::InvalidUtf8 => c"INVALID_UTF8",
            Self::InvalidOptions => c"INVALID_OPTIONS",
            Self::EmptyPrompt => c"EMPTY_PROMPT",
            Self::PromptTooLong => c"PROMPT_TOO_LONG",
            Self::BundleNotFound => c"BUNDLE_NOT_FOUND",
            Self::BundleInvalid => c"BUNDLE_INVALID",
            Self::BundleChecksum => c"BUNDLE_CHECKSUM",
            Self::RuntimeNotFound => c"RUNTIME_NOT_FOUND",
            Self::ProviderUnavailable => c"PROVIDER_UNAVAILABLE",
            Self::Inference => c"INFERENCE",
            Self::Tokenizer => c"TOKENIZER",
            Self::NotInBundle => c"NOT_IN_BUNDLE",
            Self::Cancelled => c"CANCELLED",
            Self::Io => c"IO",
            Self::ModelFormat => c"MODEL_FORMAT",
            Self::Internal => c"INTERNAL",
        }
    }

    /// [`promptist_status::c_name`] as a `&str` (used in messages and bindings).
    pub fn name(self) -> &'static str {
        self.c_name().to_str().unwrap_or("UNKNOWN")
    }
}

/// Execution provider: asked for in `promptist_engine_options.provider`, reported by
/// `promptist_optimize_result_provider` (which is only ever CPU or CUDA).
#[repr(i32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum promptist_provider {
    /// CPU only.
    Cpu = 0,
    /// CUDA, or `PROMPTIST_STATUS_PROVIDER_UNAVAILABLE` when it cannot be registered (never a silent CPU run).
    Cuda = 1,
    /// CUDA when it registers, else CPU; results report which one ran.
    Auto = 2,
}

/// How the policy's constant-weight matrix products run on the CPU
/// (`promptist_engine_options.cpu_matmul`).
#[repr(i32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum promptist_cpu_matmul {
    /// promptist's packed kernel on CPUs with AVX-512F (faster decoding; results equal to float
    /// rounding), ONNX Runtime's Gemm elsewhere. The default.
    Packed = 0,
    /// Always ONNX Runtime's own Gemm.
    OnnxRuntime = 1,
}

impl From<ProviderKind> for promptist_provider {
    fn from(k: ProviderKind) -> Self {
        match k {
            ProviderKind::Cpu => promptist_provider::Cpu,
            ProviderKind::Cuda => promptist_provider::Cuda,
        }
    }
}

/// Decoding strategy of `promptist_optimize_options.strategy`.
#[repr(i32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum promptist_strategy {
    /// Greedy decoding (one sequence).
    Greedy = 0,
    /// Beam search (`num_beams`, `length_penalty`, `early_stopping`); the default.
    Beam = 1,
    /// Diverse (group) beam search (`num_beams`, `num_beam_groups`, `diversity_penalty`, `length_penalty`, `early_stopping`).
    DiverseBeam = 2,
    /// Sampling (`temperature`, `top_k`, `top_p`, `seed` when `has_seed`).
    Sample = 3,
}

/// The stage a progress callback reports.
#[repr(i32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum promptist_stage {
    /// Decoding the policy: `step` of `max_new_tokens` tokens generated.
    Decode = 0,
    /// Score: SD text encoding done (`step` 1 of 1).
    Encode = 1,
    /// Score: denoising step `step` of `total` done.
    Denoise = 2,
    /// Score: `step` of `total` images VAE-decoded.
    VaeDecode = 3,
    /// Score: `step` of `total` images embedded by CLIP and scored.
    Score = 4,
}

/// transformers' `early_stopping` for the beam strategies.
#[repr(i32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum promptist_early_stopping {
    /// transformers' `early_stopping=False` (heuristic stop); the default.
    Heuristic = 0,
    /// `early_stopping=True`: stop once `num_beams` hypotheses are finished.
    True = 1,
    /// `early_stopping="never"`: stop only when no better hypothesis can exist.
    Never = 2,
}

/// NUL-terminated static name of a status code (e.g. "BUNDLE_NOT_FOUND"); "UNKNOWN" for a number
/// that is not a status. Never NULL; the string is static (do not free). Thread-safe.
#[no_mangle]
pub extern "C" fn promptist_status_name(status: i32) -> *const c_char {
    ffi_infallible!(c"UNKNOWN".as_ptr(), {
        let name = promptist_status::from_i32(status).map_or(c"UNKNOWN", promptist_status::c_name);
        name.as_ptr()
    })
}

/// NUL-terminated static name of a provider value ("cpu", "cuda", "auto"); "unknown" otherwise.
/// Never NULL; static (do not free). Thread-safe.
#[no_mangle]
pub extern "C" fn promptist_provider_name(provider: i32) -> *const c_char {
    ffi_infallible!(c"unknown".as_ptr(), {
        let name: &'static std::ffi::CStr = match provider {
            0 => c"cpu",
            1 => c"cuda",
            2 => c"auto",
            _ => c"unknown",
        };
        name.as_ptr()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_numbers_match_codes() {
        assert_eq!(ALL_STATUSES.len(), promptist_status::Internal as usize + 1);
        for (i, c) in ALL_STATUSES.into_iter().enumerate() {
            assert_eq!(c.as_i32(), i as i32, "{c:?}");
            assert_eq!(promptist_status::from_i32(i as i32), Some(c));
            // SAFETY: promptist_status_name returns a static NUL-terminated string.
            let name = unsafe { CStr::from_ptr(promptist_status_name(c.as_i32())) };
            assert_eq!(name.to_str().unwrap(), c.name());
        }
        // SAFETY: test code: every pointer passed is NULL on purpose or valid and owned by this test.
        let unknown = unsafe { CStr::from_ptr(promptist_status_name(999)) };
        assert_eq!(unknown.to_str().unwrap(), "UNKNOWN");
    }

    #[test]
    fn provider_names() {
        for (k, n) in [(ProviderKind::Cpu, "cpu"), (ProviderKind::Cuda, "cuda")] {
            let v = promptist_provider::from(k) as i32;
            // SAFETY: test code: every pointer passed is NULL on purpose or valid and owned by this test.
            let name = unsafe { CStr::from_ptr(promptist_provider_name(v)) };
            assert_eq!(name.to_str().unwrap(), n);
            assert_eq!(k.name(), n);
        }
    }
}
