//! Model bundle: a folder with a `promptist.json` manifest and one sub-folder per component
//! (layout in DESIGN.md, "The model bundle").

pub mod manifest;
pub mod writer;

pub use manifest::{Component, FileEntry, Manifest, Provenance, FORMAT_VERSION, MANIFEST_FILE};
