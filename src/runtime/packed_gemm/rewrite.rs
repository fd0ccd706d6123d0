//! The graph rewrite: every float32 `MatMul` / `Gemm` whose weight is a constant 2-D initializer
//! becomes one `ai.promptist.cpu:PackedMatMul` node (ONNX semantics kept: `Gemm` needs
//! `alpha = 1`, `transA = 0`, and a 1-D bias with `beta = 1` or none), the weights are packed, the
//! initializers nothing else reads are dropped, and the rest is inlined so the result loads from
//! memory. The bundle on disk is never changed.

use std::collections::{HashMap, HashSet};
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::Arc;

use onnx_protobuf::attribute_proto::AttributeType;
use onnx_protobuf::tensor_proto::{DataLocation, DataType};
use onnx_protobuf::{AttributeProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto};
use protobuf::Message;

use super::operator::{DOMAIN, OP, WEIGHT_ATTR};
use super::pack::{PackedMatrix, SourceLayout};
use crate::bundle::external_data::{is_external, ExternalRef};
use crate::{Error, Result};

/// A rewritten model: the serialized graph and the packed weights its nodes name.
pub struct Rewritten {
    pub(super) model_bytes: Vec<u8>,
    pub(super) weights: HashMap<String, Arc<PackedMatrix>>,
}

/// Rewrite the model at `path`; `None` when it has no node to replace (or has subgraphs, which the
/// rewrite does not walk).
pub fn rewrite(path: &Path) -> Result<Option<Rewritten>> {
    let bad = |m: String| Error::ModelFormat(format!("{}: {m}", path.display()));
    let bytes = std::fs::read(path).map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
    let mut model = ModelProto::parse_from_bytes(&bytes).map_err(|e| bad(format!("not an ONNX model: {e}")))?;
    drop(bytes);
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut reader = ExternalReader::new(dir);
    let graph = model.graph.as_mut().ok_or_else(|| bad("no graph".into()))?;
    if graph.node.iter().any(|n| n.attribute.iter().any(|a| a.g.is_some() || !a.graphs.is_empty())) {
        return Ok(None);
    }
    // Initializers that are also graph inputs can be overridden by a feed: not constants.
    let inputs: HashSet<&str> = graph.input.iter().map(|v| v.name.as_str()).collect();
    let index: HashMap<String, usize> = graph
        .initializer
        .iter()
        .enumerate()
        .filter(|(_, t)| !inputs.contains(t.name.as_str()))
        .map(|(i, t)| (t.name.clone(), i))
        .collect();
    let mut weights = HashMap::new();
    for node in graph.node.iter_mut() {
        let Some(plan) = plan(node, &graph.initializer, &index) else { continue };
        let w = reader.floats(&graph.initializer[plan.weight]).map_err(|e| bad(e.to_string()))?;
        let bias = match plan.bias {
            Some(b) => Some(reader.floats(&graph.initializer[b]).map_err(|e| bad(e.to_string()))?),
            None => None,
        };
        let packed = PackedMatrix::pack(&w, plan.k, plan.n, plan.layout, bias.as_deref())?;
        let key = node.output.first().cloned().unwrap_or_default();
        if key.is_empty() || weights.contains_key(&key) {
            return Err(bad(format!("node {:?} has no unique output name", node.name)));
        }
        weights.insert(key.clone(), Arc::new(packed));
        let a = node.input[0].clone();
        node.op_type = OP.into();
        node.domain = DOMAIN.into();
        node.input = vec![a];
        node.attribute = vec![AttributeProto {
            name: WEIGHT_ATTR.into(),
            type_: AttributeType::STRING.into(),
            s: key.into_bytes(),
            ..Default::default()
        }];
    }
    if weights.is_empty() {
        return Ok(None);
    }
    let used: HashSet<&str> = graph
        .node
        .iter()
        .flat_map(|n| n.input.iter().map(String::as_str))
        .chain(graph.output.iter().map(|o| o.name.as_str()))
        .collect();
    let keep: Vec<bool> = graph.initializer.iter().map(|t| used.contains(t.name.as_str())).collect();
    let mut kept = Vec::with_capacity(graph.initializer.len());
    for (t, k) in std::mem::take(&mut graph.initializer).into_iter().zip(keep) {
        if k {
            kept.push(t);
        }
    }
    for t in kept.iter_mut() {
        if is_external(t) {
            t.raw_data = reader.bytes(t).map_err(|e| bad(e.to_string()))?;
            t.external_data.clear();
            t.data_location = DataLocation::DEFAULT.into();
        }
    }
    graph.initializer = kept;
    model.opset_import.push(OperatorSetIdProto { domain: DOMAIN.into(), version: 1, ..Default::default() });
    let model_bytes = model.write_to_bytes().map_err(|e| bad(format!("serializing the rewritten graph: {e}")))?;
    Ok(Some(Rewritten { model_bytes, weights }))
}

