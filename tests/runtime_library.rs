//! The ONNX Runtime library search order (explicit path, ORT_DYLIB_PATH, next to the promptist
//! library, system loader) and the error that lists every place tried. ONNX Runtime loads once per
//! process, so each scenario runs in a child process (this test binary re-run on `child_entry`).

use std::path::{Path, PathBuf};
use std::process::Command;

use promptist::runtime::{LibrarySource, Runtime};

const CHILD_VAR: &str = "PROMPTIST_RUNTIME_CHILD";

fn real_ort() -> PathBuf {
    let p = std::env::var_os("ORT_DYLIB_PATH").map(PathBuf::from).expect(
        "set ORT_DYLIB_PATH to libonnxruntime.so.1.31.1 (tests/fetch-ort.sh prints it) to run the runtime tests",
    );
    assert!(p.is_file(), "ORT_DYLIB_PATH={} is not a file", p.display());
    p
}

/// Run `exe` on the child test with `scenario`; returns (success, stdout+stderr).
fn run_child(exe: &Path, scenario: &str, explicit: Option<&Path>, env_path: Option<&Path>) -> (bool, String) {
    let mut c = Command::new(exe);
    c.args(["--exact", "child_entry", "--nocapture", "--test-threads=1"])
        .env(CHILD_VAR, scenario);
    c.env_remove("ORT_DYLIB_PATH");
    if let Some(p) = env_path {
        c.env("ORT_DYLIB_PATH", p);
    }
    match explicit {
        Some(p) => c.env("PROMPTIST_CHILD_EXPLICIT", p),
        None => c.env_remove("PROMPTIST_CHILD_EXPLICIT"),
    };
    let out = c.output().expect("spawning the child test process");
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

fn me() -> PathBuf {
    std::env::current_exe().unwrap()
}

/// The child side: loads the runtime as told by the environment and prints what happened.
#[test]
fn child_entry() {
    let Ok(scenario) = std::env::var(CHILD_VAR) else { return };
    let explicit = std::env::var_os("PROMPTIST_CHILD_EXPLICIT").map(PathBuf::from);
    assert!(promptist::runtime::library::loaded().is_none());
    let r = Runtime::get(explicit.as_deref());
    assert_eq!(promptist::runtime::library::loaded().is_some(), r.is_ok());
    match scenario.as_str() {
        "load" => {
            let rt = r.unwrap();
            let lib = rt.library();
            println!("SOURCE={:?}", lib.source);
            println!("VERSION={}", lib.version);
            println!("PATH={}", lib.path.display());
            println!("RESOLVED={:?}", lib.resolved_path);
            for a in &lib.attempts {
                println!("ATTEMPT {a}");
            }
            // A second engine asking for another file gets an error naming both; the same file
            // (or none) is fine.
            let e = Runtime::get(Some(Path::new("/nonexistent/other/libonnxruntime.so"))).unwrap_err();
            println!("SECOND={} {e}", e.code().name());
            assert_eq!(Runtime::get(Some(&lib.path)).unwrap().library(), lib);
            assert_eq!(Runtime::get(None).unwrap().library(), lib);
        }
        "fail" => {
            let e = r.unwrap_err();
            println!("CODE={}", e.code().name());
            println!("MESSAGE={e}");
        }
        other => panic!("unknown scenario {other}"),
    }
}

#[test]
fn not_found_names_every_place_tried() {
    let (ok, out) = run_child(&me(), "fail", None, None);
    assert!(ok, "child failed:\n{out}");
    assert!(out.contains("CODE=RUNTIME_NOT_FOUND"), "{out}");
    let own_dir = me().parent().unwrap().canonicalize().unwrap();
    for needle in [
        "engine option ort_library_path: not set".to_string(),
        "ORT_DYLIB_PATH: not set".to_string(),
        format!(
            "next to the promptist library `{}`: no such file",
            own_dir.join("libonnxruntime.so").display()
        ),
        format!(
            "next to the promptist library `{}`: no such file",
            own_dir.join("libonnxruntime.so.1.31.1").display()
        ),
        format!(
            "next to the promptist library `{}`: no such file",
            own_dir.join("libonnxruntime.so.1.30.0").display()
        ),
        "system loader `libonnxruntime.so`: failed to load".to_string(),
    ] {
        assert!(out.contains(&needle), "missing `{needle}` in:\n{out}");
    }
}

#[test]
fn env_var_is_used_and_second_path_is_reported() {
    let ort = real_ort();
    let (ok, out) = run_child(&me(), "load", None, Some(&ort));
    assert!(ok, "child failed:\n{out}");
    assert!(out.contains("SOURCE=EnvVar"), "{out}");
    assert!(out.contains("VERSION=1.3"), "{out}");
    assert!(
        out.contains("SECOND=INVALID_OPTIONS") && out.contains("ort_library_path `/nonexistent/other/libonnxruntime.so` is not the ONNX Runtime this process already loaded"),
        "{out}"
    );
}

#[test]
fn explicit_path_comes_first() {
    let ort = real_ort();
    let (ok, out) = run_child(
        &me(),
        "load",
        Some(&ort),
        Some(Path::new("/nonexistent/env/libonnxruntime.so")),
    );
    assert!(ok, "child failed:\n{out}");
    assert!(out.contains("SOURCE=Explicit"), "{out}");
    // A bad explicit path is an error naming it, even with a usable ORT_DYLIB_PATH: never a
    // silent fallback to another library.
    let (ok, out) = run_child(&me(), "fail", Some(Path::new("/nonexistent/explicit.so")), Some(&ort));
    assert!(ok, "child failed:\n{out}");
    assert!(out.contains("CODE=RUNTIME_NOT_FOUND"), "{out}");
    assert!(out.contains("engine option ort_library_path `/nonexistent/explicit.so`: no such file"), "{out}");
    assert!(!out.contains("ORT_DYLIB_PATH"), "nothing but the explicit path is tried: {out}");
}

#[test]
fn library_next_to_promptist_is_found() {
    let ort = real_ort();
    let dir = tempfile::tempdir().unwrap();
    let exe = dir.path().join("runtime_child");
    std::fs::copy(me(), &exe).unwrap();
    std::os::unix::fs::symlink(&ort, dir.path().join("libonnxruntime.so.1.31.1")).unwrap();
    let (ok, out) = run_child(&exe, "load", None, None);
    assert!(ok, "child failed:\n{out}");
    assert!(out.contains("SOURCE=NextToLibrary"), "{out}");
    assert!(out.contains("ATTEMPT next to the promptist library"), "{out}");
    assert!(out.contains("libonnxruntime.so.1.31.1`: loaded"), "{out}");
    let _ = LibrarySource::System;
}
