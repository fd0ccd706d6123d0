//! Shared neural-network building blocks for the Stable Diffusion / CLIP graph builders, written
//! on [`GraphBuilder`]: linear layers (with fused Q/K/V), LayerNorm, GroupNorm, Conv2d, SiLU /
//! GELU / QuickGELU, nearest 2x upsampling and multi-head attention. Their semantics are PyTorch's
//! (`nn.Linear`, `nn.LayerNorm`, `nn.GroupNorm`, `nn.Conv2d`, `F.interpolate(mode="nearest")`,
//! `F.scaled_dot_product_attention`) expressed with ONNX operators (onnx.ai operator spec).
//!
//! Conventions: activations of the graph are of the export dtype `T` (F32 or F16); LayerNorm runs
//! with a float32 stash (`stash_type = 1`) and GroupNorm is computed in float32 (InstanceNorm over
//! groups) and cast back, so fp16 exports keep fp32 statistics. Linear weights (PyTorch `[out, in]`)
//! are stored transposed `[in, out]` as initializers named `<key>.T` so that 3-D activations use a
//! plain `MatMul`; every other initializer keeps its checkpoint key as its name.

use std::borrow::Cow;

use super::onnx::{attr, DType, GraphBuilder, TensorData};
use crate::weights::WeightMap;
use crate::{Error, Result};

/// Where a builder gets its weights from: a checkpoint ([`WeightMap`]) or seeded random values
/// ([`RandomWeights`], for real-size shape checks and benchmarks without a multi-GB file).
pub trait WeightSource {
    /// The values of `key`, which must have `shape` (row-major).
    fn fetch(&self, key: &str, shape: &[usize]) -> Result<Cow<'_, [f32]>>;
    /// Whether `key` exists.
    fn has(&self, key: &str) -> bool;
}

impl WeightSource for WeightMap {
    fn fetch(&self, key: &str, shape: &[usize]) -> Result<Cow<'_, [f32]>> {
        Ok(Cow::Borrowed(&self.expect(key, shape)?.data))
    }
    fn has(&self, key: &str) -> bool {
        self.contains(key)
    }
}

/// A [`WeightSource`] view that also finds `key` without `prefix` (transformers 5 saves
/// `CLIPTextModel` without the `text_model.` prefix that older checkpoints carry).
pub struct OptionalPrefix<'a> {
    pub inner: &'a dyn WeightSource,
    pub prefix: &'a str,
}

impl OptionalPrefix<'_> {
    fn resolve<'k>(&self, key: &'k str) -> &'k str {
        match key.strip_prefix(self.prefix) {
            Some(short) if !self.inner.has(key) && self.inner.has(short) => short,
            _ => key,
        }
    }
}

impl WeightSource for OptionalPrefix<'_> {
    fn fetch(&self, key: &str, shape: &[usize]) -> Result<Cow<'_, [f32]>> {
        self.inner.fetch(self.resolve(key), shape)
    }
    fn has(&self, key: &str) -> bool {
        self.inner.has(self.resolve(key))
    }
}

/// Seeded random weights generated on request: uniform in `[-scale, scale]` (`scale` = `std * sqrt(3)`),
/// with LayerNorm/GroupNorm gains around 1 (keys ending in `norm*.weight`, `ln_*.weight`,
/// `layer_norm*.weight`, `layrnorm.weight`). The stream for a key depends only on the seed and
/// the key, so any subset of a model is reproducible.
#[derive(Debug, Clone)]
pub struct RandomWeights {
    pub seed: u64,
    pub std: f32,
    pub init: RandomInit,
}

/// How large the random weights are.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum RandomInit {
    /// Every tensor uniform with the same `std` (0.02): cheap shape and speed checks; the
    /// networks' outputs depend only weakly on their conditioning.
    #[default]
    Small,
    /// Matrices and convolution kernels (rank >= 2) uniform in +-1/sqrt(fan_in), torch's default
    /// `nn.Linear` / `nn.Conv2d` init (what a diffusers model built from a config holds), fan_in
    /// being the product of all but the first dimension; vectors as `Small`. Signals keep their
    /// scale through the layers, so a prompt changes the images (training tests need that).
    TorchDefault,
}

impl RandomInit {
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "small" => Ok(RandomInit::Small),
            "torch" => Ok(RandomInit::TorchDefault),
            o => Err(crate::Error::InvalidOptions(format!("unknown random init {o:?} (small or torch)"))),
        }
    }
}

