//! Header drift check: regenerates include/promptist.h with cbindgen (cbindgen.toml) in memory and
//! fails when the committed header differs; also checks the header's version macros against
//! Cargo.toml. Regenerate with: PROMPTIST_REGENERATE_HEADER=1 cargo test --test capi_header

use std::path::PathBuf;

const REGENERATE: &str = "PROMPTIST_REGENERATE_HEADER=1 cargo test --test capi_header";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn generate() -> String {
    let config = cbindgen::Config::from_file(root().join("cbindgen.toml")).expect("read cbindgen.toml");
    let bindings = cbindgen::Builder::new()
        .with_src(root().join("src/capi/mod.rs"))
        .with_config(config)
        .generate()
        .expect("cbindgen failed to generate the header");
    let mut out = Vec::new();
    bindings.write(&mut out);
    String::from_utf8(out).expect("header is UTF-8")
}

#[test]
fn header_matches_sources() {
    let path = root().join("include/promptist.h");
    let fresh = generate();
    if std::env::var_os("PROMPTIST_REGENERATE_HEADER").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &fresh).unwrap();
        eprintln!("wrote {}", path.display());
        return;
    }
    let committed = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}; generate it with: {REGENERATE}", path.display()));
    if committed != fresh {
        let first = committed
            .lines()
            .zip(fresh.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| committed.lines().count().min(fresh.lines().count()));
        panic!(
            "include/promptist.h is out of date with src/capi (first difference at line {}):\n  committed: {:?}\n  generated: {:?}\nregenerate it with:\n  {REGENERATE}",
            first + 1,
            committed.lines().nth(first).unwrap_or("<end of file>"),
            fresh.lines().nth(first).unwrap_or("<end of file>"),
        );
    }
}

fn define(header: &str, name: &str) -> String {
    let prefix = format!("#define {name} ");
    header
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("#define {name} missing from include/promptist.h"))
        .trim()
        .to_string()
}

#[test]
fn header_versions_match_cargo_toml() {
    let header = std::fs::read_to_string(root().join("include/promptist.h")).expect("read include/promptist.h");
    // The version from Cargo.toml itself (workspace.package.version), not only the compiled env.
    let toml = std::fs::read_to_string(root().join("Cargo.toml")).unwrap();
    let version = toml
        .lines()
        .skip_while(|l| l.trim() != "[workspace.package]")
        .find_map(|l| l.trim().strip_prefix("version = "))
        .expect("version in [workspace.package]")
        .trim_matches('"')
        .to_string();
    assert_eq!(version, env!("CARGO_PKG_VERSION"));
    let parts: Vec<&str> = version.split('.').collect();
    assert_eq!(define(&header, "PROMPTIST_VERSION_MAJOR"), parts[0], "major; regenerate with {REGENERATE}");
    assert_eq!(define(&header, "PROMPTIST_VERSION_MINOR"), parts[1], "minor; regenerate with {REGENERATE}");
    assert_eq!(define(&header, "PROMPTIST_VERSION_PATCH"), parts[2], "patch; regenerate with {REGENERATE}");
    let abi: u32 = define(&header, "PROMPTIST_ABI_VERSION").parse().expect("ABI version is a number");
    assert_eq!(abi, promptist::capi::version::PROMPTIST_ABI_VERSION);
}

#[test]
fn every_function_is_documented() {
    let header = std::fs::read_to_string(root().join("include/promptist.h")).expect("read include/promptist.h");
    let lines: Vec<&str> = header.lines().collect();
    let mut functions = 0;
    for (i, l) in lines.iter().enumerate() {
        // A declaration starts at column 0 with a return type and contains "promptist_...(".
        let is_decl = !l.starts_with(' ')
            && !l.starts_with('#')
            && !l.starts_with("//")
            && !l.starts_with("typedef")
            && (l.contains(" promptist_") || l.contains("*promptist_"))
            && l.contains('(');
        if is_decl {
            functions += 1;
            assert!(i > 0 && lines[i - 1].starts_with("//"), "undocumented function in include/promptist.h: {l}");
        }
    }
    assert!(functions >= 21, "found only {functions} function declarations");
}
