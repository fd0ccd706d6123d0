//! Tensor data for ONNX initializers and constants (f32 / f16 / i64), and the element types the
//! graph builder declares; the layout follows onnx.proto `TensorProto` (little-endian `raw_data`).

use half::f16;
use onnx_protobuf::tensor_proto::DataType;

/// Element type of a graph value (the subset of ONNX `TensorProto.DataType` the builders use).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DType {
    F32,
    F16,
    I64,
    I32,
    Bool,
}

impl DType {
    /// The ONNX `TensorProto.DataType` number.
    pub fn onnx(self) -> i32 {
        match self {
            DType::F32 => DataType::FLOAT as i32,
            DType::F16 => DataType::FLOAT16 as i32,
            DType::I64 => DataType::INT64 as i32,
            DType::I32 => DataType::INT32 as i32,
            DType::Bool => DataType::BOOL as i32,
        }
    }
}

/// The values of a tensor, in row-major order.
#[derive(Debug, Clone, PartialEq)]
pub enum TensorValues {
    F32(Vec<f32>),
    F16(Vec<f16>),
    I64(Vec<i64>),
}

/// A dense tensor: shape plus values. Used for initializers and `Constant` nodes.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorData {
    pub dims: Vec<i64>,
    pub values: TensorValues,
}

impl TensorData {
    pub fn f32(dims: &[usize], values: Vec<f32>) -> Self {
        Self { dims: dims.iter().map(|&d| d as i64).collect(), values: TensorValues::F32(values) }
    }
    pub fn f16(dims: &[usize], values: Vec<f16>) -> Self {
        Self { dims: dims.iter().map(|&d| d as i64).collect(), values: TensorValues::F16(values) }
    }
    pub fn i64(dims: &[usize], values: Vec<i64>) -> Self {
        Self { dims: dims.iter().map(|&d| d as i64).collect(), values: TensorValues::I64(values) }
    }
    /// A float tensor stored as `dtype` (F32 or F16; F16 rounds to nearest). Other dtypes keep f32.
    pub fn float_as(dims: &[usize], values: &[f32], dtype: DType) -> Self {
        match dtype {
            DType::F16 => Self::f16(dims, values.iter().map(|&v| f16::from_f32(v)).collect()),
            _ => Self::f32(dims, values.to_vec()),
        }
    }
    /// A rank-0 float scalar of `dtype` (F32 or F16).
    pub fn scalar_as(value: f32, dtype: DType) -> Self {
        Self::float_as(&[], &[value], dtype)
    }

    pub fn dtype(&self) -> DType {
        match self.values {
            TensorValues::F32(_) => DType::F32,
            TensorValues::F16(_) => DType::F16,
            TensorValues::I64(_) => DType::I64,
        }
    }
    pub fn len(&self) -> usize {
        match &self.values {
            TensorValues::F32(v) => v.len(),
            TensorValues::F16(v) => v.len(),
            TensorValues::I64(v) => v.len(),
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Number of elements the dims describe.
    pub fn dims_len(&self) -> usize {
        self.dims.iter().map(|&d| d.max(0) as usize).product()
    }
    /// Size of the little-endian byte encoding.
    pub fn byte_len(&self) -> usize {
        match &self.values {
            TensorValues::F32(v) => v.len() * 4,
            TensorValues::F16(v) => v.len() * 2,
            TensorValues::I64(v) => v.len() * 8,
        }
    }
    /// The little-endian bytes (ONNX `raw_data` / external data layout).
    pub fn to_le_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.byte_len());
        match &self.values {
            TensorValues::F32(v) => v.iter().for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
            TensorValues::F16(v) => v.iter().for_each(|x| out.extend_from_slice(&x.to_bits().to_le_bytes())),
            TensorValues::I64(v) => v.iter().for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        }
        out
    }
}
