//! Shared pieces of the fuzz targets: the template bundle (a tiny random bundle with score
//! components, made by `tests/fuzz/run.sh` and named by `PROMPTIST_FUZZ_BUNDLE`), a per-process
//! working copy of it that targets may overwrite, manifest rewriting so a mutated file still
//! matches its checksum, and a byte reader for building option values from fuzz input.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The template bundle folder (`PROMPTIST_FUZZ_BUNDLE`). The harness stops with a message when it
/// is not set: every target but `tokenizers` needs it.
pub fn template_bundle() -> &'static Path {
    static T: OnceLock<PathBuf> = OnceLock::new();
    T.get_or_init(|| match std::env::var_os("PROMPTIST_FUZZ_BUNDLE") {
        Some(p) if Path::new(&p).join("promptist.json").is_file() => PathBuf::from(p),
        _ => {
            eprintln!("PROMPTIST_FUZZ_BUNDLE must name a bundle folder (tests/fuzz/run.sh makes one)");
            std::process::exit(2);
        }
    })
}

/// A fresh private folder for this process under the system temp folder.
pub fn scratch_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("promptist-fuzz-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("creating the scratch folder");
    d
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read_dir") {
        let e = e.expect("dir entry");
        let dst = to.join(e.file_name());
        if e.file_type().expect("file type").is_dir() {
            copy_tree(&e.path(), &dst);
        } else {
            std::fs::copy(e.path(), &dst).expect("copy");
        }
    }
}

/// A working copy of the template bundle in `dir`, restored to the template's bytes (only the
/// files listed in `restore`, plus the manifest, are copied again after the first call).
pub fn working_bundle(dir: &Path, restore: &[&str]) -> PathBuf {
    let b = dir.join("bundle");
    if !b.join("promptist.json").is_file() {
        copy_tree(template_bundle(), &b);
    } else {
        for rel in restore.iter().chain(std::iter::once(&"promptist.json")) {
            std::fs::copy(template_bundle().join(rel), b.join(rel)).expect("restore");
        }
    }
    b
}

/// Every file the template's manifest lists, sorted (component, path).
pub fn manifest_files() -> &'static [(String, String)] {
    static F: OnceLock<Vec<(String, String)>> = OnceLock::new();
    F.get_or_init(|| {
        let m: serde_json::Value = serde_json::from_slice(&std::fs::read(template_bundle().join("promptist.json")).expect("read manifest")).expect("parse manifest");
        let mut out = Vec::new();
        for (cname, c) in m["components"].as_object().expect("components") {
            for rel in c["files"].as_object().expect("files").keys() {
                out.push((cname.clone(), rel.clone()));
            }
        }
        out.sort();
        out
    })
}

/// Replace `rel` (a manifest path) in `bundle` with `bytes`, and when `rehash` make the manifest's
/// sha256 and size match them, so the loader gets past the checksum to the content.
pub fn replace_file(bundle: &Path, component: &str, rel: &str, bytes: &[u8], rehash: bool) {
    std::fs::write(bundle.join(rel), bytes).expect("write mutated file");
    if !rehash {
        return;
    }
    let mpath = bundle.join("promptist.json");
    let mut m: serde_json::Value = serde_json::from_slice(&std::fs::read(&mpath).expect("read manifest")).expect("parse manifest");
    // The library's own entry for the file just written (one definition of sha256 and size).
    let entry = promptist::bundle::writer::file_entry(&bundle.join(rel)).expect("hash");
    m["components"][component]["files"][rel] = serde_json::json!({ "sha256": entry.sha256, "size": entry.size });
    std::fs::write(&mpath, serde_json::to_vec(&m).expect("manifest json")).expect("write manifest");
}

/// Reads option values out of fuzz input; past the end it yields zeros.
pub struct Bytes<'a> {
    data: &'a [u8],
}

impl<'a> Bytes<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Bytes { data }
    }
    pub fn u8(&mut self) -> u8 {
        match self.data.split_first() {
            Some((b, rest)) => {
                self.data = rest;
                *b
            }
            None => 0,
        }
    }
    pub fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }
    pub fn u64(&mut self) -> u64 {
        u64::from(self.u32()) | (u64::from(self.u32()) << 32)
    }
    pub fn f32(&mut self) -> f32 {
        f32::from_bits(self.u32())
    }
    /// Whatever input is left.
    pub fn rest(self) -> &'a [u8] {
        self.data
    }
}
