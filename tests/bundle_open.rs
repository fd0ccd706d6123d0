//! Opening bundles: a sound bundle, and each failure the loader must name (missing path, missing
//! manifest, bad JSON, wrong format version, missing file, corrupt or truncated file, missing
//! component, incomplete policy, unsafe path, config mismatch), through the library and `promptist verify`.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use promptist::bundle::{sha256_file, Bundle, Checksums, Component, FileEntry, Manifest, Provenance, FORMAT_VERSION};
use promptist::text::gpt2::EMBEDDED_TOKENIZER_JSON;
use promptist::Code;

fn config_json() -> serde_json::Value {
    serde_json::json!({"model_type": "gpt2", "n_positions": 64, "n_ctx": 64, "vocab_size": 50257,
                       "n_layer": 2, "n_head": 2, "n_embd": 16, "eos_token_id": 50256, "bos_token_id": 50256})
}

/// A bundle with a (fake, never parsed here) policy model, the real tokenizer and a tiny config.
fn write_bundle(root: &Path) -> Manifest {
    std::fs::create_dir_all(root.join("policy")).unwrap();
    std::fs::write(
        root.join("policy/model.onnx"),
        b"not really onnx, but checksummed bytes",
    )
    .unwrap();
    std::fs::write(root.join("policy/tokenizer.json"), EMBEDDED_TOKENIZER_JSON).unwrap();
    std::fs::write(
        root.join("policy/config.json"),
        serde_json::to_vec_pretty(&config_json()).unwrap(),
    )
    .unwrap();
    let mut files = BTreeMap::new();
    for rel in ["policy/model.onnx", "policy/tokenizer.json", "policy/config.json"] {
        let (sha256, size) = sha256_file(&root.join(rel)).unwrap();
        files.insert(rel.to_string(), FileEntry { sha256, size });
    }
    let m = Manifest {
        format_version: FORMAT_VERSION,
        name: "test-bundle".into(),
        description: "random weights, for tests".into(),
        provenance: Provenance {
            source: "test".into(),
            producer: "bundle_open.rs".into(),
            random_weights: true,
            synthetic_training_data: false,
        },
        components: BTreeMap::from([(
            "policy".to_string(),
            Component {
                kind: "gpt2-policy".into(),
                config: config_json(),
                files,
                random_weights: None,
            },
        )]),
    };
    save(root, &m);
    m
}

fn save(root: &Path, m: &Manifest) {
    std::fs::write(root.join("promptist.json"), serde_json::to_vec_pretty(m).unwrap()).unwrap();
}

fn open(root: &Path) -> promptist::Result<Bundle> {
    Bundle::open(root, Checksums::Verify)
}

#[test]
fn sound_bundle_opens() {
    let d = tempfile::tempdir().unwrap();
    write_bundle(d.path());
    let b = open(d.path()).unwrap();
    let p = b.policy().unwrap();
    assert_eq!(p.model, d.path().join("policy/model.onnx"));
    assert_eq!(
        (
            p.config.n_ctx,
            p.config.vocab_size,
            p.config.n_layer,
            p.config.n_head,
            p.config.n_embd
        ),
        (64, 50257, 2, 2, 16)
    );
    assert_eq!(p.config.eos_token_id, 50256);
    assert!(b.random_weights());
    let e = b.component("unet").unwrap_err();
    assert_eq!(e.code(), Code::NotInBundle);
    assert!(e.to_string().contains("`unet`"), "{e}");
    let tok = p.load_tokenizer().unwrap();
    assert_eq!(tok.eos_id(), p.config.eos_token_id);
    assert_eq!(
        tok.encode("a cat Rephrase:").unwrap(),
        vec![64, 3797, 1432, 11840, 589, 25]
    );
}

#[test]
fn missing_path_is_bundle_not_found() {
    let e = open(Path::new("/nonexistent/promptist-bundle")).unwrap_err();
    assert_eq!(e.code(), Code::BundleNotFound);
    assert!(e.to_string().contains("/nonexistent/promptist-bundle"));
    let d = tempfile::tempdir().unwrap();
    let f = d.path().join("file");
    std::fs::write(&f, b"x").unwrap();
    assert_eq!(open(&f).unwrap_err().code(), Code::BundleNotFound);
}

