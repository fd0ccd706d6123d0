//! The crate's one error type, with stable numbered codes that the C ABI returns as `promptist_status`.

use std::path::PathBuf;

/// Stable status codes: the C ABI's `promptist_status`, defined once in `capi/status.rs` (the
/// numbers are part of the ABI: never renumbered, only appended).
pub use crate::capi::status::promptist_status as Code;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{what} is NULL")]
    NullArgument { what: &'static str },
    #[error("{what} is not valid UTF-8")]
    InvalidUtf8 { what: &'static str },
    #[error("invalid options: {0}")]
    InvalidOptions(String),
    #[error("the prompt is empty")]
    EmptyPrompt,
    #[error("the prompt is too long: {tokens} tokens + {new_tokens} new tokens exceed the context of {context}")]
    PromptTooLong { tokens: usize, new_tokens: usize, context: usize },
    #[error("bundle not found: {}", .0.display())]
    BundleNotFound(PathBuf),
    #[error("invalid bundle: {0}")]
    BundleInvalid(String),
    #[error("bundle file {} is corrupt: sha256 {actual}, manifest says {expected}", .path.display())]
    BundleChecksum { path: PathBuf, expected: String, actual: String },
    #[error("ONNX Runtime library not found or not loadable; tried: {0}")]
    RuntimeNotFound(String),
    #[error("execution provider unavailable: {0}")]
    ProviderUnavailable(String),
    #[error("inference failed: {0}")]
    Inference(String),
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    #[error("not in this bundle: {0}")]
    NotInBundle(String),
    #[error("cancelled")]
    Cancelled,
    #[error("{context}: {source}")]
    Io { context: String, #[source] source: std::io::Error },
    #[error("model format: {0}")]
    ModelFormat(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    pub fn code(&self) -> Code {
        match self {
            Error::NullArgument { .. } => Code::NullArgument,
            Error::InvalidUtf8 { .. } => Code::InvalidUtf8,
            Error::InvalidOptions(_) => Code::InvalidOptions,
            Error::EmptyPrompt => Code::EmptyPrompt,
            Error::PromptTooLong { .. } => Code::PromptTooLong,
            Error::BundleNotFound(_) => Code::BundleNotFound,
            Error::BundleInvalid(_) => Code::BundleInvalid,
            Error::BundleChecksum { .. } => Code::BundleChecksum,
            Error::RuntimeNotFound(_) => Code::RuntimeNotFound,
            Error::ProviderUnavailable(_) => Code::ProviderUnavailable,
            Error::Inference(_) => Code::Inference,
            Error::Tokenizer(_) => Code::Tokenizer,
            Error::NotInBundle(_) => Code::NotInBundle,
            Error::Cancelled => Code::Cancelled,
            Error::Io { .. } => Code::Io,
            Error::ModelFormat(_) => Code::ModelFormat,
            Error::Internal(_) => Code::Internal,
        }
    }

    /// Wrap an I/O error with what was being done (usually naming the path).
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io { context: context.into(), source }
    }
}

impl From<ort::Error> for Error {
    fn from(e: ort::Error) -> Self {
        Error::Inference(e.to_string())
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
