//! Build script: keep libtorch_cuda linked (Rust links with --as-needed, which would drop it and
//! leave `--device cuda` unable to find CUDA at run time); see DESIGN.md's tch recipe.
fn main() {
    println!("cargo:rustc-link-arg-bins=-Wl,--no-as-needed,-ltorch_cuda,--as-needed");
}
