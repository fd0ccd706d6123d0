//! Serializing a [`Model`] to `model.onnx`, with ONNX external data (`model.onnx_data`) for tensors
//! at or above a size threshold; the external-data convention (location/offset/length entries,
//! `data_location = EXTERNAL`) is the one onnx's `save_model(..., save_as_external_data=True)` writes.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use onnx_protobuf::tensor_proto::DataLocation;
use onnx_protobuf::{Message, ModelProto, TensorProto};

use super::graph::{opset_proto, string_entry, Model};
use super::tensor::TensorData;
use crate::{Error, Result};

/// Offsets of external tensors are multiples of this (the page size, so runtimes can memory-map).
pub const EXTERNAL_ALIGNMENT: u64 = 4096;

/// How [`save_model`] lays out weights.
#[derive(Debug, Clone)]
pub struct SaveOptions {
    /// Tensors with at least this many bytes go to the external data file; `None` keeps all inline.
    pub external_threshold_bytes: Option<usize>,
}

impl Default for SaveOptions {
    /// External data for tensors of 1 KiB or more (onnx's default `size_threshold`).
    fn default() -> Self {
        Self { external_threshold_bytes: Some(1024) }
    }
}

/// The files [`save_model`] wrote.
#[derive(Debug, Clone)]
pub struct SavedModel {
    pub model_path: PathBuf,
    /// The external data file, when any tensor went there.
    pub data_path: Option<PathBuf>,
}

/// The external data file name for a model path: `model.onnx` -> `model.onnx_data`.
pub fn external_data_name(model_path: &Path) -> String {
    let file = model_path.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_else(|| "model.onnx".into());
    format!("{file}_data")
}

/// A `TensorProto` with the data inline in `raw_data`.
pub fn inline_tensor(name: &str, t: &TensorData) -> TensorProto {
    TensorProto {
        name: name.to_string(),
        dims: t.dims.clone(),
        data_type: t.dtype().onnx(),
        raw_data: t.to_le_bytes(),
        ..Default::default()
    }
}

fn check_tensor(name: &str, t: &TensorData) -> Result<()> {
    if t.dims_len() != t.len() {
        return Err(Error::ModelFormat(format!(
            "tensor {name}: dims {:?} hold {} elements but {} values were given",
            t.dims,
            t.dims_len(),
            t.len()
        )));
    }
    Ok(())
}

/// Build the `ModelProto` with every initializer inline (for small models and tests).
pub fn to_proto_inline(model: &Model) -> Result<ModelProto> {
    let mut proto = skeleton(model);
    let graph = proto.graph.mut_or_insert_default();
    for (name, t) in &model.initializers {
        check_tensor(name, t)?;
        graph.initializer.push(inline_tensor(name, t));
    }
    Ok(proto)
}

/// Serialize with every initializer inline.
pub fn to_bytes_inline(model: &Model) -> Result<Vec<u8>> {
    let proto = to_proto_inline(model)?;
    proto.write_to_bytes().map_err(|e| Error::Internal(format!("serializing ONNX model: {e}")))
}

fn skeleton(model: &Model) -> ModelProto {
    ModelProto {
        ir_version: model.ir_version,
        opset_import: model.opsets.iter().map(|(d, v)| opset_proto(d, *v)).collect(),
        producer_name: "promptist".into(),
        producer_version: model.producer.clone(),
        graph: Some(model.graph.clone()).into(),
        metadata_props: model.metadata.iter().map(|(k, v)| string_entry(k, v)).collect(),
        ..Default::default()
    }
}

