//! The `promptist.json` manifest: format version, components with their configs, sha256 of every file.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The manifest's file name at the bundle root.
pub const MANIFEST_FILE: &str = "promptist.json";
/// The bundle format this library reads and writes.
pub const FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format_version: u32,
    /// A short name for the bundle (e.g. "promptist-demo").
    pub name: String,
    /// Human-readable description; says plainly when weights are random or synthetic.
    #[serde(default)]
    pub description: String,
    pub provenance: Provenance,
    /// Components by name: "policy" (GPT-2), later "text_encoder", "unet", "vae_decoder", "clip", "aesthetic".
    pub components: BTreeMap<String, Component>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    /// Where the weights came from (a checkpoint path/name, or "random seed N").
    pub source: String,
    /// What produced the bundle (e.g. "promptist 0.1.0 convert").
    pub producer: String,
    /// True when any component's weights are random (each component also says so for itself,
    /// `Component::random_weights`): outputs are meaningless and every front-end must say so.
    #[serde(default)]
    pub random_weights: bool,
    /// True when the weights were trained on synthetic data.
    #[serde(default)]
    pub synthetic_training_data: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Component {
    /// The component kind, e.g. "gpt2-policy".
    pub kind: String,
    /// The component's model config (for the policy: the Hugging Face GPT-2 `config.json` fields).
    #[serde(default)]
    pub config: serde_json::Value,
    /// Files by path relative to the bundle root (e.g. "policy/model.onnx").
    pub files: BTreeMap<String, FileEntry>,
    /// True when this component's weights are random. Absent in bundles written before
    /// provenance was per component: the bundle-wide `provenance.random_weights` then stands in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub random_weights: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Lower-case hex sha256 of the file's bytes.
    pub sha256: String,
    pub size: u64,
}