impl RandomWeights {
    pub fn new(seed: u64) -> Self {
        Self { seed, std: 0.02, init: RandomInit::Small }
    }

    pub fn with_init(seed: u64, init: RandomInit) -> Self {
        Self { seed, std: 0.02, init }
    }
}

fn fnv1a(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

fn is_norm_gain(key: &str) -> bool {
    let Some(stem) = key.strip_suffix(".weight") else { return false };
    let last = stem.rsplit('.').next().unwrap_or(stem);
    last.contains("norm") || last.starts_with("ln_") || last.contains("layrnorm")
}

impl WeightSource for RandomWeights {
    fn fetch(&self, key: &str, shape: &[usize]) -> Result<Cow<'_, [f32]>> {
        let n: usize = shape.iter().product();
        // SplitMix64 (Steele et al. 2014), two 24-bit uniforms per draw: cheap enough to fill a
        // real-size UNet (860M values) in seconds even in a debug build.
        let mut state = self.seed ^ fnv1a(key);
        let std = match self.init {
            RandomInit::TorchDefault if shape.len() >= 2 && !is_norm_gain(key) => {
                let fan_in: usize = shape[1..].iter().product();
                1.0 / (3.0 * fan_in.max(1) as f32).sqrt()
            }
            _ => self.std,
        };
        let a = std * 3f32.sqrt();
        let base = if is_norm_gain(key) { 1.0 } else { 0.0 };
        let scale = 2.0 * a / (1u32 << 24) as f32;
        let mut out = Vec::with_capacity(n + 1);
        while out.len() < n {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^= z >> 31;
            out.push(base - a + scale * ((z >> 40) as u32) as f32);
            out.push(base - a + scale * (((z >> 8) & 0xff_ffff) as u32) as f32);
        }
        out.truncate(n);
        Ok(Cow::Owned(out))
    }
    fn has(&self, _key: &str) -> bool {
        true
    }
}

/// A graph under construction plus its weight source and export dtype.
pub struct Nn<'a> {
    pub g: GraphBuilder,
    pub w: &'a dyn WeightSource,
    /// Dtype of weights and activations: F32 or F16.
    pub t: DType,
    /// Emit unmasked attention as ONNX Runtime's fused `com.microsoft.MultiHeadAttention`.
    pub fused_attention: bool,
}

impl<'a> Nn<'a> {
    pub fn new(name: &str, w: &'a dyn WeightSource, t: DType) -> Result<Self> {
        if !matches!(t, DType::F32 | DType::F16) {
            return Err(Error::InvalidOptions(format!("export dtype must be F32 or F16, got {t:?}")));
        }
        let mut g = GraphBuilder::new(name);
        g.metadata("promptist.dtype", if t == DType::F16 { "float16" } else { "float32" });
        Ok(Self { g, w, t, fused_attention: false })
    }

    /// A float tensor in the export dtype.
    pub fn float(&self, dims: &[usize], v: &[f32]) -> TensorData {
        TensorData::float_as(dims, v, self.t)
    }

    /// Initializer `key` (checkpoint name) with `shape`, stored in the export dtype.
    pub fn param(&mut self, key: &str, shape: &[usize]) -> Result<String> {
        let v = self.w.fetch(key, shape)?;
        let t = self.float(shape, &v);
        Ok(self.g.initializer(key, t))
    }

    /// `Cast` to `to` (no node when `from == to`).
    pub fn cast(&mut self, x: &str, from: DType, to: DType) -> String {
        if from == to {
            return x.to_string();
        }
        self.g.op("Cast", &[x], vec![attr("to", to.onnx() as i64)])
    }

