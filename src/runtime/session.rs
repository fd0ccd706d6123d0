//! Creating ONNX Runtime sessions (ort 2.0 `SessionBuilder`) on the requested execution provider,
//! and checking a model's input/output names against what the caller will feed and read.

use std::path::Path;

use ort::ep::{ExecutionProviderDispatch, CUDA};
use ort::session::Session;

use super::library::Runtime;
use super::{ProviderChoice, ProviderKind};
use crate::error::{Error, Result};

/// How to build a session.
#[derive(Debug, Clone, Default)]
pub struct SessionOptions {
    pub provider: ProviderChoice,
    /// CUDA device ordinal.
    pub device_id: i32,
    /// Intra-op threads (0 = ONNX Runtime's default).
    pub intra_op_threads: usize,
    /// On CPU, run the graph's constant-weight MatMul/Gemm nodes with promptist's packed kernel
    /// (see [`super::packed_gemm`]; no effect without AVX-512F or on CUDA). Meant for the policy's
    /// few-row decoding steps; off by default.
    pub packed_matmul: bool,
}

/// The tensor names a graph must have: every `inputs` name must be an input, and the graph may have
/// no other inputs (the caller feeds exactly these); every `outputs` name must be an output.
#[derive(Debug, Clone, Default)]
pub struct IoNames {
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
}

impl IoNames {
    pub fn new<I: Into<String>, O: Into<String>>(
        inputs: impl IntoIterator<Item = I>,
        outputs: impl IntoIterator<Item = O>,
    ) -> Self {
        IoNames {
            inputs: inputs.into_iter().map(Into::into).collect(),
            outputs: outputs.into_iter().map(Into::into).collect(),
        }
    }
}

fn cuda_ep(device_id: i32) -> ExecutionProviderDispatch {
    CUDA::default().with_device_id(device_id).build().error_on_failure()
}

impl Runtime {
    /// Load `model` on the requested provider and check its tensor names (`expect`, if given).
    /// Returns the session and the provider that runs it: `Cuda` fails with ProviderUnavailable when
    /// the CUDA provider cannot be registered; `Auto` falls back to CPU in that case.
    pub fn session(
        &self,
        model: &Path,
        opts: &SessionOptions,
        expect: Option<&IoNames>,
    ) -> Result<(Session, ProviderKind)> {
        if !model.is_file() {
            return Err(Error::ModelFormat(format!("model file not found: {}", model.display())));
        }
        let (session, kind) = match opts.provider {
            ProviderChoice::Cpu => (self.build(model, opts, None)?, ProviderKind::Cpu),
            ProviderChoice::Cuda => (
                self.build(model, opts, Some(cuda_ep(opts.device_id)))?,
                ProviderKind::Cuda,
            ),
            ProviderChoice::Auto => match self.build(model, opts, Some(cuda_ep(opts.device_id))) {
                Ok(s) => (s, ProviderKind::Cuda),
                Err(Error::ProviderUnavailable(_)) => (self.build(model, opts, None)?, ProviderKind::Cpu),
                Err(e) => return Err(e),
            },
        };
        if let Some(expect) = expect {
            check_io(&session, model, expect)?;
        }
        Ok((session, kind))
    }

    fn build(&self, model: &Path, opts: &SessionOptions, ep: Option<ExecutionProviderDispatch>) -> Result<Session> {
        let infer = |e: ort::Error| Error::Inference(format!("creating a session for {}: {e}", model.display()));
        let mut b = Session::builder(&self.env).map_err(infer)?;
        if opts.intra_op_threads > 0 {
            b = b
                .with_intra_threads(opts.intra_op_threads)
                .map_err(|e| infer(e.into()))?;
        }
        let with_cuda = ep.is_some();
        if !with_cuda && opts.packed_matmul {
            if let Some(rw) = super::packed_gemm::prepare(model)? {
                return rw.commit(b, model);
            }
        }
        if let Some(ep) = ep {
            b = b.with_execution_providers([ep]).map_err(|e| {
                Error::ProviderUnavailable(format!(
                    "CUDA could not be registered with ONNX Runtime {} ({}): {}. A CUDA run needs the \
                     onnxruntime-gpu build of the library and the CUDA/cuDNN libraries on the loader path",
                    self.library().version,
                    self.library().path.display(),
                    e.to_string().trim_end_matches('.')
                ))
            })?;
        }
        b.commit_from_file(model).map_err(|e| {
            // The CUDA provider can register and still fail when the session starts (no device,
            // missing cuDNN/cuBLAS): that is the provider being unavailable, not a bad model.
            let msg = e.to_string();
            let lower = msg.to_ascii_lowercase();
            if with_cuda && ["cuda", "cudnn", "cublas"].iter().any(|w| lower.contains(w)) {
                Error::ProviderUnavailable(format!(
                    "the CUDA provider failed to start a session for {}: {msg}",
                    model.display()
                ))
            } else {
                infer(e)
            }
        })
    }
}

/// Check `session`'s input/output names against `expect`; errors name the file and the tensor.
pub fn check_io(session: &Session, model: &Path, expect: &IoNames) -> Result<()> {
    let have_in: Vec<&str> = session.inputs().iter().map(|o| o.name()).collect();
    let have_out: Vec<&str> = session.outputs().iter().map(|o| o.name()).collect();
    for name in &expect.inputs {
        if !have_in.contains(&name.as_str()) {
            return Err(Error::ModelFormat(format!(
                "{} has no input tensor `{name}` (its inputs: {})",
                model.display(),
                have_in.join(", ")
            )));
        }
    }
    for name in &have_in {
        if !expect.inputs.iter().any(|e| e == name) {
            return Err(Error::ModelFormat(format!(
                "{} has an unexpected input tensor `{name}` (expected: {})",
                model.display(),
                expect.inputs.join(", ")
            )));
        }
    }
    for name in &expect.outputs {
        if !have_out.contains(&name.as_str()) {
            return Err(Error::ModelFormat(format!(
                "{} has no output tensor `{name}` (its outputs: {})",
                model.display(),
                have_out.join(", ")
            )));
        }
    }
    Ok(())
}
