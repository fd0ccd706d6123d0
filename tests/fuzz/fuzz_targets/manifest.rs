//! The bundle loader on mutated manifests: arbitrary bytes as `promptist.json` of a copy of the
//! tiny bundle, opened with checksums verified and skipped. Any outcome but a panic or a crash is
//! fine; a manifest that opens must name only files inside the bundle folder.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use promptist::bundle::load::{Bundle, Checksums};

fn work() -> &'static PathBuf {
    static W: OnceLock<PathBuf> = OnceLock::new();
    W.get_or_init(|| promptist_fuzz::scratch_dir("manifest"))
}

fuzz_target!(|data: &[u8]| {
    let b = promptist_fuzz::working_bundle(work(), &[]);
    std::fs::write(b.join("promptist.json"), data).expect("write manifest");
    for mode in [Checksums::Verify, Checksums::Skip] {
        if let Ok(bundle) = Bundle::open(&b, mode) {
            let root = std::fs::canonicalize(&b).expect("canonical root");
            for (name, c) in &bundle.manifest().components {
                for rel in c.files.keys() {
                    let p = bundle.file(name, rel).expect("a listed file resolves");
                    let real = std::fs::canonicalize(&p).expect("a listed file exists");
                    assert!(real.starts_with(&root), "{rel} resolves outside the bundle: {}", real.display());
                }
            }
        }
    }
});
