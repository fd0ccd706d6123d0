//! Loading the weights of a Hugging Face checkpoint folder: `model.safetensors`, a sharded
//! `model.safetensors.index.json` (its `weight_map` names the shard files), or `pytorch_model.bin`
//! (through the PyTorch zip-pickle reader), in that order of preference.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::{read_safetensors, Tensor, WeightMap};
use crate::{Error, Result};

/// Which file a checkpoint's weights came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckpointFormat {
    Safetensors(PathBuf),
    ShardedSafetensors(PathBuf),
    PytorchBin(PathBuf),
}

impl CheckpointFormat {
    /// The file read (the index file for sharded checkpoints).
    pub fn path(&self) -> &Path {
        match self {
            CheckpointFormat::Safetensors(p)
            | CheckpointFormat::ShardedSafetensors(p)
            | CheckpointFormat::PytorchBin(p) => p,
        }
    }
}

/// Load all weights of the checkpoint folder `dir`.
pub fn load_checkpoint_weights(dir: &Path) -> Result<(WeightMap, CheckpointFormat)> {
    let single = dir.join("model.safetensors");
    if single.is_file() {
        return Ok((read_safetensors(&single)?, CheckpointFormat::Safetensors(single)));
    }
    let index = dir.join("model.safetensors.index.json");
    if index.is_file() {
        return Ok((read_sharded(dir, &index)?, CheckpointFormat::ShardedSafetensors(index)));
    }
    let bin = dir.join("pytorch_model.bin");
    if bin.is_file() {
        return Ok((read_pytorch_bin(&bin)?, CheckpointFormat::PytorchBin(bin)));
    }
    Err(Error::ModelFormat(format!(
        "{}: no weights found (looked for model.safetensors, model.safetensors.index.json, pytorch_model.bin)",
        dir.display()
    )))
}

fn read_sharded(dir: &Path, index: &Path) -> Result<WeightMap> {
    let text = crate::io::read_text(index)?;
    let v: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| Error::ModelFormat(format!("{}: {e}", index.display())))?;
    let wm = v
        .get("weight_map")
        .and_then(|m| m.as_object())
        .ok_or_else(|| Error::ModelFormat(format!("{}: no \"weight_map\" object", index.display())))?;
    let mut shards = BTreeSet::new();
    for (name, file) in wm {
        let f = file
            .as_str()
            .ok_or_else(|| Error::ModelFormat(format!("{}: weight {name} maps to a non-string", index.display())))?;
        if f.contains('/') || f.contains('\\') || f.contains("..") {
            return Err(Error::ModelFormat(format!("{}: shard name {f:?} is not a plain file name", index.display())));
        }
        shards.insert(f.to_string());
    }
    let mut out = WeightMap::new();
    for s in shards {
        out.extend(read_safetensors(&dir.join(&s))?);
    }
    for name in wm.keys() {
        if !out.contains(name) {
            return Err(Error::ModelFormat(format!("{}: weight {name} is not in its shard", index.display())));
        }
    }
    Ok(out)
}

/// `pytorch_model.bin` through the zip-pickle reader (src/weights/torch_pickle.rs); every tensor is
/// converted to f32 (non-float entries such as GPT-2's legacy `attn.bias` / `attn.masked_bias`
/// buffers become f32 too and are simply not used by the graph builder).
fn read_pytorch_bin(path: &Path) -> Result<WeightMap> {
    let mut out = WeightMap::new();
    for (name, t) in super::torch_pickle::load(path)? {
        let data = t.to_f32()?;
        out.insert(name, Tensor::new(t.shape, data)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::weights::safetensors_io::{write_safetensors, StoreDtype};
    use crate::weights::Tensor;

    fn map(names: &[&str]) -> WeightMap {
        let mut m = WeightMap::new();
        for (i, n) in names.iter().enumerate() {
            m.insert(*n, Tensor::new(vec![2], vec![i as f32, -(i as f32)]).unwrap());
        }
        m
    }

    #[test]
    fn sharded_index_is_read_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        write_safetensors(&map(&["a", "b"]), &d.join("model-00001-of-00002.safetensors"), StoreDtype::F32, None)
            .unwrap();
        write_safetensors(&map(&["c"]), &d.join("model-00002-of-00002.safetensors"), StoreDtype::F16, None).unwrap();
        let index = serde_json::json!({"metadata": {}, "weight_map": {
            "a": "model-00001-of-00002.safetensors", "b": "model-00001-of-00002.safetensors",
            "c": "model-00002-of-00002.safetensors"}});
        std::fs::write(d.join("model.safetensors.index.json"), index.to_string()).unwrap();
        let (w, fmt) = load_checkpoint_weights(d).unwrap();
        assert!(matches!(fmt, CheckpointFormat::ShardedSafetensors(_)));
        assert_eq!(w.names().collect::<Vec<_>>(), ["a", "b", "c"]);
        // an index naming a weight no shard has is an error
        let index = serde_json::json!({"weight_map": {"zzz": "model-00002-of-00002.safetensors"}});
        std::fs::write(d.join("model.safetensors.index.json"), index.to_string()).unwrap();
        let e = load_checkpoint_weights(d).unwrap_err();
        assert!(e.to_string().contains("zzz"), "{e}");
        // shard names may not leave the folder
        let index = serde_json::json!({"weight_map": {"a": "../x.safetensors"}});
        std::fs::write(d.join("model.safetensors.index.json"), index.to_string()).unwrap();
        assert_eq!(load_checkpoint_weights(d).unwrap_err().code(), crate::Code::ModelFormat);
    }

    #[test]
    fn empty_folder_names_what_was_looked_for() {
        let dir = tempfile::tempdir().unwrap();
        let e = load_checkpoint_weights(dir.path()).unwrap_err();
        assert!(e.to_string().contains("pytorch_model.bin"), "{e}");
    }
}
