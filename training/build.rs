//! Build script: keep libtorch_cuda linked (Rust links with --as-needed, which would drop it and
//! leave `--device cuda` unable to find CUDA at run time); see DESIGN.md's tch recipe. Test
//! binaries get it too, so the CUDA tests (`--ignored`, e.g. tests/lm_cuda.rs) see the GPU.
fn main() {
    println!("cargo:rustc-link-arg-bins=-Wl,--no-as-needed,-ltorch_cuda,--as-needed");
    println!("cargo:rustc-link-arg-tests=-Wl,--no-as-needed,-ltorch_cuda,--as-needed");
}
