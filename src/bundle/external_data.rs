//! ONNX external data (the `location` / `offset` / `length` entries of a `TensorProto` whose
//! `data_location` is EXTERNAL, as the ONNX IR's "External tensor data" section defines them),
//! parsed with every number checked, and the bundle check that runs before ONNX Runtime opens a
//! graph: each location is a plain relative path that, after symlinks are resolved, stays inside
//! the bundle, names a file the manifest lists (so its bytes were hashed), and holds the byte range
//! the tensor claims (docs/bundle-format.md, "Opening and validation").

use std::collections::HashSet;
use std::path::{Component, Path, PathBuf};

use onnx_protobuf::tensor_proto::{DataLocation, DataType};
use onnx_protobuf::{GraphProto, ModelProto, TensorProto};
use protobuf::Message;

use crate::{Error, Result};

/// Largest ONNX file parsed at open (protobuf's own limit is 2 GiB).
const MAX_ONNX_BYTES: u64 = 2 << 30;

/// Where one external tensor's bytes are: `location` relative to the model's folder.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ExternalRef {
    pub location: String,
    pub offset: u64,
    pub length: u64,
}

/// True when `t` keeps its data in an external file.
pub(crate) fn is_external(t: &TensorProto) -> bool {
    t.data_location.enum_value_or_default() == DataLocation::EXTERNAL
}

fn element_size(data_type: i32) -> u64 {
    match data_type {
        x if x == DataType::DOUBLE as i32 || x == DataType::INT64 as i32 || x == DataType::UINT64 as i32 || x == DataType::COMPLEX64 as i32 => 8,
        x if x == DataType::COMPLEX128 as i32 => 16,
        x if x == DataType::FLOAT as i32 || x == DataType::INT32 as i32 || x == DataType::UINT32 as i32 => 4,
        x if x == DataType::FLOAT16 as i32 || x == DataType::BFLOAT16 as i32 || x == DataType::INT16 as i32 || x == DataType::UINT16 as i32 => 2,
        _ => 1,
    }
}

impl ExternalRef {
    /// The external reference of `t` (an EXTERNAL tensor). The location must be relative and
    /// plain (no `..`, no root); offset and length must be numbers; a missing length is the
    /// tensor's element count times its element size, computed without overflow.
    pub(crate) fn parse(t: &TensorProto) -> Result<ExternalRef> {
        let bad = |m: String| Error::ModelFormat(format!("initializer `{}`: {m}", t.name));
        let get = |key: &str| t.external_data.iter().find(|e| e.key == key).map(|e| e.value.as_str());
        let location = get("location").ok_or_else(|| bad("external data without a location".into()))?;
        let rel = Path::new(location);
        if location.is_empty() || location.contains('\\') || rel.components().any(|c| !matches!(c, Component::Normal(_))) {
            return Err(bad(format!("external data location {location:?} leaves the model's folder")));
        }
        let num = |key: &str| -> Result<Option<u64>> {
            get(key).map(|v| v.parse::<u64>().map_err(|_| bad(format!("external data {key} {v:?} is not a byte count")))).transpose()
        };
        let offset = num("offset")?.unwrap_or(0);
        let length = match num("length")? {
            Some(l) => l,
            None => {
                let mut n = element_size(t.data_type);
                for &d in &t.dims {
                    let d = u64::try_from(d).map_err(|_| bad(format!("negative dimension {d}")))?;
                    n = n.checked_mul(d).ok_or_else(|| bad(format!("dimensions {:?} overflow", t.dims)))?;
                }
                n
            }
        };
        offset.checked_add(length).ok_or_else(|| bad(format!("external data offset {offset} + length {length} overflows")))?;
        Ok(ExternalRef { location: location.to_string(), offset, length })
    }

    /// The file this reference names, for a model in `dir`; errors when the byte range is not
    /// inside the file (checked before a buffer of `length` bytes is made).
    pub(crate) fn checked_file(&self, dir: &Path, tensor: &str) -> Result<PathBuf> {
        let path = dir.join(&self.location);
        let meta = std::fs::metadata(&path).map_err(|e| Error::io(format!("initializer `{tensor}`: external data {}", path.display()), e))?;
        if self.offset + self.length > meta.len() {
            return Err(Error::ModelFormat(format!(
                "initializer `{tensor}`: bytes {}..{} of {} are past its end ({} bytes)",
                self.offset,
                self.offset + self.length,
                path.display(),
                meta.len()
            )));
        }
        Ok(path)
    }
}

fn graph_tensors<'a>(g: &'a GraphProto, out: &mut Vec<&'a TensorProto>) {
    out.extend(g.initializer.iter());
    for n in &g.node {
        for a in &n.attribute {
            out.extend(a.t.as_ref());
            out.extend(a.tensors.iter());
            if let Some(sub) = a.g.as_ref() {
                graph_tensors(sub, out);
            }
            for sub in &a.graphs {
                graph_tensors(sub, out);
            }
        }
    }
}