#[test]
fn manifest_problems_are_bundle_invalid() {
    let d = tempfile::tempdir().unwrap();
    let e = open(d.path()).unwrap_err();
    assert_eq!(e.code(), Code::BundleInvalid);
    assert!(e.to_string().contains("promptist.json"), "{e}");

    write_bundle(d.path());
    std::fs::write(d.path().join("promptist.json"), b"{\"format_version\": 1, \"name\": ").unwrap();
    let e = open(d.path()).unwrap_err();
    assert_eq!(e.code(), Code::BundleInvalid);
    assert!(e.to_string().contains("not valid JSON"), "{e}");

    let mut m = write_bundle(d.path());
    m.format_version = 2;
    save(d.path(), &m);
    let e = open(d.path()).unwrap_err();
    assert_eq!(e.code(), Code::BundleInvalid);
    assert!(e.to_string().contains("format_version 2 is not supported"), "{e}");

    std::fs::write(d.path().join("promptist.json"), b"{\"format_version\": 1}").unwrap();
    let e = open(d.path()).unwrap_err();
    assert_eq!(e.code(), Code::BundleInvalid);
    assert!(e.to_string().contains("missing field"), "{e}");
}

#[test]
fn missing_file_is_named() {
    let d = tempfile::tempdir().unwrap();
    write_bundle(d.path());
    std::fs::remove_file(d.path().join("policy/tokenizer.json")).unwrap();
    let e = open(d.path()).unwrap_err();
    assert_eq!(e.code(), Code::BundleInvalid);
    assert!(
        e.to_string().contains("policy/tokenizer.json") && e.to_string().contains("missing"),
        "{e}"
    );
}

#[test]
fn corrupt_and_truncated_files_fail_the_checksum() {
    let d = tempfile::tempdir().unwrap();
    write_bundle(d.path());
    let model = d.path().join("policy/model.onnx");
    let mut bytes = std::fs::read(&model).unwrap();
    bytes[3] ^= 0x20;
    std::fs::write(&model, &bytes).unwrap();
    let e = open(d.path()).unwrap_err();
    assert_eq!(e.code(), Code::BundleChecksum);
    assert!(e.to_string().contains("policy/model.onnx"), "{e}");
    // Same size: skipping checksums does not see it (documented); a size change is always seen.
    assert!(Bundle::open(d.path(), Checksums::Skip).is_ok());
    std::fs::write(&model, &bytes[..10]).unwrap();
    let e = Bundle::open(d.path(), Checksums::Skip).unwrap_err();
    assert_eq!(e.code(), Code::BundleChecksum);
    assert!(e.to_string().contains("(10 bytes)"), "{e}");
}

#[test]
fn component_problems() {
    let d = tempfile::tempdir().unwrap();
    let mut m = write_bundle(d.path());
    let policy = m.components.remove("policy").unwrap();
    save(d.path(), &m);
    let b = open(d.path()).unwrap();
    let e = b.policy().unwrap_err();
    assert_eq!(e.code(), Code::BundleInvalid, "an engine needs the policy: {e}");
    assert!(e.to_string().contains("has no `policy` component") && e.to_string().contains("it has: none"), "{e}");

    let mut p2 = policy.clone();
    p2.files.remove("policy/config.json");
    m.components.insert("policy".into(), p2);
    save(d.path(), &m);
    let e = open(d.path()).unwrap_err();
    assert_eq!(e.code(), Code::BundleInvalid);
    assert!(e.to_string().contains("policy/config.json"), "{e}");

    let mut p3 = policy.clone();
    let entry = p3.files["policy/model.onnx"].clone();
    p3.files.insert("../escape.onnx".into(), entry);
    m.components.insert("policy".into(), p3);
    save(d.path(), &m);
    let e = open(d.path()).unwrap_err();
    assert!(e.to_string().contains("leaves the bundle"), "{e}");

    let mut p4 = policy;
    p4.config["n_layer"] = serde_json::json!(3);
    m.components.insert("policy".into(), p4);
    save(d.path(), &m);
    let e = open(d.path()).unwrap_err();
    assert_eq!(e.code(), Code::BundleInvalid);
    assert!(e.to_string().contains("differs"), "{e}");
}

