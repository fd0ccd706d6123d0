//! Build script: keep `libtorch_cuda` linked when the torch we build against has it. Rust links
//! with `--as-needed`, which would drop it (nothing references it by symbol) and leave
//! `--device cuda` unable to find CUDA at run time; see docs/architecture.md ("Building the
//! trainer"). Test binaries get it too, so the CUDA tests (`--ignored`, e.g. tests/lm_cuda.rs)
//! see the GPU. A CPU-only torch has no `libtorch_cuda`, and then nothing extra is linked: the
//! trainer builds and runs on the CPU.
//!
//! The folder comes from torch-sys (`links = "tch"`), which exports it as
//! `DEP_TCH_LIBTORCH_LIB` to crates that depend on it directly.
use std::path::Path;

fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    let Some(lib) = std::env::var_os("DEP_TCH_LIBTORCH_LIB") else {
        println!("cargo:warning=torch-sys did not report its library folder; libtorch_cuda is not force-linked");
        return;
    };
    let lib = Path::new(&lib);
    if lib.join("libtorch_cuda.so").exists() || lib.join("torch_cuda.dll").exists() {
        println!("cargo:rustc-link-arg-bins=-Wl,--no-as-needed,-ltorch_cuda,--as-needed");
        println!("cargo:rustc-link-arg-tests=-Wl,--no-as-needed,-ltorch_cuda,--as-needed");
    }
}