/// Write `model` to `path`; tensors at or above the threshold go to `<file>_data` next to it.
pub fn save_model(model: &Model, path: &Path, opts: &SaveOptions) -> Result<SavedModel> {
    let data_name = external_data_name(path);
    let data_path = path.with_file_name(&data_name);
    let mut proto = skeleton(model);
    let mut data: Option<BufWriter<File>> = None;
    let mut offset: u64 = 0;
    {
        let graph = proto.graph.mut_or_insert_default();
        for (name, t) in &model.initializers {
            check_tensor(name, t)?;
            let external = opts.external_threshold_bytes.is_some_and(|th| t.byte_len() >= th);
            if !external {
                graph.initializer.push(inline_tensor(name, t));
                continue;
            }
            if data.is_none() {
                let f =
                    File::create(&data_path).map_err(|e| Error::io(format!("creating {}", data_path.display()), e))?;
                data = Some(BufWriter::with_capacity(1 << 20, f));
            }
            let w = data.as_mut().ok_or_else(|| Error::Internal("external data writer missing".into()))?;
            let pad = (EXTERNAL_ALIGNMENT - offset % EXTERNAL_ALIGNMENT) % EXTERNAL_ALIGNMENT;
            let ctx = || format!("writing {}", data_path.display());
            w.write_all(&vec![0u8; pad as usize]).map_err(|e| Error::io(ctx(), e))?;
            offset += pad;
            let bytes = t.to_le_bytes();
            w.write_all(&bytes).map_err(|e| Error::io(ctx(), e))?;
            graph.initializer.push(TensorProto {
                name: name.clone(),
                dims: t.dims.clone(),
                data_type: t.dtype().onnx(),
                data_location: DataLocation::EXTERNAL.into(),
                external_data: vec![
                    string_entry("location", &data_name),
                    string_entry("offset", &offset.to_string()),
                    string_entry("length", &bytes.len().to_string()),
                ],
                ..Default::default()
            });
            offset += bytes.len() as u64;
        }
    }
    let wrote_data = if let Some(mut w) = data {
        w.flush().map_err(|e| Error::io(format!("writing {}", data_path.display()), e))?;
        true
    } else {
        // A stale data file from an earlier export would be misleading next to an all-inline model.
        if data_path.exists() {
            std::fs::remove_file(&data_path).map_err(|e| Error::io(format!("removing {}", data_path.display()), e))?;
        }
        false
    };
    let bytes = proto.write_to_bytes().map_err(|e| Error::Internal(format!("serializing ONNX model: {e}")))?;
    std::fs::write(path, bytes).map_err(|e| Error::io(format!("writing {}", path.display()), e))?;
    Ok(SavedModel { model_path: path.to_path_buf(), data_path: wrote_data.then_some(data_path) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::onnx::{attr, DType, Dim, GraphBuilder};
    use onnx_protobuf::type_proto;

    fn tiny_model() -> Model {
        let mut g = GraphBuilder::new("t");
        let x = g.input("x", DType::F32, &["batch".into(), 4.into()]);
        let w = g.initializer("w", TensorData::f32(&[4, 8], (0..32).map(|i| i as f32).collect()));
        let b = g.initializer("b", TensorData::f16(&[8], vec![half::f16::from_f32(0.5); 8]));
        let bf = g.op("Cast", &[&b], vec![attr("to", DType::F32.onnx() as i64)]);
        let y = g.op("Gemm", &[&x, &w, &bf], vec![attr("transB", 0i64)]);
        g.output(&y, "y", DType::F32, &["batch".into(), Dim::Fixed(8)]);
        g.finish()
    }

    #[test]
    fn external_data_layout_and_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.onnx");
        let saved = save_model(&tiny_model(), &path, &SaveOptions { external_threshold_bytes: Some(64) }).unwrap();
        let data_path = saved.data_path.clone().unwrap();
        assert_eq!(data_path.file_name().unwrap(), "model.onnx_data");
        let proto = ModelProto::parse_from_bytes(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(proto.ir_version, 9);
        assert_eq!(proto.opset_import[0].version, 20);
        let g = proto.graph.as_ref().unwrap();
        let w = g.initializer.iter().find(|t| t.name == "w").unwrap();
        assert_eq!(w.data_location.enum_value().unwrap(), DataLocation::EXTERNAL);
        assert!(w.raw_data.is_empty());
        let kv: std::collections::HashMap<_, _> =
            w.external_data.iter().map(|e| (e.key.as_str(), e.value.as_str())).collect();
        assert_eq!(kv["location"], "model.onnx_data");
        let (off, len): (usize, usize) = (kv["offset"].parse().unwrap(), kv["length"].parse().unwrap());
        assert_eq!(off as u64 % EXTERNAL_ALIGNMENT, 0);
        assert_eq!(len, 128);
        let data = std::fs::read(&data_path).unwrap();
        let vals: Vec<f32> =
            data[off..off + len].chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect();
        assert_eq!(vals, (0..32).map(|i| i as f32).collect::<Vec<_>>());
        // the f16 bias (16 bytes) stays inline
        let b = g.initializer.iter().find(|t| t.name == "b").unwrap();
        assert_eq!(b.data_type, DType::F16.onnx());
        assert_eq!(b.raw_data.len(), 16);
        assert!(b.external_data.is_empty());
        // symbolic and fixed dims survive
        let Some(type_proto::Value::TensorType(tt)) = &g.output[0].type_.value else { panic!("no tensor type") };
        let dims = &tt.shape.dim;
        assert_eq!(dims[0].value, Some(dimension_param("batch")));
        assert_eq!(g.output[0].name, "y");
        assert_eq!(g.node.last().unwrap().op_type, "Identity");
    }

    fn dimension_param(s: &str) -> onnx_protobuf::tensor_shape_proto::dimension::Value {
        onnx_protobuf::tensor_shape_proto::dimension::Value::DimParam(s.into())
    }

    #[test]
    fn inline_save_removes_stale_data_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.onnx");
        std::fs::write(dir.path().join("model.onnx_data"), b"stale").unwrap();
        let saved = save_model(&tiny_model(), &path, &SaveOptions { external_threshold_bytes: None }).unwrap();
        assert!(saved.data_path.is_none());
        assert!(!dir.path().join("model.onnx_data").exists());
        let proto = ModelProto::parse_from_bytes(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(proto, to_proto_inline(&tiny_model()).unwrap());
        assert!(proto.graph.initializer.iter().all(|t| !t.raw_data.is_empty()));
    }

    #[test]
    fn wrong_element_count_is_an_error() {
        let mut g = GraphBuilder::new("bad");
        g.initializer("w", TensorData::f32(&[3, 3], vec![0.0; 8]));
        let err = to_bytes_inline(&g.finish()).unwrap_err();
        assert_eq!(err.code(), crate::Code::ModelFormat);
    }
}
