//! The KV cache tensors of [`super::OnnxGpt2`] in the graph's own element type (float32 or
//! float16, read from the session's input/output metadata, as optimum exports either): each tensor
//! is ONNX Runtime's `present` output value or a host buffer that a row gather wrote, never
//! converted between steps. Row copies and gathers are plain element copies (the transformers
//! `Cache.reorder_cache` / `index_select` semantics), so they work the same for both types.

use std::fmt::Debug;

use half::f16;
use ort::session::SessionInputValue;
use ort::value::{DynValue, PrimitiveTensorElementType, Tensor, TensorElementType, TensorRef};

use crate::{Error, Result};

/// A floating-point element type a GPT-2 graph may use for its KV cache or its logits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FloatType {
    F32,
    F16,
}

impl FloatType {
    /// The type of the graph tensor `name` (`what` says which kind, for the message), or a
    /// `ModelFormat` error naming the tensor and its type when it is neither float32 nor float16.
    pub fn of_tensor(name: &str, ty: Option<TensorElementType>) -> Result<Self> {
        match ty {
            Some(TensorElementType::Float32) => Ok(FloatType::F32),
            Some(TensorElementType::Float16) => Ok(FloatType::F16),
            Some(other) => Err(Error::ModelFormat(format!(
                "GPT-2 graph tensor `{name}` has element type {other:?}; supported: float32, float16"
            ))),
            None => Err(Error::ModelFormat(format!("GPT-2 graph value `{name}` is not a tensor"))),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            FloatType::F32 => "float32",
            FloatType::F16 => "float16",
        }
    }
}

/// An element type the decoder handles on the host: ONNX Runtime's tensor type plus the
/// conversion of logits to f32.
pub trait GraphFloat: PrimitiveTensorElementType + Copy + Debug + 'static {
    /// Append `src` to `dst` as f32 (for f32: a plain slice copy).
    fn extend_f32(dst: &mut Vec<f32>, src: &[Self]);
}

impl GraphFloat for f32 {
    #[inline]
    fn extend_f32(dst: &mut Vec<f32>, src: &[f32]) {
        dst.extend_from_slice(src);
    }
}

impl GraphFloat for f16 {
    #[inline]
    fn extend_f32(dst: &mut Vec<f32>, src: &[f16]) {
        dst.extend(src.iter().map(|x| x.to_f32()));
    }
}

/// One cache tensor `[rows, heads, past, head_dim]`.
enum Kv<T> {
    Ort(DynValue),
    Host(Vec<T>),
    Empty,
}

/// All the cache tensors of one element type (index `2 * layer` key, `+ 1` value) and the
/// spare host buffers that gathers reuse.
pub struct Layers<T> {
    cache: Vec<Kv<T>>,
    spare: Vec<Vec<T>>,
}

impl<T: GraphFloat> Layers<T> {
    fn new(n: usize) -> Self {
        Layers { cache: (0..n).map(|_| Kv::Empty).collect(), spare: (0..n).map(|_| Vec::new()).collect() }
    }

    fn clear(&mut self) {
        for kv in self.cache.iter_mut() {
            *kv = Kv::Empty;
        }
    }

    fn input(&self, i: usize, shape: [usize; 4]) -> Result<SessionInputValue<'_>> {
        Ok(match &self.cache[i] {
            Kv::Ort(v) => v.into(),
            Kv::Host(buf) => TensorRef::from_array_view((shape, buf.as_slice()))?.into(),
            Kv::Empty => Tensor::<T>::from_array(([shape[0], shape[1], 0, shape[3]], Vec::<T>::new()))?.into(),
        })
    }

    fn store(&mut self, i: usize, name: &str, v: DynValue, want: [usize; 4]) -> Result<()> {
        {
            let (shape, _) = v.try_extract_tensor::<T>()?;
            if shape.len() != 4 || shape.iter().zip(want).any(|(&s, w)| s != w as i64) {
                return Err(Error::ModelFormat(format!("`{name}` has shape {shape:?}, expected {want:?}")));
            }
        }
        if let Kv::Host(buf) = std::mem::replace(&mut self.cache[i], Kv::Ort(v)) {
            self.spare[i] = buf;
        }
        Ok(())
    }

    fn copy_rows(&mut self, copies: &[(usize, usize)], row: usize) -> Result<()> {
        for kv in self.cache.iter_mut() {
            let data: &mut [T] = match kv {
                Kv::Ort(v) => v.try_extract_tensor_mut::<T>()?.1,
                Kv::Host(b) => b.as_mut_slice(),
                Kv::Empty => return Err(Error::Internal("select_rows before prefill".into())),
            };
            for &(from, to) in copies {
                data.copy_within(from * row..(from + 1) * row, to * row);
            }
        }
        Ok(())
    }

    fn gather(&mut self, src: &[usize], row: usize) -> Result<()> {
        for i in 0..self.cache.len() {
            let mut out = std::mem::take(&mut self.spare[i]);
            out.clear();
            // Fallible: a cache this large is an error for the caller, not an abort of the host.
            try_reserve(&mut out, src.len() * row)?;
            {
                let data: &[T] = match &self.cache[i] {
                    Kv::Ort(v) => v.try_extract_tensor::<T>()?.1,
                    Kv::Host(b) => b.as_slice(),
                    Kv::Empty => return Err(Error::Internal("select_rows before prefill".into())),
                };
                for &s in src {
                    out.extend_from_slice(&data[s * row..(s + 1) * row]);
                }
            }
            if let Kv::Host(old) = std::mem::replace(&mut self.cache[i], Kv::Host(out)) {
                self.spare[i] = old;
            }
        }
        Ok(())
    }
}

