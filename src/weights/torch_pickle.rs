//! Reader for PyTorch checkpoints written by `torch.save` (the zip format of PyTorch >= 1.6:
//! `<folder>/data.pkl` + `<folder>/data/<key>` raw little-endian storages, as described in
//! `torch/serialization.py`), e.g. `pytorch_model.bin` or a `.pth` state dict.
//!
//! The pickle is run by a restricted VM ([`pickle`]) that only knows state-dict objects; tensors
//! are materialised from their storages with their offsets and strides (non-contiguous views are
//! copied to contiguous row-major data). Nested dicts and lists are flattened to dotted names.
//!
//! ```no_run
//! let tensors = promptist::weights::torch_pickle::load(std::path::Path::new("pytorch_model.bin"))?;
//! for (name, t) in &tensors {
//!     let values: Vec<f32> = t.to_f32()?;
//!     println!("{name} {:?} {:?} {}", t.dtype, t.shape, values.len());
//! }
//! # Ok::<(), promptist::Error>(())
//! ```

pub(crate) mod pickle;

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

use half::{bf16, f16};

use self::pickle::{unpickle, StorageRef, TensorRef, Value};
use crate::error::{Error, Result};

/// Element types of PyTorch storages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DType {
    F32,
    F64,
    F16,
    BF16,
    I64,
    I32,
    I16,
    I8,
    U8,
    Bool,
}

impl DType {
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            DType::F64 | DType::I64 => 8,
            DType::F32 | DType::I32 => 4,
            DType::F16 | DType::BF16 | DType::I16 => 2,
            DType::I8 | DType::U8 | DType::Bool => 1,
        }
    }
}

/// One tensor: contiguous row-major little-endian bytes of `dtype`.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorData {
    pub dtype: DType,
    pub shape: Vec<usize>,
    pub bytes: Vec<u8>,
}

impl TensorData {
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    /// The values converted to f32 (exact for f32/f16/bf16; rounded for f64 and large ints).
    pub fn to_f32(&self) -> Result<Vec<f32>> {
        let b = &self.bytes;
        let n = self.dtype.size();
        let chunks = b.chunks_exact(n);
        Ok(match self.dtype {
            DType::F32 => chunks.map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect(),
            DType::F16 => chunks.map(|c| f16::from_le_bytes([c[0], c[1]]).to_f32()).collect(),
            DType::BF16 => chunks.map(|c| bf16::from_le_bytes([c[0], c[1]]).to_f32()).collect(),
            DType::F64 => chunks.map(|c| f64::from_le_bytes(arr8(c)) as f32).collect(),
            DType::I64 => chunks.map(|c| i64::from_le_bytes(arr8(c)) as f32).collect(),
            DType::I32 => chunks
                .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f32)
                .collect(),
            DType::I16 => chunks.map(|c| i16::from_le_bytes([c[0], c[1]]) as f32).collect(),
            DType::I8 => chunks.map(|c| c[0] as i8 as f32).collect(),
            DType::U8 | DType::Bool => chunks.map(|c| c[0] as f32).collect(),
        })
    }
}

fn arr8(c: &[u8]) -> [u8; 8] {
    let mut a = [0u8; 8];
    a.copy_from_slice(c);
    a
}

fn err(m: impl Into<String>) -> Error {
    Error::ModelFormat(m.into())
}

/// Read every tensor of a `torch.save` zip checkpoint, in the order the pickle lists them.
/// Names are the dict keys; nested dicts and lists are joined with dots (`{"state_dict": {"w": t}}`
/// gives `state_dict.w`). Values that are not tensors (ints, strings, ...) are skipped. Globals other
/// than OrderedDict, the tensor/parameter rebuild functions and storage types are a ModelFormat
/// error (nothing is executed). Only little-endian checkpoints are read.
pub fn load(path: &Path) -> Result<Vec<(String, TensorData)>> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
    let mut zip = zip::ZipArchive::new(file).map_err(|e| {
        err(format!(
            "{} is not a torch.save zip checkpoint ({e}); legacy (pre-1.6) pickles are not supported",
            path.display()
        ))
    })?;
    let pkl_name = (0..zip.len())
        .filter_map(|i| zip.name_for_index(i).map(str::to_string))
        .find(|n| n.ends_with("/data.pkl") && n.matches('/').count() == 1)
        .ok_or_else(|| err(format!("{} has no <folder>/data.pkl", path.display())))?;
    let prefix = pkl_name.trim_end_matches("data.pkl").to_string();
    if let Ok(bo) = read_entry(&mut zip, &format!("{prefix}byteorder")) {
        if bo != b"little" {
            return Err(err(format!(
                "{}: byte order {:?} is not supported",
                path.display(),
                String::from_utf8_lossy(&bo)
            )));
        }
    }
    let pkl = read_entry(&mut zip, &pkl_name)?;
    let unpickled = unpickle(&pkl).map_err(|e| err(format!("{}: {e}", path.display())))?;

    let mut refs = Vec::new();
    let mut budget = MAX_VISITS;
    collect(&unpickled.root, String::new(), &mut refs, 0, &mut budget)?;
    drop(unpickled);
    // Each storage is read once and dropped after its last tensor, so peak memory stays near the
    // output size plus the largest shared storage.
    let mut remaining: HashMap<String, usize> = HashMap::new();
    for (_, t) in &refs {
        *remaining.entry(t.storage.key.clone()).or_default() += 1;
    }
    let mut storages: HashMap<String, Vec<u8>> = HashMap::new();
    let mut out = Vec::with_capacity(refs.len());
    for (name, t) in refs {
        let key = &t.storage.key;
        if !storages.contains_key(key) {
            let bytes = read_entry(&mut zip, &format!("{prefix}data/{key}"))?;
            storages.insert(key.clone(), bytes);
        }
        let data = match storages.get(key) {
            Some(bytes) => {
                materialise(&t, bytes).map_err(|e| err(format!("{}: tensor `{name}`: {e}", path.display())))?
            }
            None => return Err(Error::Internal(format!("storage {key} vanished"))),
        };
        if let Some(n) = remaining.get_mut(key) {
            *n -= 1;
            if *n == 0 {
                storages.remove(key);
            }
        }
        out.push((name, data));
    }
    Ok(out)
}

