//! Model bundle: a folder with a `promptist.json` manifest and one sub-folder per component
//! (layout in docs/bundle-format.md); opening validates the manifest, files and checksums.

pub(crate) mod checksum;
pub(crate) mod external_data;
pub mod layout;
pub mod load;
pub(crate) mod manifest;
pub mod policy;
pub mod writer;

pub use checksum::sha256_file;
pub use load::{check_files, read_manifest, Bundle, Checksums};
pub use manifest::{Component, FileEntry, Manifest, Provenance, FORMAT_VERSION, MANIFEST_FILE};
pub use policy::{PolicyConfig, PolicyFiles, POLICY, POLICY_CONFIG, POLICY_KIND, POLICY_MODEL, POLICY_TOKENIZER};
