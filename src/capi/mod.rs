//! The `extern "C"` surface only (docs/c-abi.md): opaque handles, status codes,
//! owned error objects, versioned options structs and a panic boundary around every export.
//! The logic lives in [`crate::engine`]; this layer checks pointers and translates types.
//! `include/promptist.h` is generated from these files by cbindgen (see tests/capi_header.rs).
#![allow(non_camel_case_types)]

#[macro_use]
mod boundary;
mod callbacks;
mod cstr;
mod handle;

pub mod engine;
pub mod error;
pub mod limits;
pub mod options;
pub mod result;
pub mod score;
pub mod score_result;
pub mod status;
pub mod version;

pub use engine::promptist_engine;
pub use error::promptist_error;
pub use options::{promptist_engine_options, promptist_optimize_options, promptist_progress_fn};
pub use result::promptist_optimize_result;
pub use score::{promptist_score_options, promptist_score_result};
pub use status::{promptist_cpu_matmul, promptist_early_stopping, promptist_provider, promptist_stage, promptist_status, promptist_strategy};