/// Most values the walk over a pickle's result visits: shared sub-values are walked once per path,
/// so a pickle nesting one list twice in itself 64 times over would otherwise take 2^64 steps.
const MAX_VISITS: usize = 1 << 22;

/// Largest view that is bigger than its storage (an expanded, stride-0 tensor), in bytes.
const MAX_EXPANDED_BYTES: usize = 64 << 20;

/// Deflate expands at most 1032:1; an entry whose header claims more is not a real one.
const MAX_DEFLATE_RATIO: u64 = 1032;

fn read_entry<R: std::io::Read + std::io::Seek>(zip: &mut zip::ZipArchive<R>, name: &str) -> Result<Vec<u8>> {
    let f = zip
        .by_name(name)
        .map_err(|e| err(format!("checkpoint entry `{name}`: {e}")))?;
    // The buffer is sized from the entry's header, so the header is checked against what the
    // bytes behind it can hold before anything is allocated; allocation failure is an error.
    let declared = f.size();
    if declared > f.compressed_size().saturating_mul(MAX_DEFLATE_RATIO).max(4096) {
        return Err(err(format!(
            "checkpoint entry `{name}` claims {declared} bytes from {} compressed ones",
            f.compressed_size()
        )));
    }
    let cap = usize::try_from(declared).map_err(|_| err(format!("checkpoint entry `{name}` is too large ({declared} bytes)")))?;
    let mut buf = Vec::new();
    buf.try_reserve_exact(cap)
        .map_err(|_| err(format!("checkpoint entry `{name}`: cannot allocate {declared} bytes")))?;
    f.take(declared)
        .read_to_end(&mut buf)
        .map_err(|e| Error::io(format!("reading checkpoint entry `{name}`"), e))?;
    if buf.len() as u64 != declared {
        return Err(err(format!("checkpoint entry `{name}` holds {} bytes, its header says {declared}", buf.len())));
    }
    Ok(buf)
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    }
}

