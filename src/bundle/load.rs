//! Opening a bundle: read `promptist.json`, check its format version, that every listed file
//! exists with the listed size and sha256, and that the components the library knows are complete.

use std::path::{Component as PathPart, Path, PathBuf};

use super::checksum::sha256_file;
use super::manifest::{Component, Manifest, FORMAT_VERSION, MANIFEST_FILE};
use super::policy::{PolicyConfig, PolicyFiles, POLICY, POLICY_CONFIG, POLICY_MODEL, POLICY_TOKENIZER};
use crate::error::{Error, Result};

/// Whether to hash every file at open (sizes are always checked).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Checksums {
    #[default]
    Verify,
    Skip,
}

/// A validated bundle on disk.
#[derive(Debug, Clone)]
pub struct Bundle {
    root: PathBuf,
    manifest: Manifest,
    policy: Option<PolicyFiles>,
}

/// Largest `promptist.json` read (a real one is a few kB; configs included, well under 1 MB).
const MAX_MANIFEST_BYTES: u64 = 16 << 20;

/// The kind a known component must have; `None` for a name this library does not know.
fn expected_kind(component: &str) -> Option<&'static str> {
    if component == POLICY {
        return Some(super::policy::POLICY_KIND);
    }
    super::layout::SCORE_COMPONENTS.contains(&component).then(|| super::layout::kind_of(component))
}

/// The files each known component must list (relative to the bundle root).
fn required_files(component: &str) -> &'static [&'static str] {
    match component {
        POLICY => &[POLICY_MODEL, POLICY_TOKENIZER, POLICY_CONFIG],
        _ => &[],
    }
}

