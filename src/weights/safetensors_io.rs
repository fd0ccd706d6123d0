//! safetensors files (the Hugging Face format: an 8-byte little-endian header length, a JSON
//! header of dtype / shape / byte offsets per tensor, then the raw little-endian tensors), read
//! tensor by tensor with ordinary file reads and converted to f32; written as f32 or f16 with the
//! `safetensors` crate.
//!
//! Reading does not memory-map the file: a mapped file that shrinks while it is read raises
//! SIGBUS, which would kill the host process. With plain reads a short file is an error.

use std::collections::HashMap;
use std::fs::File;
use std::path::Path;

use half::{bf16, f16};
use safetensors::tensor::{Dtype, TensorView};

use super::{Tensor, WeightMap};
use crate::{Error, Result};

/// Storage type for [`write_safetensors`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreDtype {
    F32,
    F16,
}

/// Largest JSON header accepted (the format's own reference reader uses the same 100 MB cap).
const MAX_HEADER_BYTES: u64 = 100_000_000;

/// Read every tensor of a `.safetensors` file as f32 (F32, F16, BF16 and F64 are accepted).
/// Every offset is checked against the file's size before anything is allocated from it.
pub fn read_safetensors(path: &Path) -> Result<WeightMap> {
    use std::io::{Read, Seek, SeekFrom};
    let what = path.display();
    let bad = |m: String| Error::ModelFormat(format!("{what}: not a valid safetensors file: {m}"));
    let io = |e: std::io::Error| Error::io(format!("reading {what}"), e);
    let mut file = File::open(path).map_err(|e| Error::io(format!("opening {what}"), e))?;
    let file_len = file.metadata().map_err(io)?.len();
    let mut len8 = [0u8; 8];
    file.read_exact(&mut len8).map_err(|_| bad(format!("{file_len} bytes, too short for the header length")))?;
    let header_len = u64::from_le_bytes(len8);
    if header_len > MAX_HEADER_BYTES || header_len > file_len - 8 {
        return Err(bad(format!("header length {header_len} does not fit the file's {file_len} bytes")));
    }
    let mut header = vec![0u8; header_len as usize];
    file.read_exact(&mut header).map_err(io)?;
    let header: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&header).map_err(|e| bad(format!("header JSON: {e}")))?;
    let data_start = 8 + header_len;
    let data_len = file_len - data_start;
    let mut map = WeightMap::new();
    for (name, v) in &header {
        if name == "__metadata__" {
            continue;
        }
        let entry: HeaderEntry = serde_json::from_value(v.clone()).map_err(|e| bad(format!("tensor {name}: {e}")))?;
        let elem = match entry.dtype.as_str() {
            "F32" => 4,
            "F16" | "BF16" => 2,
            "F64" => 8,
            other => return Err(bad(format!("tensor {name}: unsupported dtype {other} (expected F32, F16, BF16 or F64)"))),
        };
        let [begin, end] = entry.data_offsets;
        let numel = entry.shape.iter().try_fold(1u64, |a, &d| a.checked_mul(d)).ok_or_else(|| bad(format!("tensor {name}: shape overflows")))?;
        if begin > end || end > data_len || numel.checked_mul(elem) != Some(end - begin) {
            return Err(bad(format!(
                "tensor {name}: bytes {begin}..{end} do not hold {numel} {} values inside the {data_len} data bytes",
                entry.dtype
            )));
        }
        let mut bytes = Vec::new();
        bytes.try_reserve_exact((end - begin) as usize).map_err(|_| bad(format!("tensor {name}: {} bytes cannot be allocated", end - begin)))?;
        file.seek(SeekFrom::Start(data_start + begin)).map_err(io)?;
        (&mut file).take(end - begin).read_to_end(&mut bytes).map_err(io)?;
        if bytes.len() as u64 != end - begin {
            return Err(bad(format!("tensor {name}: the file ended early (it shrank while being read?)")));
        }
        let dtype = match entry.dtype.as_str() {
            "F32" => Dtype::F32,
            "F16" => Dtype::F16,
            "BF16" => Dtype::BF16,
            _ => Dtype::F64,
        };
        let data = to_f32(dtype, &bytes).map_err(|m| bad(format!("tensor {name}: {m}")))?;
        let shape = entry.shape.iter().map(|&d| d as usize).collect();
        map.insert(name.as_str(), Tensor::new(shape, data)?);
    }
    Ok(map)
}

/// One tensor of a safetensors header.
#[derive(serde::Deserialize)]
struct HeaderEntry {
    dtype: String,
    shape: Vec<u64>,
    data_offsets: [u64; 2],
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
    // A failed write (a full disk, no permission) is an I/O error, not a format problem.
    safetensors::serialize_to_file(views, metadata, path).map_err(|e| match e {
        safetensors::SafeTensorError::IoError(io) => Error::io(format!("writing {}", path.display()), io),
        other => Error::ModelFormat(format!("writing {}: {other}", path.display())),
    })?;
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

    #[test]
    fn truncated_files_are_errors_not_signals() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = WeightMap::new();
        w.insert("a", Tensor::new(vec![64, 64], vec![0.5; 4096]).unwrap());
        let p = dir.path().join("m.safetensors");
        write_safetensors(&w, &p, StoreDtype::F32, None).unwrap();
        let full = std::fs::metadata(&p).unwrap().len();
        // Every cut: inside the tensor data, inside the header, inside the length prefix, empty.
        for keep in [full - 1, full - 4096, 100, 20, 9, 4, 0] {
            let f = std::fs::OpenOptions::new().write(true).open(&p).unwrap();
            f.set_len(keep).unwrap();
            drop(f);
            let e = read_safetensors(&p).unwrap_err();
            assert_eq!(e.code(), crate::Code::ModelFormat, "cut at {keep}: {e}");
        }
        // A header whose offsets point past the data.
        let header = br#"{"a":{"dtype":"F32","shape":[1000000000,1000000000],"data_offsets":[0,4]}}"#;
        let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
        bytes.extend_from_slice(header);
        bytes.extend_from_slice(&[0; 4]);
        std::fs::write(&p, bytes).unwrap();
        assert!(read_safetensors(&p).unwrap_err().to_string().contains("do not hold"));
    }
}