    /// Several `nn.Linear` layers on the same input fused into one `MatMul` (+ one `Add`) and
    /// split again: `parts` = (key prefix, out features, output scale folded into weight and bias).
    /// All parts have a bias or none does (`bias`).
    pub fn linear_fused(&mut self, x: &str, din: usize, parts: &[(&str, usize, f32)], bias: bool) -> Result<Vec<String>> {
        let total: usize = parts.iter().map(|p| p.1).sum();
        let mut wt = vec![0f32; din * total];
        let mut bt = vec![0f32; total];
        let mut col = 0;
        for (prefix, dout, scale) in parts {
            let w = self.w.fetch(&format!("{prefix}.weight"), &[*dout, din])?;
            for o in 0..*dout {
                for i in 0..din {
                    wt[i * total + col + o] = w[o * din + i] * scale;
                }
            }
            if bias {
                let b = self.w.fetch(&format!("{prefix}.bias"), &[*dout])?;
                for o in 0..*dout {
                    bt[col + o] = b[o] * scale;
                }
            }
            col += dout;
        }
        let name = if parts.len() == 1 {
            format!("{}.weight.T", parts[0].0)
        } else {
            let keys: Vec<&str> = parts.iter().map(|p| p.0.rsplit('.').next().unwrap_or(p.0)).collect();
            let stem = parts[0].0.rsplit_once('.').map(|s| s.0).unwrap_or("");
            format!("{stem}.{}.weight.T", keys.join("+"))
        };
        let wt_t = self.float(&[din, total], &wt);
        let w_name = self.g.initializer(&name, wt_t);
        let mut y = self.g.op("MatMul", &[x, &w_name], vec![]);
        if bias {
            let bname = name.replace(".weight.T", ".bias");
            let bt_t = self.float(&[total], &bt);
            let b_name = self.g.initializer(&bname, bt_t);
            y = self.g.op("Add", &[&y, &b_name], vec![]);
        }
        if parts.len() == 1 {
            return Ok(vec![y]);
        }
        let sizes: Vec<i64> = parts.iter().map(|p| p.1 as i64).collect();
        let split = self.g.const_i64s(&sizes);
        Ok(self.g.op_multi("Split", &[&y, &split], parts.len(), vec![attr("axis", -1i64)]))
    }

    /// `nn.Linear(din, dout)` at `prefix` on the last axis of `x`.
    pub fn linear(&mut self, x: &str, prefix: &str, din: usize, dout: usize, bias: bool) -> Result<String> {
        Ok(self.linear_fused(x, din, &[(prefix, dout, 1.0)], bias)?.remove(0))
    }

    /// `nn.LayerNorm(dim, eps)` at `prefix` over the last axis.
    pub fn layer_norm(&mut self, x: &str, prefix: &str, dim: usize, eps: f64) -> Result<String> {
        let w = self.param(&format!("{prefix}.weight"), &[dim])?;
        let b = self.param(&format!("{prefix}.bias"), &[dim])?;
        Ok(self.g.op("LayerNormalization", &[x, &w, &b], vec![attr("axis", -1i64), attr("epsilon", eps as f32)]))
    }

    /// `nn.GroupNorm(groups, ch, eps)` at `prefix` on an NCHW tensor, statistics in float32.
    pub fn group_norm(&mut self, x: &str, prefix: &str, groups: usize, ch: usize, eps: f64) -> Result<String> {
        if groups == 0 || !ch.is_multiple_of(groups) {
            return Err(Error::ModelFormat(format!("{prefix}: {ch} channels do not split into {groups} groups")));
        }
        let gamma = self.w.fetch(&format!("{prefix}.weight"), &[ch])?.into_owned();
        let beta = self.w.fetch(&format!("{prefix}.bias"), &[ch])?.into_owned();
        let x32 = self.cast(x, self.t, DType::F32);
        let shape = self.g.op("Shape", &[x], vec![]);
        let grouped = self.g.const_i64s(&[0, groups as i64, -1]);
        let xg = self.g.op("Reshape", &[&x32, &grouped], vec![]);
        let ones = self.g.constant(TensorData::f32(&[groups], vec![1.0; groups]));
        let zeros = self.g.constant(TensorData::f32(&[groups], vec![0.0; groups]));
        let n = self.g.op("InstanceNormalization", &[&xg, &ones, &zeros], vec![attr("epsilon", eps as f32)]);
        let n = self.g.op("Reshape", &[&n, &shape], vec![]);
        let n = self.cast(&n, DType::F32, self.t);
        let gw = self.float(&[ch, 1, 1], &gamma);
        let gw = self.g.initializer(&format!("{prefix}.weight"), gw);
        let gb = self.float(&[ch, 1, 1], &beta);
        let gb = self.g.initializer(&format!("{prefix}.bias"), gb);
        let y = self.g.op("Mul", &[&n, &gw], vec![]);
        Ok(self.g.op("Add", &[&y, &gb], vec![]))
    }