fn collect(v: &Value, name: String, out: &mut Vec<(String, TensorRef)>, depth: usize, budget: &mut usize) -> Result<()> {
    if depth > 64 {
        return Err(err("checkpoint nesting is deeper than 64 levels"));
    }
    *budget = budget.checked_sub(1).ok_or_else(|| err(format!("checkpoint holds more than {MAX_VISITS} values")))?;
    match v {
        Value::Tensor(t) => out.push((name, t.clone())),
        Value::Dict(d) => {
            for (k, val) in d.borrow().iter() {
                let key = match k {
                    Value::Str(s) => s.clone(),
                    Value::Int(i) => i.to_string(),
                    _ => continue,
                };
                collect(val, join(&name, &key), out, depth + 1, budget)?;
            }
        }
        Value::List(l) => {
            for (i, val) in l.borrow().iter().enumerate() {
                collect(val, join(&name, &i.to_string()), out, depth + 1, budget)?;
            }
        }
        Value::Tuple(t) => {
            for (i, val) in t.iter().enumerate() {
                collect(val, join(&name, &i.to_string()), out, depth + 1, budget)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// Copy the view `t` out of its storage bytes into contiguous row-major order.
fn materialise(t: &TensorRef, storage: &[u8]) -> std::result::Result<TensorData, String> {
    let StorageRef { dtype, numel, .. } = t.storage;
    let es = dtype.size();
    if numel.checked_mul(es).is_none_or(|n| storage.len() < n) {
        return Err(format!(
            "storage {} has {} bytes, expected {} elements of {es}",
            t.storage.key,
            storage.len(),
            numel
        ));
    }
    // Every number below comes from the file: checked before anything is sized from it. A view
    // larger than its storage (a stride-0 expansion) may be at most MAX_EXPANDED_BYTES, so the copy
    // is never much larger than the bytes already read; allocation failure is an error.
    let count = t.shape.iter().try_fold(1usize, |a, &n| a.checked_mul(n)).ok_or_else(|| format!("tensor size {:?} overflows", t.shape))?;
    let out_bytes = count.checked_mul(es).ok_or_else(|| format!("tensor size {:?} overflows", t.shape))?;
    if count > numel && out_bytes > MAX_EXPANDED_BYTES {
        return Err(format!(
            "an expanded view of {count} elements ({out_bytes} bytes) on a storage of {numel}: more than {MAX_EXPANDED_BYTES} bytes"
        ));
    }
    let mut bytes = Vec::new();
    bytes.try_reserve_exact(out_bytes).map_err(|_| format!("cannot allocate {out_bytes} bytes for the tensor"))?;
    if count == 0 {
        return Ok(TensorData {
            dtype,
            shape: t.shape.clone(),
            bytes,
        });
    }
    let last = t
        .shape
        .iter()
        .zip(&t.stride)
        .try_fold(t.offset, |a, (&n, &s)| (n - 1).checked_mul(s).and_then(|x| a.checked_add(x)))
        .ok_or_else(|| format!("view (offset {}, size {:?}, stride {:?}) overflows", t.offset, t.shape, t.stride))?;
    if last >= numel {
        return Err(format!(
            "view (offset {}, size {:?}, stride {:?}) reaches element {last} of a storage of {numel}",
            t.offset, t.shape, t.stride
        ));
    }
    let contiguous = {
        let mut expect = 1;
        let mut ok = true;
        for (&n, &s) in t.shape.iter().zip(&t.stride).rev() {
            if n != 1 && s != expect {
                ok = false;
            }
            expect *= n;
        }
        ok
    };
    if contiguous {
        bytes.extend_from_slice(&storage[t.offset * es..(t.offset + count) * es]);
    } else {
        let rank = t.shape.len();
        let mut idx = vec![0usize; rank];
        for _ in 0..count {
            let e = t.offset + idx.iter().zip(&t.stride).map(|(i, s)| i * s).sum::<usize>();
            bytes.extend_from_slice(&storage[e * es..(e + 1) * es]);
            for d in (0..rank).rev() {
                idx[d] += 1;
                if idx[d] < t.shape[d] {
                    break;
                }
                idx[d] = 0;
            }
        }
    }
    Ok(TensorData {
        dtype,
        shape: t.shape.clone(),
        bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Views whose numbers come from a hostile file: an expansion to 2^40 elements, a size whose
    /// product overflows, an offset that overflows; each an error before any allocation.
    #[test]
    fn oversized_and_overflowing_views_are_errors() {
        let storage = StorageRef { dtype: DType::F32, key: "0".into(), numel: 4 };
        let bytes = vec![0u8; 16];
        let view = |offset: usize, shape: Vec<usize>, stride: Vec<usize>| TensorRef { storage: storage.clone(), offset, shape, stride };
        let e = materialise(&view(0, vec![1 << 40], vec![0]), &bytes).unwrap_err();
        assert!(e.contains("expanded view"), "{e}");
        let e = materialise(&view(0, vec![usize::MAX, 2], vec![0, 0]), &bytes).unwrap_err();
        assert!(e.contains("overflows"), "{e}");
        assert!(materialise(&view(usize::MAX, vec![2], vec![1]), &bytes).is_err());
        // A small expansion stays supported.
        assert_eq!(materialise(&view(0, vec![3, 4], vec![0, 1]), &bytes).unwrap().shape, vec![3, 4]);
    }

    fn view(shape: Vec<usize>, stride: Vec<usize>, offset: usize, numel: usize) -> TensorRef {
        TensorRef {
            storage: StorageRef {
                dtype: DType::F32,
                key: "0".into(),
                numel,
            },
            offset,
            shape,
            stride,
        }
    }

    fn f32s(v: &[f32]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    }

    #[test]
    fn views_are_copied_in_row_major_order() {
        let s = f32s(&[0., 1., 2., 3., 4., 5., 6.]);
        // A 2x3 transposed view of a 3x2 matrix starting at element 1.
        let t = materialise(&view(vec![2, 3], vec![1, 2], 1, 7), &s).unwrap();
        assert_eq!(
            TensorData {
                dtype: DType::F32,
                shape: vec![2, 3],
                bytes: f32s(&[1., 3., 5., 2., 4., 6.])
            },
            t
        );
        let t = materialise(&view(vec![3], vec![1], 4, 7), &s).unwrap();
        assert_eq!(t.to_f32().unwrap(), vec![4., 5., 6.]);
        let t = materialise(&view(vec![], vec![], 2, 7), &s).unwrap();
        assert_eq!(t.to_f32().unwrap(), vec![2.]);
        assert!(materialise(&view(vec![4], vec![2], 1, 7), &s).is_err());
        assert_eq!(
            materialise(&view(vec![4], vec![2], 0, 7), &s)
                .unwrap()
                .to_f32()
                .unwrap(),
            vec![0., 2., 4., 6.]
        );
        assert_eq!(materialise(&view(vec![0, 3], vec![3, 1], 0, 7), &s).unwrap().numel(), 0);
    }
}