/// Check every external-data reference of the ONNX file `rel` (a manifest path) of the bundle at
/// `root` (`real_root` its resolved path; `listed` every manifest path): see the module doc.
pub(crate) fn check_model(root: &Path, real_root: &Path, rel: &str, listed: &HashSet<&str>) -> Result<()> {
    let invalid = |m: String| Error::BundleInvalid(format!("`{rel}`: {m}"));
    let plain = |e: Error| match e {
        Error::ModelFormat(m) => m,
        other => other.to_string(),
    };
    let path = root.join(rel);
    let size = std::fs::metadata(&path).map_err(|e| Error::io(format!("reading {}", path.display()), e))?.len();
    if size > MAX_ONNX_BYTES {
        return Err(invalid(format!("{size} bytes, more than an ONNX file can hold ({MAX_ONNX_BYTES})")));
    }
    let bytes = std::fs::read(&path).map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
    // Not an ONNX model: ONNX Runtime reports that itself, with its own words, when it opens it.
    let Ok(model) = ModelProto::parse_from_bytes(&bytes) else { return Ok(()) };
    drop(bytes);
    let Some(graph) = model.graph.as_ref() else { return Ok(()) };
    let mut tensors = Vec::new();
    graph_tensors(graph, &mut tensors);
    let dir_rel = Path::new(rel).parent().unwrap_or(Path::new(""));
    let dir = root.join(dir_rel);
    for t in tensors.into_iter().filter(|t| is_external(t)) {
        let r = ExternalRef::parse(t).map_err(|e| invalid(plain(e)))?;
        let target = dir.join(&r.location);
        let real = std::fs::canonicalize(&target).map_err(|e| invalid(format!("initializer `{}`: external data {}: {e}", t.name, target.display())))?;
        if !real.starts_with(real_root) {
            return Err(invalid(format!("initializer `{}`: external data {} resolves to {}, outside the bundle", t.name, r.location, real.display())));
        }
        let listed_as = dir_rel.join(&r.location);
        let listed_as = listed_as.to_str().unwrap_or_default().replace('\\', "/");
        if !listed.contains(listed_as.as_str()) {
            return Err(invalid(format!(
                "initializer `{}`: external data file `{listed_as}` is not listed in the manifest (so it was never hashed)",
                t.name
            )));
        }
        r.checked_file(&dir, &t.name).map_err(|e| invalid(plain(e)))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use onnx_protobuf::StringStringEntryProto;

    fn tensor(entries: &[(&str, &str)], dims: &[i64]) -> TensorProto {
        let mut t = TensorProto::new();
        t.name = "w".into();
        t.data_type = DataType::FLOAT as i32;
        t.dims = dims.to_vec();
        t.data_location = DataLocation::EXTERNAL.into();
        for (k, v) in entries {
            let mut e = StringStringEntryProto::new();
            e.key = (*k).into();
            e.value = (*v).into();
            t.external_data.push(e);
        }
        t
    }

    #[test]
    fn locations_and_numbers_are_checked() {
        let ok = ExternalRef::parse(&tensor(&[("location", "model.onnx_data"), ("offset", "16")], &[2, 3])).unwrap();
        assert_eq!(ok, ExternalRef { location: "model.onnx_data".into(), offset: 16, length: 24 });
        for loc in ["../x", "/etc/passwd", "a/../../b", "", "a\\b", "./x"] {
            let e = ExternalRef::parse(&tensor(&[("location", loc)], &[1])).unwrap_err();
            assert!(e.to_string().contains("leaves the model's folder"), "{loc}: {e}");
        }
        assert!(ExternalRef::parse(&tensor(&[("location", "d"), ("offset", "-1")], &[1])).is_err());
        assert!(ExternalRef::parse(&tensor(&[("location", "d"), ("length", "1e9")], &[1])).is_err());
        assert!(ExternalRef::parse(&tensor(&[("location", "d")], &[-1])).is_err());
        assert!(ExternalRef::parse(&tensor(&[("location", "d")], &[i64::MAX, i64::MAX])).is_err());
        assert!(ExternalRef::parse(&tensor(&[("location", "d"), ("offset", &u64::MAX.to_string()), ("length", "1")], &[1])).is_err());
        assert!(ExternalRef::parse(&tensor(&[], &[1])).is_err());
    }

    #[test]
    fn a_range_past_the_file_end_is_refused_before_reading() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("d"), [0u8; 100]).unwrap();
        let r = ExternalRef::parse(&tensor(&[("location", "d"), ("offset", "90"), ("length", "10")], &[1])).unwrap();
        assert!(r.checked_file(dir.path(), "w").is_ok());
        let r = ExternalRef::parse(&tensor(&[("location", "d"), ("offset", "90"), ("length", "1000000000000")], &[1])).unwrap();
        let e = r.checked_file(dir.path(), "w").unwrap_err();
        assert!(e.to_string().contains("past its end"), "{e}");
    }
}
