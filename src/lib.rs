//! promptist: the Promptist prompt optimizer (Hao et al., "Optimizing Prompts for Text-to-Image
//! Generation") and its reward, as a Rust library with a stable C ABI.

pub mod error;

pub mod bundle;
pub mod capi;
pub mod diffusion;
pub mod engine;
pub mod export;
pub mod policy;
pub mod reward;
pub mod runtime;
pub mod text;
pub mod weights;

pub use error::{Code, Error, Result};

/// The library version (Cargo package version).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
