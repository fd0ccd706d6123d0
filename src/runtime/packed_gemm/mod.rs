//! CPU decoding's matrix products: ONNX Runtime's MLAS `Gemm` reads GPT-2's weights at about
//! 36 GB/s on the project's 2-core AVX-512 machine when a step has a few rows (8 beams), while the
//! memory delivers about 50. For the policy on CPU the session can run a rewritten graph whose
//! constant-weight `MatMul`/`Gemm` nodes are a custom operator over packed weights (see `pack.rs`,
//! `lanes.rs`, `kernel.rs`, `operator.rs`, `rewrite.rs`); everything else stays ONNX Runtime's own
//! kernels.
//! Same weights, same math; only the summation order of the dot products may differ (float noise).

mod kernel;
mod lanes;
mod operator;
mod pack;
mod rewrite;

use std::path::Path;

use ort::session::builder::SessionBuilder;
use ort::session::Session;

pub use kernel::available;
pub use rewrite::Rewritten;

use crate::{Error, Result};

/// The rewritten graph of `model` with its packed weights, or `None` when the CPU lacks AVX-512F
/// or the graph has nothing to replace (then load the file as it is).
pub fn prepare(model: &Path) -> Result<Option<Rewritten>> {
    if !available() {
        return Ok(None);
    }
    rewrite::rewrite(model)
}

impl Rewritten {
    /// Number of nodes that run on the packed kernel.
    pub fn nodes(&self) -> usize {
        self.weights.len()
    }

    /// Register the operator with `builder` and create the session from the rewritten graph.
    pub fn commit(self, builder: SessionBuilder, model: &Path) -> Result<Session> {
        let infer = |e: String| Error::Inference(format!("creating a session for {} (packed MatMul): {e}", model.display()));
        let domain = operator::domain(self.weights).map_err(|e| infer(e.to_string()))?;
        let mut b = builder.with_operators(domain).map_err(|e| infer(e.to_string()))?;
        b.commit_from_memory(&self.model_bytes).map_err(|e| infer(e.to_string()))
    }
}
