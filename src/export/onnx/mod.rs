//! ONNX writer: a reusable graph builder over the `onnx-protobuf` messages (onnx.proto) and a
//! saver with external data. Every graph builder in `crate::export` (GPT-2 now; CLIP, UNet, VAE,
//! aesthetic later) is written against this API.

pub(crate) mod graph;
pub(crate) mod save;
pub(crate) mod tensor;

pub use graph::{attr, value_info, Attr, AttrValue, Dim, GraphBuilder, Model, DEFAULT_IR_VERSION, DEFAULT_OPSET};
pub use save::{external_data_name, save_model, to_bytes_inline, to_proto_inline, SaveOptions, SavedModel};
pub use tensor::{DType, TensorData, TensorValues};
