fn main() {
    // The cdylib carries its own soname so hosts can link with -lpromptist.
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if os == "linux" {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libpromptist.so");
    }
}
