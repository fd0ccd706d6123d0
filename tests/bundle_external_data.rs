//! Hostile ONNX external data (docs/bundle-format.md, "Opening and validation"): a policy graph
//! whose initializer points outside the model folder, through a symlink out of the bundle, at a
//! file the manifest does not list, or past the end of its data file is refused with
//! BUNDLE_INVALID at open, before ONNX Runtime reads anything; and a sound bundle on a read-only
//! mount opens and runs. Tiny random bundles; the read-only case needs ORT_DYLIB_PATH and root
//! (a bind mount), and reports itself skipped without them.

mod common;

use std::path::{Path, PathBuf};

use onnx_protobuf::tensor_proto::DataLocation;
use onnx_protobuf::{ModelProto, StringStringEntryProto};
use promptist::bundle::{sha256_file, Bundle, Checksums, FileEntry};
use promptist::Code;
use protobuf::Message;

fn bundle(dir: &Path) -> PathBuf {
    let ck = dir.join("ck");
    let cfg = promptist::export::Gpt2Config::preset("tiny").unwrap();
    promptist::export::write_random_checkpoint(&ck, &cfg, 4, promptist::export::tiny::LmHead::Untied { scale: promptist::export::tiny::DEFAULT_SCALE }).unwrap();
    let b = dir.join("bundle");
    promptist::export::convert_checkpoint(&ck, &b, &promptist::export::ConvertOptions::default(), &mut |_| {}).unwrap();
    b
}

/// Rewrite the external-data entries of the policy graph's first external initializer with `edit`,
/// and make the manifest's checksum of `policy/model.onnx` match the new bytes (so only the
/// external-data check can object).
fn edit_first_external(b: &Path, edit: impl FnOnce(&mut Vec<StringStringEntryProto>)) -> String {
    let p = b.join("policy/model.onnx");
    let mut m = ModelProto::parse_from_bytes(&std::fs::read(&p).unwrap()).unwrap();
    let g = m.graph.as_mut().unwrap();
    let t = g.initializer.iter_mut().find(|t| t.data_location.enum_value_or_default() == DataLocation::EXTERNAL).expect("an external initializer");
    edit(&mut t.external_data);
    let name = t.name.clone();
    std::fs::write(&p, m.write_to_bytes().unwrap()).unwrap();
    relist(b, "policy", "policy/model.onnx");
    name
}

fn set(entries: &mut Vec<StringStringEntryProto>, key: &str, value: &str) {
    entries.retain(|e| e.key != key);
    let mut e = StringStringEntryProto::new();
    e.key = key.into();
    e.value = value.into();
    entries.push(e);
}

/// List (or re-hash) `rel` in component `comp` of the bundle's manifest.
fn relist(b: &Path, comp: &str, rel: &str) {
    let mp = b.join("promptist.json");
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&mp).unwrap()).unwrap();
    let (sha256, size) = sha256_file(&b.join(rel)).unwrap();
    v["components"][comp]["files"][rel] = serde_json::to_value(FileEntry { sha256, size }).unwrap();
    std::fs::write(&mp, serde_json::to_vec_pretty(&v).unwrap()).unwrap();
}

fn refused(b: &Path, expect: &str) -> String {
    let e = Bundle::open(b, Checksums::Verify).expect_err("a hostile external-data reference must be refused");
    assert_eq!(e.code(), Code::BundleInvalid, "{e}");
    let msg = e.to_string();
    assert!(msg.contains(expect) && msg.contains("policy/model.onnx"), "expected {expect:?} in: {msg}");
    msg
}

#[test]
fn hostile_external_data_is_refused_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let b = bundle(dir.path());
    Bundle::open(&b, Checksums::Verify).expect("the sound bundle opens");
    let data = b.join("policy/model.onnx_data");
    let size = std::fs::metadata(&data).unwrap().len();
    let fresh = |tag: &str| {
        let c = dir.path().join(tag);
        let status = std::process::Command::new("cp").arg("-a").arg(&b).arg(&c).status().unwrap();
        assert!(status.success());
        c
    };

    // 1. Lexically out of the model folder (and absolute).
    for loc in ["../../outside.bin", "/etc/hostname"] {
        let c = fresh(&format!("lexical{}", loc.len()));
        edit_first_external(&c, |e| set(e, "location", loc));
        refused(&c, "leaves the model's folder");
    }

    // 2. Through a symlink that leads out of the bundle, even when the manifest lists it with the
    // outside file's checksum.
    let c = fresh("symlink");
    let outside = dir.path().join("outside.bin");
    std::fs::copy(&data, &outside).unwrap();
    std::os::unix::fs::symlink(&outside, c.join("policy/link.bin")).unwrap();
    relist(&c, "policy", "policy/link.bin");
    Bundle::open(&c, Checksums::Verify).map(|_| ()).map_err(|e| e.to_string()).expect_err("the listed symlink itself is refused");
    // Unlisted, so only the external-data check sees it.
    let c = fresh("symlink_unlisted");
    std::os::unix::fs::symlink(&outside, c.join("policy/link.bin")).unwrap();
    edit_first_external(&c, |e| set(e, "location", "link.bin"));
    refused(&c, "outside the bundle");

    // 3. A file inside the bundle that the manifest does not list (never hashed).
    let c = fresh("unlisted");
    std::fs::copy(&data, c.join("policy/extra.bin")).unwrap();
    edit_first_external(&c, |e| set(e, "location", "extra.bin"));
    refused(&c, "not listed in the manifest");

    // 4. A byte range past the end of the data file, and one whose numbers overflow.
    let c = fresh("past_end");
    edit_first_external(&c, |e| {
        set(e, "offset", &size.to_string());
        set(e, "length", "4096");
    });
    refused(&c, "past its end");
    let c = fresh("overflow");
    edit_first_external(&c, |e| {
        set(e, "offset", &u64::MAX.to_string());
        set(e, "length", "16");
    });
    refused(&c, "overflows");
    let c = fresh("not_a_number");
    edit_first_external(&c, |e| set(e, "length", "-1"));
    refused(&c, "not a byte count");
}

/// A bundle on a read-only mount opens and optimizes: the library writes nothing into it.
#[test]
fn bundle_on_a_read_only_mount_opens_and_runs() {
    common::ort_ready();
    let dir = tempfile::tempdir().unwrap();
    let b = bundle(dir.path());
    let ro = dir.path().join("ro");
    std::fs::create_dir_all(&ro).unwrap();
    let mount = std::process::Command::new("mount").args(["--bind", "-o", "ro"]).arg(&b).arg(&ro).output().unwrap();
    if !mount.status.success() {
        return common::skip("bundle_on_a_read_only_mount_opens_and_runs", &format!("needs a read-only bind mount (root): {}", String::from_utf8_lossy(&mount.stderr).trim()));
    }
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg(&self.0).status();
        }
    }
    let _guard = Unmount(ro.clone());
    // The mount must really be read-only (a bind mount can silently stay writable on old kernels).
    if std::fs::write(ro.join("probe"), b"x").is_ok() {
        panic!("the read-only bind mount is writable");
    }
    let e = promptist::engine::Engine::open(&ro, &promptist::engine::EngineOptions::default()).expect("a bundle on a read-only mount opens");
    let r = e.optimize("a red fox", &promptist::engine::OptimizeOptions::default()).unwrap();
    assert!(!r.candidates.is_empty());
}