/// The cache of a graph whose past/present tensors are all float32 or all float16.
pub enum KvCache {
    F32(Layers<f32>),
    F16(Layers<f16>),
}

macro_rules! each {
    ($self:expr, $l:ident => $e:expr) => {
        match $self {
            KvCache::F32($l) => $e,
            KvCache::F16($l) => $e,
        }
    };
}

impl KvCache {
    /// `n` empty tensors of type `ty`.
    pub fn new(ty: FloatType, n: usize) -> Self {
        match ty {
            FloatType::F32 => KvCache::F32(Layers::new(n)),
            FloatType::F16 => KvCache::F16(Layers::new(n)),
        }
    }

    pub fn element_type(&self) -> FloatType {
        match self {
            KvCache::F32(_) => FloatType::F32,
            KvCache::F16(_) => FloatType::F16,
        }
    }

    /// Drop every tensor (the next run is a prefill with past length 0).
    pub fn clear(&mut self) {
        each!(self, l => l.clear())
    }

    /// Tensor `i` as a graph input of `shape` `[rows, heads, past, head_dim]` (an empty
    /// `[rows, heads, 0, head_dim]` tensor before the first run).
    pub fn input(&self, i: usize, shape: [usize; 4]) -> Result<SessionInputValue<'_>> {
        each!(self, l => l.input(i, shape))
    }

    /// Keep the graph's output `name` as tensor `i` after checking its type and shape.
    pub fn store(&mut self, i: usize, name: &str, v: DynValue, want: [usize; 4]) -> Result<()> {
        each!(self, l => l.store(i, name, v, want))
    }

    /// In every tensor, copy row `from` over row `to` for each pair (`row` elements per row).
    pub fn copy_rows(&mut self, copies: &[(usize, usize)], row: usize) -> Result<()> {
        each!(self, l => l.copy_rows(copies, row))
    }

    /// Replace every tensor by its rows `src` (in that order) in a contiguous host buffer.
    pub fn gather(&mut self, src: &[usize], row: usize) -> Result<()> {
        each!(self, l => l.gather(src, row))
    }
}

/// Reserve room for `n` more values, or fail with an error naming the size (never an abort).
pub(crate) fn try_reserve<T>(v: &mut Vec<T>, n: usize) -> Result<()> {
    v.try_reserve(n).map_err(|_| {
        Error::Inference(format!("cannot allocate {} bytes for the decoder's buffers: the request is too large for this machine", n.saturating_mul(std::mem::size_of::<T>())))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_impossible_buffer_is_an_error_not_an_abort() {
        let e = try_reserve(&mut Vec::<f32>::new(), usize::MAX / 8).unwrap_err();
        assert_eq!(e.code(), crate::Code::Inference);
        assert!(e.to_string().contains("too large for this machine"), "{e}");
        let mut v = vec![1.0f32];
        try_reserve(&mut v, 16).unwrap();
        assert!(v.capacity() >= 17);
    }

    #[test]
    fn element_types() {
        assert_eq!(FloatType::of_tensor("x", Some(TensorElementType::Float32)).unwrap(), FloatType::F32);
        assert_eq!(FloatType::of_tensor("x", Some(TensorElementType::Float16)).unwrap(), FloatType::F16);
        let e = FloatType::of_tensor("past_key_values.0.key", Some(TensorElementType::Bfloat16)).unwrap_err();
        assert!(matches!(&e, Error::ModelFormat(m) if m.contains("past_key_values.0.key") && m.contains("Bfloat16")), "{e}");
        let e = FloatType::of_tensor("logits", Some(TensorElementType::Float64)).unwrap_err();
        assert!(matches!(&e, Error::ModelFormat(m) if m.contains("`logits`") && m.contains("Float64")), "{e}");
        assert!(matches!(FloatType::of_tensor("logits", None), Err(Error::ModelFormat(_))));
    }

    #[test]
    fn f16_to_f32() {
        let src = [f16::from_f32(1.5), f16::from_f32(-0.25), f16::MAX];
        let mut dst = vec![7.0];
        f16::extend_f32(&mut dst, &src);
        assert_eq!(dst, vec![7.0, 1.5, -0.25, 65504.0]);
    }
}
