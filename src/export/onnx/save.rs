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
                let f = File::create(&data_path).map_err(|e| Error::io(format!("creating {}", data_path.display()), e))?;
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
