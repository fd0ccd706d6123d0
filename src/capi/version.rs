//! Library and ABI versions. The `PROMPTIST_VERSION_*` constants must equal Cargo.toml's version
//! (checked by a unit test here and by tests/capi_header.rs against the header).

use std::ffi::c_char;

/// The C ABI version: bumped only on an incompatible change of the header (a removed or changed
/// function or struct field). Appending functions, status codes or options fields does not bump it.
pub const PROMPTIST_ABI_VERSION: u32 = 1;
/// Library version, major part (Cargo.toml `version`).
pub const PROMPTIST_VERSION_MAJOR: u32 = 0;
/// Library version, minor part.
pub const PROMPTIST_VERSION_MINOR: u32 = 1;
/// Library version, patch part.
pub const PROMPTIST_VERSION_PATCH: u32 = 0;

static VERSION_C: &str = concat!(env!("CARGO_PKG_VERSION"), "\0");

/// The library version as static NUL-terminated text (e.g. "0.1.0"); do not free. Thread-safe.
#[no_mangle]
pub extern "C" fn promptist_version() -> *const c_char {
    VERSION_C.as_ptr().cast()
}

/// `PROMPTIST_ABI_VERSION` of the loaded library; compare with the header's to detect a mismatch
/// at run time. Thread-safe.
#[no_mangle]
pub extern "C" fn promptist_abi_version() -> u32 {
    PROMPTIST_ABI_VERSION
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constants_match_cargo() {
        assert_eq!(PROMPTIST_VERSION_MAJOR.to_string(), env!("CARGO_PKG_VERSION_MAJOR"));
        assert_eq!(PROMPTIST_VERSION_MINOR.to_string(), env!("CARGO_PKG_VERSION_MINOR"));
        assert_eq!(PROMPTIST_VERSION_PATCH.to_string(), env!("CARGO_PKG_VERSION_PATCH"));
        // SAFETY: test code: every pointer passed is NULL on purpose or valid and owned by this test.
        let v = unsafe { std::ffi::CStr::from_ptr(promptist_version()) };
        assert_eq!(v.to_str().unwrap(), crate::VERSION);
        assert_eq!(promptist_abi_version(), PROMPTIST_ABI_VERSION);
    }
}