/// What to pack for one node.
struct Plan {
    weight: usize,
    bias: Option<usize>,
    k: usize,
    n: usize,
    layout: SourceLayout,
}

fn is_float_2d(t: &TensorProto) -> Option<(usize, usize)> {
    (t.data_type == DataType::FLOAT as i32 && t.dims.len() == 2 && t.dims.iter().all(|&d| d > 0))
        .then(|| (t.dims[0] as usize, t.dims[1] as usize))
}

fn int_attr(node: &NodeProto, name: &str, default: i64) -> i64 {
    node.attribute.iter().find(|a| a.name == name).map_or(default, |a| a.i)
}

fn float_attr(node: &NodeProto, name: &str, default: f32) -> f32 {
    node.attribute.iter().find(|a| a.name == name).map_or(default, |a| a.f)
}

/// The replacement of `node`, if it is a MatMul/Gemm the packed kernel computes exactly.
fn plan(node: &NodeProto, inits: &[TensorProto], index: &HashMap<String, usize>) -> Option<Plan> {
    if !node.domain.is_empty() || node.output.len() != 1 || node.input.len() < 2 {
        return None;
    }
    let weight = *index.get(&node.input[1])?;
    let (d0, d1) = is_float_2d(&inits[weight])?;
    match node.op_type.as_str() {
        "MatMul" if node.input.len() == 2 => Some(Plan { weight, bias: None, k: d0, n: d1, layout: SourceLayout::KByN }),
        "Gemm" => {
            if float_attr(node, "alpha", 1.0) != 1.0 || int_attr(node, "transA", 0) != 0 {
                return None;
            }
            let (k, n, layout) =
                if int_attr(node, "transB", 0) != 0 { (d1, d0, SourceLayout::NByK) } else { (d0, d1, SourceLayout::KByN) };
            let bias = match node.input.get(2).filter(|s| !s.is_empty()) {
                None => None,
                Some(c) => {
                    let b = *index.get(c)?;
                    let t = &inits[b];
                    let len: i64 = t.dims.iter().product();
                    let vector = t.dims.len() == 1 || (t.dims.len() == 2 && t.dims[0] == 1);
                    if t.data_type != DataType::FLOAT as i32 || !vector || len != n as i64 || float_attr(node, "beta", 1.0) != 1.0 {
                        return None;
                    }
                    Some(b)
                }
            };
            Some(Plan { weight, bias, k, n, layout })
        }
        _ => None,
    }
}


/// Reads initializer data (inline `raw_data` / `float_data`, or ONNX external data next to the model).
struct ExternalReader<'a> {
    dir: &'a Path,
    files: HashMap<String, std::fs::File>,
}

impl<'a> ExternalReader<'a> {
    fn new(dir: &'a Path) -> Self {
        ExternalReader { dir, files: HashMap::new() }
    }

    fn floats(&mut self, t: &TensorProto) -> Result<Vec<f32>> {
        if !is_external(t) && t.raw_data.is_empty() {
            return Ok(t.float_data.clone());
        }
        let external;
        let raw: &[u8] = if is_external(t) {
            external = self.bytes(t)?;
            &external
        } else {
            &t.raw_data
        };
        if !raw.len().is_multiple_of(4) {
            return Err(Error::ModelFormat(format!("initializer {} has {} bytes, not whole floats", t.name, raw.len())));
        }
        Ok(raw.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
    }

    fn bytes(&mut self, t: &TensorProto) -> Result<Vec<u8>> {
        // Location, offset and length checked, and the range checked against the file's size,
        // before a buffer is sized from them.
        let r = ExternalRef::parse(t)?;
        let path = r.checked_file(self.dir, &t.name)?;
        let file = match self.files.entry(r.location.clone()) {
            std::collections::hash_map::Entry::Occupied(f) => f.into_mut(),
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(std::fs::File::open(&path).map_err(|e| Error::io(format!("opening {}", path.display()), e))?)
            }
        };
        let len = usize::try_from(r.length).map_err(|_| Error::ModelFormat(format!("initializer {}: {} bytes", t.name, r.length)))?;
        let mut buf = Vec::new();
        buf.try_reserve_exact(len).map_err(|_| Error::ModelFormat(format!("initializer {}: cannot allocate {len} bytes", t.name)))?;
        buf.resize(len, 0);
        file.seek(SeekFrom::Start(r.offset))
            .and_then(|_| file.read_exact(&mut buf))
            .map_err(|e| Error::io(format!("reading {} bytes at {} of {}", r.length, r.offset, path.display()), e))?;
        Ok(buf)
    }
}