impl Bundle {
    /// Open and validate the bundle at `root` (see the module doc). Errors: BundleNotFound when
    /// `root` is not a folder, BundleInvalid naming the manifest problem or missing file/component,
    /// BundleChecksum naming a file whose bytes differ from the manifest.
    pub fn open(root: &Path, checksums: Checksums) -> Result<Bundle> {
        let manifest = read_manifest(root)?;
        if let Some(problem) = check_files(root, &manifest, checksums).into_iter().next() {
            return Err(problem);
        }
        let policy = match manifest.components.get(POLICY) {
            Some(c) => Some(policy_files(root, c)?),
            None => None,
        };
        Ok(Bundle {
            root: root.to_path_buf(),
            manifest,
            policy,
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// A component by name, or NotInBundle.
    pub fn component(&self, name: &str) -> Result<&Component> {
        self.manifest.components.get(name).ok_or_else(|| {
            Error::NotInBundle(format!(
                "the bundle at {} has no `{name}` component (it has: {})",
                self.root.display(),
                self.manifest.components.keys().cloned().collect::<Vec<_>>().join(", ")
            ))
        })
    }

    pub fn has_component(&self, name: &str) -> bool {
        self.manifest.components.contains_key(name)
    }

    /// The absolute path of a file listed by a component, or NotInBundle / BundleInvalid.
    pub fn file(&self, component: &str, rel: &str) -> Result<PathBuf> {
        let c = self.component(component)?;
        if !c.files.contains_key(rel) {
            return Err(Error::BundleInvalid(format!(
                "component `{component}` does not list `{rel}`"
            )));
        }
        Ok(self.root.join(rel))
    }

    /// The policy's files and config (what `optimize` needs), or NotInBundle.
    pub fn policy(&self) -> Result<&PolicyFiles> {
        match &self.policy {
            Some(p) => Ok(p),
            // An engine cannot run without the policy: a broken bundle, not a missing option.
            None => Err(Error::BundleInvalid(format!(
                "the bundle at {} has no `{POLICY}` component, which every engine needs (it has: {})",
                self.root.display(),
                if self.manifest.components.is_empty() {
                    "none".to_string()
                } else {
                    self.manifest.components.keys().cloned().collect::<Vec<_>>().join(", ")
                }
            ))),
        }
    }

    /// True when any component's weights are random (the bundle-wide flag).
    pub fn random_weights(&self) -> bool {
        self.manifest.provenance.random_weights
    }

    /// True when component `name` has random weights: its own flag, else (a bundle written before
    /// provenance was per component) the bundle-wide one. False for a component it lacks.
    pub fn component_is_random(&self, name: &str) -> bool {
        self.manifest.components.get(name).is_some_and(|c| c.random_weights.unwrap_or(self.manifest.provenance.random_weights))
    }
}

/// Read and parse `root/promptist.json` and check its format version.
pub fn read_manifest(root: &Path) -> Result<Manifest> {
    if !root.is_dir() {
        return Err(Error::BundleNotFound(root.to_path_buf()));
    }
    let path = root.join(MANIFEST_FILE);
    match std::fs::metadata(&path) {
        Ok(m) if m.is_file() && m.len() <= MAX_MANIFEST_BYTES => {}
        Ok(m) if m.is_file() => {
            return Err(Error::BundleInvalid(format!(
                "{}: {} bytes, more than a manifest may have ({MAX_MANIFEST_BYTES})",
                path.display(),
                m.len()
            )))
        }
        Ok(_) => return Err(Error::BundleInvalid(format!("{} is not a file", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::BundleInvalid(format!("{} has no {MANIFEST_FILE}", root.display())))
        }
        // Permission and other I/O problems name the cause (an unreadable folder is not a folder
        // without a manifest).
        Err(e) => return Err(Error::io(format!("reading {}", path.display()), e)),
    }
    let bytes = std::fs::read(&path).map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
    let text = String::from_utf8(bytes)
        .map_err(|e| Error::BundleInvalid(format!("{}: not UTF-8 text ({e})", path.display())))?;
    // The version first, so a future format gets a version error rather than a field error.
    let v: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| Error::BundleInvalid(format!("{}: not valid JSON: {e}", path.display())))?;
    match v.get("format_version").and_then(serde_json::Value::as_u64) {
        Some(n) if n == u64::from(FORMAT_VERSION) => {}
        Some(n) => {
            return Err(Error::BundleInvalid(format!(
                "{}: format_version {n} is not supported (this library reads {FORMAT_VERSION})",
                path.display()
            )))
        }
        None => {
            return Err(Error::BundleInvalid(format!(
                "{}: no numeric format_version",
                path.display()
            )))
        }
    }
    serde_json::from_value(v).map_err(|e| Error::BundleInvalid(format!("{}: {e}", path.display())))
}

/// Every problem with the listed files (empty when the bundle is sound): first the layout problems
/// (unsafe or missing paths, known components missing required files), then the corrupt files
/// (sizes, and unless skipped sha256 digests), each group in manifest order.
pub fn check_files(root: &Path, manifest: &Manifest, checksums: Checksums) -> Vec<Error> {
    let mut problems = Vec::new();
    // Listed files must stay inside the bundle after symlinks are resolved, not only lexically.
    let real_root = match std::fs::canonicalize(root) {
        Ok(r) => r,
        Err(e) => return vec![Error::io(format!("resolving {}", root.display()), e)],
    };
    for (name, comp) in &manifest.components {
        match expected_kind(name) {
            None => problems.push(Error::BundleInvalid(format!(
                "unknown component `{name}` (kind `{}`): this library reads {POLICY}, {}",
                comp.kind,
                super::layout::SCORE_COMPONENTS.join(", ")
            ))),
            Some(k) if k != comp.kind => problems.push(Error::BundleInvalid(format!(
                "component `{name}` has kind `{}`, expected `{k}`",
                comp.kind
            ))),
            Some(_) => {}
        }
        for req in required_files(name) {
            if !comp.files.contains_key(*req) {
                problems.push(Error::BundleInvalid(format!(
                    "component `{name}` does not list its file `{req}`"
                )));
            }
        }
        for (rel, entry) in &comp.files {
            if !is_safe_relative(rel) {
                problems.push(Error::BundleInvalid(format!(
                    "component `{name}`: file path `{rel}` leaves the bundle"
                )));
                continue;
            }
            let path = root.join(rel);
            if let Ok(real) = std::fs::canonicalize(&path) {
                if !real.starts_with(&real_root) {
                    problems.push(Error::BundleInvalid(format!(
                        "component `{name}`: file `{rel}` resolves to {}, outside the bundle (a symlink)",
                        real.display()
                    )));
                    continue;
                }
            }
            let meta = match std::fs::metadata(&path) {
                Ok(m) if m.is_file() => m,
                _ => {
                    problems.push(Error::BundleInvalid(format!(
                        "component `{name}`: file `{rel}` is missing"
                    )));
                    continue;
                }
            };
            let size_ok = meta.len() == entry.size;
            if size_ok && checksums == Checksums::Skip {
                continue;
            }
            match sha256_file(&path) {
                Ok((sha, size)) if size == entry.size && sha.eq_ignore_ascii_case(&entry.sha256) => {}
                Ok((sha, size)) => problems.push(Error::BundleChecksum {
                    path: path.clone(),
                    expected: format!("{} ({} bytes)", entry.sha256, entry.size),
                    actual: format!("{sha} ({size} bytes)"),
                }),
                Err(e) => problems.push(e),
            }
        }
    }
    // ONNX graphs name their external data themselves: those names get the same checks before
    // ONNX Runtime ever opens a graph (only once every listed file is sound).
    if problems.is_empty() {
        let listed: std::collections::HashSet<&str> = manifest.components.values().flat_map(|c| c.files.keys().map(String::as_str)).collect();
        for comp in manifest.components.values() {
            for rel in comp.files.keys().filter(|r| r.ends_with(".onnx")) {
                if let Err(e) = super::external_data::check_model(root, &real_root, rel, &listed) {
                    problems.push(e);
                }
            }
        }
    }
    problems.sort_by_key(|e| e.code() != crate::error::Code::BundleInvalid);
    problems
}

fn is_safe_relative(rel: &str) -> bool {
    let p = Path::new(rel);
    !rel.is_empty() && p.components().all(|c| matches!(c, PathPart::Normal(_)))
}

fn policy_files(root: &Path, c: &Component) -> Result<PolicyFiles> {
    let config_file = root.join(POLICY_CONFIG);
    let from_file = PolicyConfig::from_file(&config_file)?;
    let has_manifest_cfg = c.config.as_object().is_some_and(|o| !o.is_empty());
    if has_manifest_cfg {
        let from_manifest = PolicyConfig::from_json(&c.config, "promptist.json components.policy.config")?;
        if from_manifest != from_file {
            return Err(Error::BundleInvalid(format!(
                "the policy config in {MANIFEST_FILE} ({from_manifest:?}) differs from {POLICY_CONFIG} ({from_file:?})"
            )));
        }
    }
    Ok(PolicyFiles {
        model: root.join(POLICY_MODEL),
        tokenizer: root.join(POLICY_TOKENIZER),
        config_file,
        config: from_file,
    })
}