    /// `nn.Conv2d(cin, cout, k, stride, padding=pad)` at `prefix` (bias when `bias`).
    #[allow(clippy::too_many_arguments)]
    pub fn conv2d(&mut self, x: &str, prefix: &str, cin: usize, cout: usize, k: usize, stride: usize, pad: usize, bias: bool) -> Result<String> {
        let w = self.param(&format!("{prefix}.weight"), &[cout, cin, k, k])?;
        let mut inputs = vec![x.to_string(), w];
        if bias {
            inputs.push(self.param(&format!("{prefix}.bias"), &[cout])?);
        }
        let refs: Vec<&str> = inputs.iter().map(|s| s.as_str()).collect();
        let p = pad as i64;
        Ok(self.g.op(
            "Conv",
            &refs,
            vec![
                attr("kernel_shape", vec![k as i64, k as i64]),
                attr("strides", vec![stride as i64, stride as i64]),
                attr("pads", vec![p, p, p, p]),
            ],
        ))
    }

    /// `x * sigmoid(x)` (SiLU / Swish).
    pub fn silu(&mut self, x: &str) -> String {
        let s = self.g.op("Sigmoid", &[x], vec![]);
        self.g.op("Mul", &[x, &s], vec![])
    }

    /// `x * sigmoid(1.702 x)` (CLIP's QuickGELU).
    pub fn quick_gelu(&mut self, x: &str) -> String {
        let c = self.g.const_scalar(1.702, self.t);
        let xs = self.g.op("Mul", &[x, &c], vec![]);
        let s = self.g.op("Sigmoid", &[&xs], vec![]);
        self.g.op("Mul", &[x, &s], vec![])
    }

    /// Exact (erf) GELU.
    pub fn gelu(&mut self, x: &str) -> String {
        self.g.op("Gelu", &[x], vec![attr("approximate", "none")])
    }

    /// Nearest-neighbour upsampling of NCHW `x` to the spatial size of `like` (2x in a UNet/VAE),
    /// i.e. `F.interpolate(x, size=like.shape[2:], mode="nearest")`.
    pub fn upsample_nearest_like(&mut self, x: &str, like: Option<&str>) -> String {
        let empty = String::new();
        match like {
            Some(like) => {
                let xs = self.g.op("Shape", &[x], vec![]);
                let ls = self.g.op("Shape", &[like], vec![]);
                let (s0, s2, s4) = (self.g.const_i64s(&[0]), self.g.const_i64s(&[2]), self.g.const_i64s(&[4]));
                let bc = self.g.op("Slice", &[&xs, &s0, &s2], vec![]);
                let hw = self.g.op("Slice", &[&ls, &s2, &s4], vec![]);
                let sizes = self.g.op("Concat", &[&bc, &hw], vec![attr("axis", 0i64)]);
                self.g.op("Resize", &[x, &empty, &empty, &sizes], resize_attrs())
            }
            None => {
                let scales = self.g.constant(TensorData::f32(&[4], vec![1.0, 1.0, 2.0, 2.0]));
                self.g.op("Resize", &[x, &empty, &scales], resize_attrs())
            }
        }
    }

    /// Multi-head scaled dot-product attention. `q` [B, Sq, H*D], `k`/`v` [B, Sk, H*D] (the
    /// 1/sqrt(D) scale must already be folded into `q`); `bias` an optional additive mask
    /// broadcastable to [B, H, Sq, Sk]. Returns [B, Sq, H*D].
    /// With [`Nn::fused_attention`] and no mask this is one `com.microsoft.MultiHeadAttention` node
    /// (ONNX Runtime contrib op, CPU and CUDA; `scale = 1` since the scale is in `q`), otherwise
    /// standard ONNX operators.
    pub fn attention(&mut self, q: &str, k: &str, v: &str, heads: usize, head_dim: usize, bias: Option<&str>) -> String {
        if self.fused_attention && bias.is_none() {
            self.g.use_opset("com.microsoft", 1);
            let out = self.g.fresh("MultiHeadAttention");
            self.g.node_named(
                "MultiHeadAttention",
                &[q, k, v],
                &[&out],
                vec![attr("num_heads", heads as i64), attr("scale", 1.0f32)],
                "com.microsoft",
            );
            return out;
        }
        let split = self.g.const_i64s(&[0, 0, heads as i64, head_dim as i64]);
        let qh = self.g.op("Reshape", &[q, &split], vec![]);
        let qh = self.g.op("Transpose", &[&qh], vec![attr("perm", vec![0i64, 2, 1, 3])]);
        let kh = self.g.op("Reshape", &[k, &split], vec![]);
        let kh = self.g.op("Transpose", &[&kh], vec![attr("perm", vec![0i64, 2, 3, 1])]);
        let vh = self.g.op("Reshape", &[v, &split], vec![]);
        let vh = self.g.op("Transpose", &[&vh], vec![attr("perm", vec![0i64, 2, 1, 3])]);
        let mut s = self.g.op("MatMul", &[&qh, &kh], vec![]);
        if let Some(b) = bias {
            s = self.g.op("Add", &[&s, b], vec![]);
        }
        let p = self.g.op("Softmax", &[&s], vec![attr("axis", -1i64)]);
        let o = self.g.op("MatMul", &[&p, &vh], vec![]);
        let o = self.g.op("Transpose", &[&o], vec![attr("perm", vec![0i64, 2, 1, 3])]);
        let merge = self.g.const_i64s(&[0, 0, (heads * head_dim) as i64]);
        self.g.op("Reshape", &[&o, &merge], vec![])
    }

