//! Importing an existing optimum ONNX export of GPT-2 with past (`optimum-cli export onnx --task
//! text-generation-with-past`): a folder with `model.onnx` (+ external data) whose inputs and
//! outputs are the ones [`crate::export::gpt2`] writes. The graph is validated and copied as is.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use onnx_protobuf::{type_proto, Message, ModelProto};

use super::gpt2::{
    past_key_name, past_value_name, present_key_name, present_value_name, ATTENTION_MASK, INPUT_IDS, LOGITS,
    POSITION_IDS,
};
use super::gpt2_config::Gpt2Config;
use super::onnx::DType;
use crate::{Error, Result};

/// The ONNX file of an optimum export in `dir`, if there is one (`model.onnx`, else
/// `decoder_model_merged.onnx`, which is rejected later because of its `use_cache_branch` input).
pub fn find_optimum_onnx(dir: &Path) -> Option<PathBuf> {
    ["model.onnx", "decoder_model_merged.onnx"].iter().map(|f| dir.join(f)).find(|p| p.is_file())
}

/// What an imported graph is: its KV-cache type and the external data files it references.
#[derive(Debug, Clone)]
pub struct OptimumGraph {
    pub kv_dtype: DType,
    /// External data file names (relative to the model's folder).
    pub external_files: Vec<String>,
}

/// Check that `path` is a GPT-2-with-past graph with optimum's I/O names for `cfg`.
pub fn inspect_optimum_gpt2(path: &Path, cfg: &Gpt2Config) -> Result<OptimumGraph> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
    let model = ModelProto::parse_from_bytes(&bytes)
        .map_err(|e| Error::ModelFormat(format!("{}: not an ONNX model: {e}", path.display())))?;
    let graph = model.graph.as_ref().ok_or_else(|| Error::ModelFormat(format!("{}: no graph", path.display())))?;
    let bad = |m: String| Error::ModelFormat(format!("{}: {m}", path.display()));
    let elem = |name: &str, list: &[onnx_protobuf::ValueInfoProto]| -> Option<i32> {
        list.iter().find(|v| v.name == name).and_then(|v| match &v.type_.value {
            Some(type_proto::Value::TensorType(t)) => Some(t.elem_type),
            _ => None,
        })
    };
    let mut want_in: Vec<String> = vec![INPUT_IDS.into(), ATTENTION_MASK.into(), POSITION_IDS.into()];
    let mut want_out: Vec<String> = vec![LOGITS.into()];
    for i in 0..cfg.n_layer {
        want_in.extend([past_key_name(i), past_value_name(i)]);
        want_out.extend([present_key_name(i), present_value_name(i)]);
    }
    let have_in: BTreeSet<&str> = graph.input.iter().map(|v| v.name.as_str()).collect();
    let have_out: BTreeSet<&str> = graph.output.iter().map(|v| v.name.as_str()).collect();
    if have_in.contains("use_cache_branch") {
        return Err(bad("a merged decoder (input use_cache_branch) is not supported; export with \
             `--task text-generation-with-past` and without merging, or convert the checkpoint instead"
            .into()));
    }
    let want_in_set: BTreeSet<&str> = want_in.iter().map(|s| s.as_str()).collect();
    if have_in != want_in_set {
        return Err(bad(format!("inputs {have_in:?} are not GPT-2-with-past inputs {want_in_set:?}")));
    }
    for o in &want_out {
        if !have_out.contains(o.as_str()) {
            return Err(bad(format!("output {o} is missing")));
        }
    }
    for i in [INPUT_IDS, ATTENTION_MASK, POSITION_IDS] {
        if elem(i, &graph.input) != Some(DType::I64.onnx()) {
            return Err(bad(format!("input {i} must be int64")));
        }
    }
    let kv = elem(&past_key_name(0), &graph.input);
    let kv_dtype = match kv {
        Some(t) if t == DType::F32.onnx() => DType::F32,
        Some(t) if t == DType::F16.onnx() => DType::F16,
        other => return Err(bad(format!("past_key_values type {other:?} is neither float32 nor float16"))),
    };
    let mut external = BTreeSet::new();
    for t in &graph.initializer {
        for e in t.external_data.iter().filter(|e| e.key == "location") {
            let p = Path::new(&e.value);
            if p.components().count() != 1 || e.value.contains("..") {
                return Err(bad(format!("external data location {:?} is not a plain file name", e.value)));
            }
            external.insert(e.value.clone());
        }
    }
    Ok(OptimumGraph { kv_dtype, external_files: external.into_iter().collect() })
}
