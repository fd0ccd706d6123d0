//! The custom ONNX Runtime operator `ai.promptist.cpu:PackedMatMul` (through ort's operator API):
//! one float input `A [..., K]`, one output `[..., N]`, attribute `weight` naming a [`PackedMatrix`]
//! that the graph rewrite packed (bias folded in). It runs on the session's intra-op thread pool.

use std::collections::HashMap;
use std::sync::Arc;

use ort::operator::{ComputeContext, Kernel, KernelContext, Operator, OperatorDomain, OperatorInput, OperatorOutput};
use ort::value::TensorElementType;

use super::kernel;
use super::pack::PackedMatrix;

/// The custom-op domain of the rewritten graph.
pub const DOMAIN: &str = "ai.promptist.cpu";
/// The operator's name in that domain.
pub const OP: &str = "PackedMatMul";
/// The node attribute that names the packed weight.
pub const WEIGHT_ATTR: &str = "weight";

/// The operator; holds the packed weights of one session by name.
pub struct PackedMatMul {
    weights: Arc<HashMap<String, Arc<PackedMatrix>>>,
}

/// The operator domain to register with a session builder.
pub fn domain(weights: HashMap<String, Arc<PackedMatrix>>) -> ort::Result<OperatorDomain> {
    OperatorDomain::new(DOMAIN)?.add(PackedMatMul { weights: Arc::new(weights) })
}

impl Operator for PackedMatMul {
    type Kernel<'attr> = PackedMatMulKernel;

    fn name(&self) -> &str {
        OP
    }

    fn inputs(&self) -> impl IntoIterator<Item = OperatorInput> {
        [OperatorInput::required(TensorElementType::Float32)]
    }

    fn outputs(&self) -> impl IntoIterator<Item = OperatorOutput> {
        [OperatorOutput::required(TensorElementType::Float32)]
    }

    fn create_kernel<'attr>(&self, kctx: &KernelContext<'attr>) -> ort::Result<PackedMatMulKernel> {
        let key: String = kctx
            .get(WEIGHT_ATTR)
            .ok_or_else(|| ort::Error::new(format!("{OP} node lacks its `{WEIGHT_ATTR}` attribute")))?;
        let w = self
            .weights
            .get(&key)
            .cloned()
            .ok_or_else(|| ort::Error::new(format!("{OP}: no packed weight named `{key}`")))?;
        Ok(PackedMatMulKernel { w })
    }
}

/// One node's kernel.
pub struct PackedMatMulKernel {
    w: Arc<PackedMatrix>,
}

impl Kernel for PackedMatMulKernel {
    fn compute(&mut self, ctx: &ComputeContext) -> ort::Result<()> {
        // ONNX Runtime calls this through an `extern` frame that a panic must not cross.
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.run(ctx)))
            .unwrap_or_else(|_| Err(ort::Error::new(format!("{OP}: the kernel panicked"))))
    }
}

impl PackedMatMulKernel {
    fn run(&self, ctx: &ComputeContext) -> ort::Result<()> {
        let a = ctx.input(0)?.ok_or_else(|| ort::Error::new(format!("{OP}: missing input")))?;
        let (shape, x) = a.try_extract_tensor::<f32>()?;
        let k = *shape.last().ok_or_else(|| ort::Error::new(format!("{OP}: a scalar input")))?;
        if k != self.w.k() as i64 {
            return Err(ort::Error::new(format!("{OP}: input's last dimension is {k}, the weight has K = {}", self.w.k())));
        }
        let m = x.len() / self.w.k();
        let mut out_shape: Vec<i64> = shape.to_vec();
        if let Some(last) = out_shape.last_mut() {
            *last = self.w.n() as i64;
        }
        let mut out = ctx.output(0, out_shape)?.ok_or_else(|| ort::Error::new(format!("{OP}: missing output")))?;
        let (_, y) = out.try_extract_tensor_mut::<f32>()?;
        let par = |total: usize, f: &(dyn Fn(usize) + Sync + Send)| -> crate::Result<()> {
            ctx.par_for(total, 0, f).map_err(|e| crate::Error::Inference(e.to_string()))
        };
        kernel::matmul(&self.w, x, m, y, &par).map_err(|e| ort::Error::new(e.to_string()))
    }
}
