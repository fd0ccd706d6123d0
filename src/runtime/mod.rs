//! ONNX Runtime integration (through the `ort` crate, load-dynamic): locating the shared library,
//! execution providers, sessions.
//!
//! Everything that uses ort goes through [`Runtime::get`] first: it loads the library once per
//! process in the project's search order and owns ort's single environment.

pub(crate) mod graph;
pub mod library;
pub mod packed_gemm;
pub mod session;

pub use library::{Attempt, LibraryInfo, LibrarySource, Runtime};
pub use session::{check_io, IoNames, SessionOptions};

/// Which execution provider the caller asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProviderChoice {
    /// CPU only.
    #[default]
    Cpu,
    /// CUDA, or an error when it cannot be registered (never a silent CPU run).
    Cuda,
    /// CUDA when it registers, else CPU; the result reports which ran.
    Auto,
}

/// The execution provider that actually ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderKind {
    Cpu,
    Cuda,
}

impl ProviderChoice {
    pub fn name(self) -> &'static str {
        match self {
            ProviderChoice::Cpu => "cpu",
            ProviderChoice::Cuda => "cuda",
            ProviderChoice::Auto => "auto",
        }
    }
}

impl std::str::FromStr for ProviderChoice {
    type Err = crate::Error;
    /// "cpu", "cuda" or "auto" (case-insensitive).
    fn from_str(s: &str) -> crate::Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "cpu" => Ok(ProviderChoice::Cpu),
            "cuda" => Ok(ProviderChoice::Cuda),
            "auto" => Ok(ProviderChoice::Auto),
            other => Err(crate::Error::InvalidOptions(format!(
                "unknown provider `{other}` (expected cpu, cuda or auto)"
            ))),
        }
    }
}

impl ProviderKind {
    pub fn name(self) -> &'static str {
        match self {
            ProviderKind::Cpu => "cpu",
            ProviderKind::Cuda => "cuda",
        }
    }
}
