//! ONNX Runtime integration: locating the shared library, execution providers, sessions.

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

impl ProviderKind {
    pub fn name(self) -> &'static str {
        match self {
            ProviderKind::Cpu => "cpu",
            ProviderKind::Cuda => "cuda",
        }
    }
}