    /// NCHW -> [B, H*W, C].
    pub fn nchw_to_tokens(&mut self, x: &str, ch: usize) -> String {
        let s = self.g.const_i64s(&[0, ch as i64, -1]);
        let r = self.g.op("Reshape", &[x, &s], vec![]);
        self.g.op("Transpose", &[&r], vec![attr("perm", vec![0i64, 2, 1])])
    }

    /// [B, H*W, ch] -> [B, ch, H, W] with the batch and spatial size of `like` (an NCHW tensor).
    pub fn tokens_to_nchw(&mut self, x: &str, like: &str, ch: usize) -> String {
        let t = self.g.op("Transpose", &[x], vec![attr("perm", vec![0i64, 2, 1])]);
        let ls = self.g.op("Shape", &[like], vec![]);
        let (s0, s1, s2, s4) = (self.g.const_i64s(&[0]), self.g.const_i64s(&[1]), self.g.const_i64s(&[2]), self.g.const_i64s(&[4]));
        let b = self.g.op("Slice", &[&ls, &s0, &s1], vec![]);
        let hw = self.g.op("Slice", &[&ls, &s2, &s4], vec![]);
        let c = self.g.const_i64s(&[ch as i64]);
        let shape = self.g.op("Concat", &[&b, &c, &hw], vec![attr("axis", 0i64)]);
        self.g.op("Reshape", &[&t, &shape], vec![])
    }
}

fn resize_attrs() -> Vec<super::onnx::Attr> {
    vec![
        attr("mode", "nearest"),
        attr("coordinate_transformation_mode", "asymmetric"),
        attr("nearest_mode", "floor"),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_weights_are_reproducible_per_key() {
        let r = RandomWeights::new(3);
        let a = r.fetch("a.weight", &[4, 5]).unwrap().into_owned();
        let b = r.fetch("a.weight", &[4, 5]).unwrap().into_owned();
        let c = r.fetch("b.weight", &[4, 5]).unwrap().into_owned();
        assert_eq!(a, b);
        assert_ne!(a, c);
        let g = r.fetch("x.norm1.weight", &[8]).unwrap();
        assert!(g.iter().all(|v| (v - 1.0).abs() < 0.05));
        assert!(is_norm_gain("text_model.final_layer_norm.weight"));
        assert!(is_norm_gain("vision_model.pre_layrnorm.weight"));
        assert!(!is_norm_gain("conv_in.weight"));
    }

    #[test]
    fn torch_default_init_scales_kernels_by_fan_in() {
        let r = RandomWeights::with_init(3, RandomInit::TorchDefault);
        // A conv kernel [out, in, kh, kw]: fan_in = 32 * 3 * 3, uniform in +-1/sqrt(288).
        let k = r.fetch("conv.weight", &[16, 32, 3, 3]).unwrap();
        let bound = 1.0 / (288f32).sqrt();
        let max = k.iter().fold(0f32, |m, v| m.max(v.abs()));
        assert!(max <= bound * 1.0001 && max > 0.9 * bound, "max {max} vs bound {bound}");
        // Vectors and norm gains keep the small rule.
        let b = r.fetch("conv.bias", &[16]).unwrap();
        assert!(b.iter().all(|v| v.abs() <= 0.02 * 3f32.sqrt() * 1.0001));
        assert!(r.fetch("x.norm1.weight", &[8]).unwrap().iter().all(|v| (v - 1.0).abs() < 0.05));
        assert_eq!(RandomInit::parse("torch").unwrap(), RandomInit::TorchDefault);
        assert!(RandomInit::parse("big").is_err());
    }
}