fn verify(root: &Path) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_promptist"))
        .arg("verify")
        .arg(root)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn verify_cli_reports() {
    let d = tempfile::tempdir().unwrap();
    write_bundle(d.path());
    let (code, out) = verify(d.path());
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("OK: 3 files"), "{out}");
    assert!(out.contains("RANDOM weights"), "{out}");
    assert!(
        out.contains("policy: n_ctx 64 vocab 50257 n_layer 2 n_head 2 n_embd 16 eos 50256; tokenizer 50257 tokens"),
        "{out}"
    );

    std::fs::write(d.path().join("policy/config.json"), b"{}").unwrap();
    std::fs::remove_file(d.path().join("policy/model.onnx")).unwrap();
    let (code, out) = verify(d.path());
    assert_eq!(code, Code::BundleInvalid as i32, "{out}");
    assert!(
        out.contains(
            "problem [BUNDLE_INVALID]: invalid bundle: component `policy`: file `policy/model.onnx` is missing"
        ),
        "{out}"
    );
    assert!(
        out.contains("problem [BUNDLE_CHECKSUM]") && out.contains("policy/config.json"),
        "{out}"
    );

    let (code, out) = verify(Path::new("/nonexistent/b"));
    assert_eq!(code, Code::BundleNotFound as i32, "{out}");
}

/// What the loader says about manifests and components that are wrong in less common ways.
#[test]
fn manifest_text_kinds_and_reads() {
    let d = tempfile::tempdir().unwrap();
    let m = write_bundle(d.path());
    // Not UTF-8: a manifest problem, not an I/O error.
    let mut bytes = serde_json::to_vec(&m).unwrap();
    bytes.insert(1, 0xff);
    std::fs::write(d.path().join("promptist.json"), &bytes).unwrap();
    let e = open(d.path()).unwrap_err();
    assert_eq!(e.code(), Code::BundleInvalid, "{e}");
    assert!(e.to_string().contains("not UTF-8"), "{e}");
    // Too large to be a manifest: refused before it is read.
    std::fs::write(d.path().join("promptist.json"), vec![b' '; (16 << 20) + 1]).unwrap();
    let e = open(d.path()).unwrap_err();
    assert_eq!(e.code(), Code::BundleInvalid, "{e}");
    assert!(e.to_string().contains("more than a manifest may have"), "{e}");
    // A manifest that cannot be read (here a symlink loop) names the I/O cause.
    std::fs::remove_file(d.path().join("promptist.json")).unwrap();
    std::os::unix::fs::symlink("promptist.json", d.path().join("promptist.json")).unwrap();
    let e = open(d.path()).unwrap_err();
    assert_eq!(e.code(), Code::Io, "{e}");
    std::fs::remove_file(d.path().join("promptist.json")).unwrap();
    // An unknown component, and a known one of the wrong kind.
    let mut m2 = m.clone();
    let mut extra = m.components["policy"].clone();
    extra.kind = "mystery".into();
    m2.components.insert("upscaler".into(), extra);
    save(d.path(), &m2);
    let e = open(d.path()).unwrap_err();
    assert_eq!(e.code(), Code::BundleInvalid, "{e}");
    assert!(e.to_string().contains("unknown component `upscaler`"), "{e}");
    let mut m3 = m.clone();
    m3.components.get_mut("policy").unwrap().kind = "sd-unet".into();
    save(d.path(), &m3);
    let e = open(d.path()).unwrap_err();
    assert!(e.to_string().contains("has kind `sd-unet`, expected `gpt2-policy`"), "{e}");
    save(d.path(), &m);
    open(d.path()).unwrap();
    // A listed file that is a symlink to a file outside the bundle, with a matching checksum.
    let outside = tempfile::tempdir().unwrap();
    let target = outside.path().join("model.onnx");
    std::fs::copy(d.path().join("policy/model.onnx"), &target).unwrap();
    std::fs::remove_file(d.path().join("policy/model.onnx")).unwrap();
    std::os::unix::fs::symlink(&target, d.path().join("policy/model.onnx")).unwrap();
    let e = open(d.path()).unwrap_err();
    assert_eq!(e.code(), Code::BundleInvalid, "{e}");
    assert!(e.to_string().contains("outside the bundle"), "{e}");
}
