//! C enums: `promptist_status` mirrors [`crate::error::Code`] number for number (stable, append
//! only); provider, strategy and early-stopping values for the options structs.

use std::ffi::c_char;

use crate::error::Code;
use crate::runtime::ProviderKind;

/// Status returned by every fallible function. The numbers are stable: never renumbered, only
/// appended. `PROMPTIST_STATUS_OK` (0) is success.
#[repr(i32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

impl From<Code> for promptist_status {
    fn from(c: Code) -> Self {
        match c {
            Code::Ok => promptist_status::Ok,
            Code::NullArgument => promptist_status::NullArgument,
            Code::InvalidUtf8 => promptist_status::InvalidUtf8,
            Code::InvalidOptions => promptist_status::InvalidOptions,
            Code::EmptyPrompt => promptist_status::EmptyPrompt,
            Code::PromptTooLong => promptist_status::PromptTooLong,
            Code::BundleNotFound => promptist_status::BundleNotFound,
            Code::BundleInvalid => promptist_status::BundleInvalid,
            Code::BundleChecksum => promptist_status::BundleChecksum,
            Code::RuntimeNotFound => promptist_status::RuntimeNotFound,
            Code::ProviderUnavailable => promptist_status::ProviderUnavailable,
            Code::Inference => promptist_status::Inference,
            Code::Tokenizer => promptist_status::Tokenizer,
            Code::NotInBundle => promptist_status::NotInBundle,
            Code::Cancelled => promptist_status::Cancelled,
            Code::Io => promptist_status::Io,
            Code::ModelFormat => promptist_status::ModelFormat,
            Code::Internal => promptist_status::Internal,
        }
    }
}

/// Every code, for the name lookup and tests.
pub(crate) const ALL_CODES: [Code; 18] = [
    Code::Ok,
    Code::NullArgument,
    Code::InvalidUtf8,
    Code::InvalidOptions,
    Code::EmptyPrompt,
    Code::PromptTooLong,
    Code::BundleNotFound,
    Code::BundleInvalid,
    Code::BundleChecksum,
    Code::RuntimeNotFound,
    Code::ProviderUnavailable,
    Code::Inference,
    Code::Tokenizer,
    Code::NotInBundle,
    Code::Cancelled,
    Code::Io,
    Code::ModelFormat,
    Code::Internal,
];

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
        let name: &'static std::ffi::CStr = match ALL_CODES.iter().find(|c| c.as_i32() == status) {
            Some(Code::Ok) => c"OK",
            Some(Code::NullArgument) => c"NULL_ARGUMENT",
            Some(Code::InvalidUtf8) => c"INVALID_UTF8",
            Some(Code::InvalidOptions) => c"INVALID_OPTIONS",
            Some(Code::EmptyPrompt) => c"EMPTY_PROMPT",
            Some(Code::PromptTooLong) => c"PROMPT_TOO_LONG",
            Some(Code::BundleNotFound) => c"BUNDLE_NOT_FOUND",
            Some(Code::BundleInvalid) => c"BUNDLE_INVALID",
            Some(Code::BundleChecksum) => c"BUNDLE_CHECKSUM",
            Some(Code::RuntimeNotFound) => c"RUNTIME_NOT_FOUND",
            Some(Code::ProviderUnavailable) => c"PROVIDER_UNAVAILABLE",
            Some(Code::Inference) => c"INFERENCE",
            Some(Code::Tokenizer) => c"TOKENIZER",
            Some(Code::NotInBundle) => c"NOT_IN_BUNDLE",
            Some(Code::Cancelled) => c"CANCELLED",
            Some(Code::Io) => c"IO",
            Some(Code::ModelFormat) => c"MODEL_FORMAT",
            Some(Code::Internal) => c"INTERNAL",
            None => c"UNKNOWN",
        };
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
    use std::ffi::CStr;

    #[test]
    fn status_numbers_match_codes() {
        for c in ALL_CODES {
            assert_eq!(promptist_status::from(c) as i32, c.as_i32(), "{c:?}");
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
