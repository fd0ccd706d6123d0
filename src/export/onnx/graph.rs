//! A small ONNX graph builder: typed inputs/outputs with symbolic dims, nodes with attributes,
//! initializers kept as [`TensorData`] until [`crate::export::onnx::save_model`] decides which go
//! to external data. Node/attribute semantics are the ONNX operator specification (onnx.ai).

use onnx_protobuf::attribute_proto::AttributeType;
use onnx_protobuf::tensor_shape_proto::{dimension, Dimension};
use onnx_protobuf::type_proto;
use onnx_protobuf::{
    AttributeProto, GraphProto, NodeProto, OperatorSetIdProto, StringStringEntryProto, TensorShapeProto, TypeProto,
    ValueInfoProto,
};

use super::tensor::{DType, TensorData};

/// Default opset of the standard (`ai.onnx`) domain: 20 has `Gelu(approximate="tanh")` and
/// `LayerNormalization` (17); ONNX Runtime 1.17+ implements both.
pub const DEFAULT_OPSET: i64 = 20;
/// IR version that goes with opset 20 (onnx `helper.VERSION_TABLE`: onnx 1.15 = IR 9, opset 20).
pub const DEFAULT_IR_VERSION: i64 = 9;

/// One dimension of a declared input/output: a fixed size or a named symbolic size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dim {
    Fixed(i64),
    Sym(String),
}

impl From<i64> for Dim {
    fn from(v: i64) -> Self {
        Dim::Fixed(v)
    }
}
impl From<&str> for Dim {
    fn from(v: &str) -> Self {
        Dim::Sym(v.to_string())
    }
}

/// A node attribute value.
#[derive(Debug, Clone, PartialEq)]
pub enum AttrValue {
    Int(i64),
    Float(f32),
    Ints(Vec<i64>),
    Floats(Vec<f32>),
    Str(String),
    Tensor(TensorData),
}

/// A named attribute; build with [`attr`], e.g. `attr("axis", -1i64)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Attr {
    pub name: String,
    pub value: AttrValue,
}

/// Shorthand for an attribute: `attr("perm", vec![0, 2, 1, 3])`, `attr("approximate", "tanh")`.
pub fn attr(name: &str, value: impl Into<AttrValue>) -> Attr {
    Attr { name: name.to_string(), value: value.into() }
}

impl From<i64> for AttrValue {
    fn from(v: i64) -> Self {
        AttrValue::Int(v)
    }
}
impl From<f32> for AttrValue {
    fn from(v: f32) -> Self {
        AttrValue::Float(v)
    }
}
impl From<Vec<i64>> for AttrValue {
    fn from(v: Vec<i64>) -> Self {
        AttrValue::Ints(v)
    }
}
impl From<Vec<f32>> for AttrValue {
    fn from(v: Vec<f32>) -> Self {
        AttrValue::Floats(v)
    }
}
impl From<&str> for AttrValue {
    fn from(v: &str) -> Self {
        AttrValue::Str(v.to_string())
    }
}
impl From<TensorData> for AttrValue {
    fn from(v: TensorData) -> Self {
        AttrValue::Tensor(v)
    }
}

/// A finished model: the graph structure plus initializers not yet serialized.
#[derive(Debug, Clone)]
pub struct Model {
    pub graph: GraphProto,
    pub initializers: Vec<(String, TensorData)>,
    /// (domain, version) pairs; "" is the standard domain.
    pub opsets: Vec<(String, i64)>,
    pub ir_version: i64,
    pub producer: String,
    pub metadata: Vec<(String, String)>,
}

/// Builds one ONNX graph. Value names are strings; methods that create values return their name.
///
/// ```ignore
/// let mut g = GraphBuilder::new("tiny");
/// let x = g.input("x", DType::F32, &["batch".into(), 4.into()]);
/// let w = g.initializer("w", TensorData::f32(&[4, 2], vec![0.0; 8]));
/// let y = g.op("MatMul", &[&x, &w], vec![]);
/// g.output(&y, "y", DType::F32, &["batch".into(), 2.into()]);
/// let model = g.finish();
/// ```
#[derive(Debug)]
pub struct GraphBuilder {
    graph: GraphProto,
    initializers: Vec<(String, TensorData)>,
    opsets: Vec<(String, i64)>,
    counter: usize,
    metadata: Vec<(String, String)>,
}

impl GraphBuilder {
    /// A new graph using the standard domain at [`DEFAULT_OPSET`].
    pub fn new(name: &str) -> Self {
        let graph = GraphProto { name: name.to_string(), ..Default::default() };
        Self {
            graph,
            initializers: Vec::new(),
            opsets: vec![(String::new(), DEFAULT_OPSET)],
            counter: 0,
            metadata: Vec::new(),
        }
    }

    /// Declare (or re-declare) an operator-set import, e.g. `("com.microsoft", 1)` for ORT contrib ops.
    pub fn use_opset(&mut self, domain: &str, version: i64) {
        if let Some(o) = self.opsets.iter_mut().find(|(d, _)| d == domain) {
            o.1 = version;
        } else {
            self.opsets.push((domain.to_string(), version));
        }
    }

    /// Attach a `metadata_props` entry to the model.
    pub fn metadata(&mut self, key: &str, value: &str) {
        self.metadata.push((key.to_string(), value.to_string()));
    }

    /// A fresh unique value name with the given prefix.
    pub fn fresh(&mut self, prefix: &str) -> String {
        self.counter += 1;
        format!("{prefix}_{}", self.counter)
    }

