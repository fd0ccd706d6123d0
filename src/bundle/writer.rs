//! Writing a model bundle: component folders plus the `promptist.json` manifest with the sha256 and
//! size of every file (layout in docs/bundle-format.md).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::path::{Component as PathComponent, Path, PathBuf};

use sha2::{Digest, Sha256};

use super::manifest::{Component, FileEntry, Manifest, Provenance, FORMAT_VERSION, MANIFEST_FILE};
use crate::{Error, Result};

/// sha256 (lower-case hex) and size of a file, streamed.
pub fn file_entry(path: &Path) -> Result<FileEntry> {
    let mut f = File::open(path).map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = f.read(&mut buf).map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        size += n as u64;
    }
    Ok(FileEntry { sha256: hex::encode(h.finalize()), size })
}

/// Builds a bundle folder; [`BundleWriter::finish`] writes the manifest last, so a folder without
/// `promptist.json` is an unfinished bundle.
#[derive(Debug)]
pub struct BundleWriter {
    root: PathBuf,
    manifest: Manifest,
}

impl BundleWriter {
    /// Start a bundle at `root` (created if missing; an existing manifest there is removed first).
    pub fn create(root: &Path, name: &str, description: &str, provenance: Provenance) -> Result<Self> {
        std::fs::create_dir_all(root).map_err(|e| Error::io(format!("creating {}", root.display()), e))?;
        let old = root.join(MANIFEST_FILE);
        if old.exists() {
            std::fs::remove_file(&old).map_err(|e| Error::io(format!("removing {}", old.display()), e))?;
        }
        let manifest = Manifest {
            format_version: FORMAT_VERSION,
            name: name.to_string(),
            description: description.to_string(),
            provenance,
            components: BTreeMap::new(),
        };
        Ok(Self { root: root.to_path_buf(), manifest })
    }

    /// Continue a finished bundle at `root` (its manifest is read and rewritten by
    /// [`BundleWriter::finish`]), e.g. to add the score components to a policy bundle.
    pub fn reopen(root: &Path) -> Result<Self> {
        let manifest = super::load::read_manifest(root)?;
        Ok(Self { root: root.to_path_buf(), manifest })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The manifest being written (its description and provenance may be amended).
    pub fn manifest_mut(&mut self) -> &mut Manifest {
        &mut self.manifest
    }

    /// The folder of component `name` (created), e.g. `<root>/policy`.
    pub fn component_dir(&self, name: &str) -> Result<PathBuf> {
        check_relative(name)?;
        let d = self.root.join(name);
        std::fs::create_dir_all(&d).map_err(|e| Error::io(format!("creating {}", d.display()), e))?;
        Ok(d)
    }

    /// Register a component whose files (paths relative to the bundle root, e.g.
    /// `policy/model.onnx`) are already written; hashes each file.
    pub fn add_component(&mut self, name: &str, kind: &str, config: serde_json::Value, files: &[&str]) -> Result<()> {
        let mut entries = BTreeMap::new();
        for rel in files {
            check_relative(rel)?;
            entries.insert(rel.to_string(), file_entry(&self.root.join(rel))?);
        }
        self.manifest.components.insert(name.to_string(), Component { kind: kind.to_string(), config, files: entries, random_weights: None });
        Ok(())
    }

    /// Record whether component `name`'s weights are random (per-component provenance); a random
    /// component also sets the bundle-wide flag, which older readers look at.
    pub fn mark_random(&mut self, name: &str, random: bool) -> Result<()> {
        if !self.manifest.components.contains_key(name) {
            return Err(Error::Internal(format!("no component {name} to mark")));
        }
        // Components from before per-component flags read the bundle-wide one: pin their value
        // before it changes, so a real policy does not turn "random" when random parts join it.
        let before = self.manifest.provenance.random_weights;
        for c in self.manifest.components.values_mut() {
            c.random_weights.get_or_insert(before);
        }
        if let Some(c) = self.manifest.components.get_mut(name) {
            c.random_weights = Some(random);
        }
        self.manifest.provenance.random_weights |= random;
        Ok(())
    }

    /// Write `promptist.json`; returns the manifest written.
    pub fn finish(self) -> Result<Manifest> {
        let path = self.root.join(MANIFEST_FILE);
        let text = serde_json::to_string_pretty(&self.manifest)
            .map_err(|e| Error::Internal(format!("serializing manifest: {e}")))?;
        std::fs::write(&path, text + "\n").map_err(|e| Error::io(format!("writing {}", path.display()), e))?;
        Ok(self.manifest)
    }
}

/// Bundle paths are relative, '/'-separated, without `..`.
fn check_relative(rel: &str) -> Result<()> {
    let p = Path::new(rel);
    let ok = !rel.is_empty() && !rel.contains('\\') && p.components().all(|c| matches!(c, PathComponent::Normal(_)));
    if ok {
        Ok(())
    } else {
        Err(Error::BundleInvalid(format!("bundle path {rel:?} must be relative without '..'")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_manifest_with_hashes() {
        let dir = tempfile::tempdir().unwrap();
        let prov = Provenance {
            source: "test".into(),
            producer: "unit".into(),
            random_weights: true,
            synthetic_training_data: false,
        };
        let mut w = BundleWriter::create(dir.path(), "t", "random", prov).unwrap();
        let d = w.component_dir("policy").unwrap();
        std::fs::write(d.join("a.txt"), b"abc").unwrap();
        w.add_component("policy", "gpt2-policy", serde_json::json!({"n_layer": 2}), &["policy/a.txt"]).unwrap();
        let m = w.finish().unwrap();
        let e = &m.components["policy"].files["policy/a.txt"];
        assert_eq!(e.size, 3);
        assert_eq!(e.sha256, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        let back: Manifest =
            serde_json::from_str(&std::fs::read_to_string(dir.path().join(MANIFEST_FILE)).unwrap()).unwrap();
        assert_eq!(back, m);
    }

    #[test]
    fn rejects_escaping_paths() {
        let dir = tempfile::tempdir().unwrap();
        let prov = Provenance {
            source: "s".into(),
            producer: "p".into(),
            random_weights: false,
            synthetic_training_data: false,
        };
        let mut w = BundleWriter::create(dir.path(), "t", "", prov).unwrap();
        assert!(w.add_component("x", "k", serde_json::Value::Null, &["../etc/passwd"]).is_err());
        assert!(w.component_dir("/abs").is_err());
    }
}
