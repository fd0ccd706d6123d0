//! One ONNX Runtime graph (the score pipeline's text encoder, UNet, VAE decoder, CLIP towers) behind a
//! lock, fed by tensor name with the element types the file declares: float inputs are given as
//! f32 and converted to float16 when the graph (e.g. an fp16 optimum export) wants it; id inputs
//! are given as i64 and narrowed to int32 when wanted; float outputs come back as f32.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use half::f16;
use ort::session::{Session, SessionInputValue};
use ort::value::{Tensor, TensorElementType, ValueType};

use crate::runtime::{IoNames, ProviderKind, Runtime, SessionOptions};
use crate::{Error, Result};

/// What one input holds.
#[derive(Debug, Clone)]
pub enum Feed {
    Float { shape: Vec<usize>, data: Vec<f32> },
    Int { shape: Vec<usize>, data: Vec<i64> },
}

#[derive(Debug, Clone)]
struct InputInfo {
    name: String,
    ty: TensorElementType,
    /// Declared dims (-1 = dynamic).
    dims: Vec<i64>,
}

/// An ONNX graph loaded for inference; `run` serialises on the session lock.
pub struct Graph {
    session: Mutex<Session>,
    path: PathBuf,
    inputs: Vec<InputInfo>,
}

impl std::fmt::Debug for Graph {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Graph").field("path", &self.path).finish_non_exhaustive()
    }
}

/// A float output tensor: its shape and values.
#[derive(Debug, Clone)]
pub struct Output {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

impl Graph {
    /// Load `path` and check that its inputs are exactly `inputs` and its outputs include
    /// `outputs` (errors name the file and the tensor).
    pub fn load(rt: &Runtime, path: &Path, opts: &SessionOptions, inputs: &[&str], outputs: &[&str]) -> Result<(Graph, ProviderKind)> {
        let expect = IoNames::new(inputs.iter().copied(), outputs.iter().copied());
        let (session, kind) = rt.session(path, opts, Some(&expect))?;
        let mut infos = Vec::new();
        for i in session.inputs() {
            match i.dtype() {
                ValueType::Tensor { ty, shape, .. } => {
                    infos.push(InputInfo { name: i.name().to_string(), ty: *ty, dims: shape.iter().copied().collect() })
                }
                other => {
                    return Err(Error::ModelFormat(format!("{}: input `{}` is not a tensor ({other:?})", path.display(), i.name())))
                }
            }
        }
        for o in session.outputs() {
            if outputs.contains(&o.name()) {
                let ok = matches!(o.dtype().tensor_type(), Some(TensorElementType::Float32 | TensorElementType::Float16));
                if !ok {
                    return Err(Error::ModelFormat(format!(
                        "{}: output `{}` is {:?}, expected float32 or float16",
                        path.display(),
                        o.name(),
                        o.dtype()
                    )));
                }
            }
        }
        for info in &infos {
            let ok = matches!(
                info.ty,
                TensorElementType::Float32 | TensorElementType::Float16 | TensorElementType::Int64 | TensorElementType::Int32
            );
            if !ok {
                return Err(Error::ModelFormat(format!("{}: input `{}` has unsupported type {:?}", path.display(), info.name, info.ty)));
            }
        }
        Ok((Graph { session: Mutex::new(session), path: path.to_path_buf(), inputs: infos }, kind))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The declared dims of input `name` (-1 = dynamic), if it exists.
    pub fn input_dims(&self, name: &str) -> Option<&[i64]> {
        self.inputs.iter().find(|i| i.name == name).map(|i| i.dims.as_slice())
    }

    /// Check input `name`'s declared rank and fixed dims (`(axis, size)`; a dynamic dim passes);
    /// the error names the file and the tensor.
    pub fn expect_input_shape(&self, name: &str, rank: usize, fixed: &[(usize, i64)]) -> Result<()> {
        let dims = self
            .input_dims(name)
            .ok_or_else(|| Error::ModelFormat(format!("{} has no input tensor `{name}`", self.path.display())))?;
        let ok = dims.len() == rank && fixed.iter().all(|&(axis, size)| dims.get(axis).is_some_and(|&d| d < 0 || d == size));
        if ok {
            Ok(())
        } else {
            let want: Vec<String> = (0..rank)
                .map(|a| fixed.iter().find(|f| f.0 == a).map_or("?".to_string(), |f| f.1.to_string()))
                .collect();
            Err(Error::ModelFormat(format!(
                "{}: input tensor `{name}` has shape {dims:?}, expected [{}]",
                self.path.display(),
                want.join(", ")
            )))
        }
    }

    /// Run with `feeds` (one per graph input) and return the named float outputs in order.
    pub fn run(&self, feeds: &[(&str, Feed)], outputs: &[&str]) -> Result<Vec<Output>> {
        let mut values: Vec<SessionInputValue<'static>> = Vec::with_capacity(self.inputs.len());
        for info in &self.inputs {
            let feed = feeds
                .iter()
                .find(|(n, _)| *n == info.name)
                .map(|(_, f)| f)
                .ok_or_else(|| Error::Internal(format!("{}: no value for input `{}`", self.path.display(), info.name)))?;
            values.push(self.convert(info, feed)?);
        }
        let mut session = self.session.lock().unwrap_or_else(|p| p.into_inner());
        let out = session
            .run(values.as_slice())
            .map_err(|e| Error::Inference(format!("running {}: {e}", self.path.display())))?;
        let mut res = Vec::with_capacity(outputs.len());
        for name in outputs {
            let v = out
                .get(name)
                .ok_or_else(|| Error::Inference(format!("{} returned no `{name}`", self.path.display())))?;
            let (shape, data) = if let Ok((s, d)) = v.try_extract_tensor::<f32>() {
                (s.iter().map(|&x| x as usize).collect::<Vec<_>>(), d.to_vec())
            } else {
                let (s, d) = v.try_extract_tensor::<f16>()?;
                (s.iter().map(|&x| x as usize).collect::<Vec<_>>(), d.iter().map(|h| h.to_f32()).collect())
            };
            res.push(Output { shape, data });
        }
        Ok(res)
    }

    fn convert(&self, info: &InputInfo, feed: &Feed) -> Result<SessionInputValue<'static>> {
        let bad = |what: &str| Error::Internal(format!("{}: input `{}` ({:?}) fed {what}", self.path.display(), info.name, info.ty));
        Ok(match (feed, info.ty) {
            (Feed::Float { shape, data }, TensorElementType::Float32) => Tensor::from_array((shape.clone(), data.clone()))?.into(),
            (Feed::Float { shape, data }, TensorElementType::Float16) => {
                Tensor::from_array((shape.clone(), data.iter().map(|&x| f16::from_f32(x)).collect::<Vec<_>>()))?.into()
            }
            (Feed::Float { shape, data }, TensorElementType::Int64) => {
                Tensor::from_array((shape.clone(), data.iter().map(|&x| x as i64).collect::<Vec<_>>()))?.into()
            }
            (Feed::Int { shape, data }, TensorElementType::Int64) => Tensor::from_array((shape.clone(), data.clone()))?.into(),
            (Feed::Int { shape, data }, TensorElementType::Int32) => {
                let v = data
                    .iter()
                    .map(|&x| i32::try_from(x).map_err(|_| bad("an id outside int32")))
                    .collect::<Result<Vec<i32>>>()?;
                Tensor::from_array((shape.clone(), v))?.into()
            }
            (Feed::Float { .. }, _) => return Err(bad("floats")),
            (Feed::Int { .. }, _) => return Err(bad("integers")),
        })
    }
}