    /// Declare a graph input; returns its name.
    pub fn input(&mut self, name: &str, dtype: DType, dims: &[Dim]) -> String {
        self.graph.input.push(value_info(name, dtype, dims));
        name.to_string()
    }

    /// Declare `value` as a graph output called `name` (an `Identity` is added when the names differ).
    pub fn output(&mut self, value: &str, name: &str, dtype: DType, dims: &[Dim]) {
        if value != name {
            self.node_named("Identity", &[value], &[name], vec![], "");
        }
        self.graph.output.push(value_info(name, dtype, dims));
    }

    /// Add a named initializer (a weight); returns its name.
    pub fn initializer(&mut self, name: &str, data: TensorData) -> String {
        self.initializers.push((name.to_string(), data));
        name.to_string()
    }

    /// A small constant (as an initializer with a generated name); returns its name.
    pub fn constant(&mut self, data: TensorData) -> String {
        let name = self.fresh("const");
        self.initializer(&name, data)
    }
    /// A 1-D int64 constant.
    pub fn const_i64s(&mut self, values: &[i64]) -> String {
        self.constant(TensorData::i64(&[values.len()], values.to_vec()))
    }
    /// A rank-0 int64 constant.
    pub fn const_i64(&mut self, value: i64) -> String {
        self.constant(TensorData::i64(&[], vec![value]))
    }
    /// A rank-0 float constant stored as `dtype` (F32 or F16).
    pub fn const_scalar(&mut self, value: f32, dtype: DType) -> String {
        self.constant(TensorData::scalar_as(value, dtype))
    }

    /// Add a standard-domain node with one output; returns the output's generated name.
    pub fn op(&mut self, op_type: &str, inputs: &[&str], attrs: Vec<Attr>) -> String {
        let out = self.fresh(op_type);
        self.node_named(op_type, inputs, &[&out], attrs, "");
        out
    }

    /// Add a standard-domain node with `n_outputs` outputs; returns their generated names.
    pub fn op_multi(&mut self, op_type: &str, inputs: &[&str], n_outputs: usize, attrs: Vec<Attr>) -> Vec<String> {
        let outs: Vec<String> = (0..n_outputs).map(|_| self.fresh(op_type)).collect();
        let refs: Vec<&str> = outs.iter().map(|s| s.as_str()).collect();
        self.node_named(op_type, inputs, &refs, attrs, "");
        outs
    }

    /// Add a node with explicit output names and domain ("" = standard). An empty input name
    /// marks an omitted optional input.
    pub fn node_named(&mut self, op_type: &str, inputs: &[&str], outputs: &[&str], attrs: Vec<Attr>, domain: &str) {
        let name = self.fresh(&format!("n_{op_type}"));
        let node = NodeProto {
            op_type: op_type.to_string(),
            name,
            domain: domain.to_string(),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: outputs.iter().map(|s| s.to_string()).collect(),
            attribute: attrs.into_iter().map(attribute_proto).collect(),
            ..Default::default()
        };
        self.graph.node.push(node);
    }

    /// Finish the graph into a [`Model`] (opsets, IR version, producer).
    pub fn finish(self) -> Model {
        Model {
            graph: self.graph,
            initializers: self.initializers,
            opsets: self.opsets,
            ir_version: DEFAULT_IR_VERSION,
            producer: format!("promptist {}", crate::VERSION),
            metadata: self.metadata,
        }
    }
}

/// A `ValueInfoProto` for a tensor of `dtype` with the given dims.
pub fn value_info(name: &str, dtype: DType, dims: &[Dim]) -> ValueInfoProto {
    let shape = TensorShapeProto {
        dim: dims
            .iter()
            .map(|d| Dimension {
                value: Some(match d {
                    Dim::Fixed(v) => dimension::Value::DimValue(*v),
                    Dim::Sym(s) => dimension::Value::DimParam(s.clone()),
                }),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    };
    let tensor = type_proto::Tensor { elem_type: dtype.onnx(), shape: Some(shape).into(), ..Default::default() };
    ValueInfoProto {
        name: name.to_string(),
        type_: Some(TypeProto { value: Some(type_proto::Value::TensorType(tensor)), ..Default::default() }).into(),
        ..Default::default()
    }
}

fn attribute_proto(a: Attr) -> AttributeProto {
    let mut p = AttributeProto { name: a.name, ..Default::default() };
    match a.value {
        AttrValue::Int(v) => {
            p.type_ = AttributeType::INT.into();
            p.i = v;
        }
        AttrValue::Float(v) => {
            p.type_ = AttributeType::FLOAT.into();
            p.f = v;
        }
        AttrValue::Ints(v) => {
            p.type_ = AttributeType::INTS.into();
            p.ints = v;
        }
        AttrValue::Floats(v) => {
            p.type_ = AttributeType::FLOATS.into();
            p.floats = v;
        }
        AttrValue::Str(v) => {
            p.type_ = AttributeType::STRING.into();
            p.s = v.into_bytes();
        }
        AttrValue::Tensor(t) => {
            p.type_ = AttributeType::TENSOR.into();
            p.t = Some(super::save::inline_tensor("", &t)).into();
        }
    }
    p
}

pub(crate) fn string_entry(key: &str, value: &str) -> StringStringEntryProto {
    StringStringEntryProto { key: key.to_string(), value: value.to_string(), ..Default::default() }
}

pub(crate) fn opset_proto(domain: &str, version: i64) -> OperatorSetIdProto {
    OperatorSetIdProto { domain: domain.to_string(), version, ..Default::default() }
}
