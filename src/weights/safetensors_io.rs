//! safetensors files (the Hugging Face format: JSON header + little-endian raw tensors) read through
//! a memory map and the `safetensors` crate, converted to f32; written as f32 or f16.

use std::collections::HashMap;
use std::fs::File;
use std::path::Path;

use half::{bf16, f16};
use safetensors::tensor::{Dtype, TensorView};
use safetensors::SafeTensors;

use super::{Tensor, WeightMap};
use crate::{Error, Result};

/// Storage type for [`write_safetensors`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreDtype {
    F32,
    F16,
}

/// Read every tensor of a `.safetensors` file as f32 (F32, F16, BF16 and F64 are accepted).
pub fn read_safetensors(path: &Path) -> Result<WeightMap> {
    let file = File::open(path).map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
    // SAFETY: the map is read-only and lives only inside this function; a file truncated by another
    // process while we read it is the documented hazard of memmap2 and would at worst fail parsing.
    let mmap = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| Error::io(format!("mapping {}", path.display()), e))?;
    let st = SafeTensors::deserialize(&mmap)
        .map_err(|e| Error::ModelFormat(format!("{}: not a valid safetensors file: {e}", path.display())))?;
    let mut map = WeightMap::new();
    for (name, view) in st.iter() {
        let data = to_f32(view.dtype(), view.data())
            .map_err(|m| Error::ModelFormat(format!("{}: tensor {name}: {m}", path.display())))?;
        map.insert(name, Tensor::new(view.shape().to_vec(), data)?);
    }
    Ok(map)
}

fn to_f32(dtype: Dtype, bytes: &[u8]) -> std::result::Result<Vec<f32>, String> {
    Ok(match dtype {
        Dtype::F32 => bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect(),
        Dtype::F16 => bytes.chunks_exact(2).map(|c| f16::from_le_bytes([c[0], c[1]]).to_f32()).collect(),
        Dtype::BF16 => bytes.chunks_exact(2).map(|c| bf16::from_le_bytes([c[0], c[1]]).to_f32()).collect(),
        Dtype::F64 => bytes
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) as f32)
            .collect(),
        other => return Err(format!("unsupported dtype {other:?} (expected F32, F16, BF16 or F64)")),
    })
}

/// Write `weights` to a `.safetensors` file, stored as `dtype`, with optional string metadata
/// (`{"format": "pt"}` is what transformers writes and expects).
pub fn write_safetensors(
    weights: &WeightMap,
    path: &Path,
    dtype: StoreDtype,
    metadata: Option<HashMap<String, String>>,
) -> Result<()> {
    let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = weights
        .tensors
        .iter()
        .map(|(name, t)| {
            let b: Vec<u8> = match dtype {
                StoreDtype::F32 => t.data.iter().flat_map(|v| v.to_le_bytes()).collect(),
                StoreDtype::F16 => t.data.iter().flat_map(|v| f16::from_f32(*v).to_le_bytes()).collect(),
            };
            (name.clone(), t.shape.clone(), b)
        })
        .collect();
    let st_dtype = match dtype {
        StoreDtype::F32 => Dtype::F32,
        StoreDtype::F16 => Dtype::F16,
    };
    let mut views = Vec::with_capacity(bytes.len());
    for (name, shape, b) in &bytes {
        let v =
            TensorView::new(st_dtype, shape.clone(), b).map_err(|e| Error::Internal(format!("tensor {name}: {e}")))?;
        views.push((name.clone(), v));
    }
    safetensors::serialize_to_file(views, metadata, path)
        .map_err(|e| Error::ModelFormat(format!("writing {}: {e}", path.display())))?;
    // The crate creates the file owner-only (0600); a checkpoint is ordinary data (0644 minus umask
    // is what every other file of the folder gets).
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644))
            .map_err(|e| Error::io(format!("setting permissions of {}", path.display()), e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_f32_and_f16() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = WeightMap::new();
        w.insert("a.weight", Tensor::new(vec![2, 3], vec![1.0, -2.0, 0.5, 3.25, 0.0, -0.125]).unwrap());
        w.insert("b", Tensor::new(vec![1], vec![7.0]).unwrap());
        let p = dir.path().join("m.safetensors");
        write_safetensors(&w, &p, StoreDtype::F32, None).unwrap();
        assert_eq!(read_safetensors(&p).unwrap(), w);
        write_safetensors(&w, &p, StoreDtype::F16, None).unwrap();
        assert_eq!(read_safetensors(&p).unwrap(), w); // all values are exact in f16
    }

    #[test]
    fn garbage_is_model_format_error() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bad.safetensors");
        std::fs::write(&p, b"not a safetensors file").unwrap();
        assert_eq!(read_safetensors(&p).unwrap_err().code(), crate::Code::ModelFormat);
    }
}
