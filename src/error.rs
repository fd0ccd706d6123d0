//! The crate's one error type, with stable numbered codes that the C ABI returns as `promptist_status`.

use std::path::PathBuf;

/// Stable status codes. The numbers are part of the ABI: never renumber, only append.
#[repr(i32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Code {
    Ok = 0,
    /// A required pointer or argument was NULL / missing.
    NullArgument = 1,
    /// A string argument was not valid UTF-8.
    InvalidUtf8 = 2,
    /// An options struct or value is invalid (wrong `struct_size`, `num_beams` 0, ...).
    InvalidOptions = 3,
    /// The prompt is empty after trimming.
    EmptyPrompt = 4,
    /// The prompt (plus generation budget) does not fit in the model's context.
    PromptTooLong = 5,
    /// The bundle path does not exist or is not a directory.
    BundleNotFound = 6,
    /// The bundle manifest or layout is invalid, or a file is missing.
    BundleInvalid = 7,
    /// A bundle file's sha256 does not match the manifest.
    BundleChecksum = 8,
    /// The ONNX Runtime shared library could not be found or loaded.
    RuntimeNotFound = 9,
    /// The requested execution provider (e.g. CUDA) could not be registered.
    ProviderUnavailable = 10,
    /// ONNX Runtime failed while creating a session or running a graph.
    Inference = 11,
    /// Tokenizer failure.
    Tokenizer = 12,
    /// The bundle lacks a component this call needs.
    NotInBundle = 13,
    /// The call was cancelled through a callback or cancel flag.
    Cancelled = 14,
    /// File system error.
    Io = 15,
    /// Model weights or a model file are malformed or do not match the expected layout.
    ModelFormat = 16,
    /// A panic or broken invariant inside the library.
    Internal = 17,
}

impl Code {
    pub fn as_i32(self) -> i32 {
        self as i32
    }
    /// A short stable name for the code (used in messages and bindings).
    pub fn name(self) -> &'static str {
        match self {
            Code::Ok => "OK",
            Code::NullArgument => "NULL_ARGUMENT",
            Code::InvalidUtf8 => "INVALID_UTF8",
            Code::InvalidOptions => "INVALID_OPTIONS",
            Code::EmptyPrompt => "EMPTY_PROMPT",
            Code::PromptTooLong => "PROMPT_TOO_LONG",
            Code::BundleNotFound => "BUNDLE_NOT_FOUND",
            Code::BundleInvalid => "BUNDLE_INVALID",
            Code::BundleChecksum => "BUNDLE_CHECKSUM",
            Code::RuntimeNotFound => "RUNTIME_NOT_FOUND",
            Code::ProviderUnavailable => "PROVIDER_UNAVAILABLE",
            Code::Inference => "INFERENCE",
            Code::Tokenizer => "TOKENIZER",
            Code::NotInBundle => "NOT_IN_BUNDLE",
            Code::Cancelled => "CANCELLED",
            Code::Io => "IO",
            Code::ModelFormat => "MODEL_FORMAT",
            Code::Internal => "INTERNAL",
        }
    }
}

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
