//! Checkpoint weights: a name -> tensor map read from the formats users have (safetensors,
//! sharded safetensors, PyTorch `pytorch_model.bin` / `.pth` zip pickles), always held as f32.

pub mod checkpoint;
pub mod safetensors_io;
pub mod torch_pickle;

use std::collections::BTreeMap;
use std::path::Path;

use crate::{Error, Result};

pub use checkpoint::{load_checkpoint_weights, CheckpointFormat};
pub use safetensors_io::{read_safetensors, write_safetensors};

/// Read a weights file: `.safetensors`, or a `torch.save` zip (`.bin`, `.pth`, `.pt`) whose
/// float tensors are kept (integer buffers such as `position_ids` are skipped).
pub fn read_weights_file(path: &Path) -> Result<WeightMap> {
    if path.extension().is_some_and(|e| e == "safetensors") {
        return read_safetensors(path);
    }
    let mut w = WeightMap::new();
    for (name, t) in torch_pickle::load(path)? {
        use torch_pickle::DType as D;
        if matches!(t.dtype, D::F32 | D::F16 | D::BF16 | D::F64) {
            w.insert(name, Tensor::new(t.shape.clone(), t.to_f32()?)?);
        }
    }
    Ok(w)
}


/// One tensor: row-major f32 values and their shape.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

impl Tensor {
    /// A tensor, checking that `data` has as many values as `shape` says.
    pub fn new(shape: Vec<usize>, data: Vec<f32>) -> Result<Self> {
        let n: usize = shape.iter().product();
        if n != data.len() {
            return Err(Error::ModelFormat(format!("tensor of shape {shape:?} needs {n} values, got {}", data.len())));
        }
        Ok(Self { shape, data })
    }
    pub fn numel(&self) -> usize {
        self.data.len()
    }
    /// The transpose of a 2-D tensor.
    pub fn transposed(&self) -> Result<Tensor> {
        let [r, c] = self.shape[..] else {
            return Err(Error::ModelFormat(format!("transpose needs a 2-D tensor, got shape {:?}", self.shape)));
        };
        let mut out = vec![0f32; r * c];
        for i in 0..r {
            for j in 0..c {
                out[j * r + i] = self.data[i * c + j];
            }
        }
        Tensor::new(vec![c, r], out)
    }
}

/// Weights by name (sorted, so iteration order and anything derived from it is deterministic).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WeightMap {
    pub tensors: BTreeMap<String, Tensor>,
}

impl WeightMap {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn insert(&mut self, name: impl Into<String>, t: Tensor) {
        self.tensors.insert(name.into(), t);
    }
    pub fn get(&self, name: &str) -> Option<&Tensor> {
        self.tensors.get(name)
    }
    pub fn contains(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }
    pub fn len(&self) -> usize {
        self.tensors.len()
    }
    pub fn is_empty(&self) -> bool {
        self.tensors.is_empty()
    }
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.tensors.keys().map(|s| s.as_str())
    }
    /// The tensor called `name`, which must have `shape`; a ModelFormat error otherwise.
    pub fn expect(&self, name: &str, shape: &[usize]) -> Result<&Tensor> {
        let t = self.get(name).ok_or_else(|| Error::ModelFormat(format!("weight {name} is missing")))?;
        if t.shape != shape {
            return Err(Error::ModelFormat(format!("weight {name} has shape {:?}, expected {shape:?}", t.shape)));
        }
        Ok(t)
    }
    /// Merge another map in (later entries win).
    pub fn extend(&mut self, other: WeightMap) {
        self.tensors.extend(other.tensors);
    }
}
