//! C string helpers: NUL-terminated UTF-8 in (checked), owned NUL-terminated strings out.

use std::ffi::{c_char, CStr, CString};

use crate::error::{Error, Result};

/// Borrow a NUL-terminated UTF-8 string; NULL -> `NullArgument`, bad UTF-8 -> `InvalidUtf8`.
///
/// # Safety
/// `p` is NULL or a NUL-terminated string that outlives `'a`.
pub(crate) unsafe fn str_arg<'a>(p: *const c_char, what: &'static str) -> Result<&'a str> {
    if p.is_null() {
        return Err(Error::NullArgument { what });
    }
    // SAFETY: non-NULL and NUL-terminated per the contract.
    let c = unsafe { CStr::from_ptr(p) };
    c.to_str().map_err(|_| Error::InvalidUtf8 { what })
}

/// Like [`str_arg`] but NULL is allowed (`None`).
///
/// # Safety
/// As [`str_arg`].
pub(crate) unsafe fn opt_str_arg<'a>(p: *const c_char, what: &'static str) -> Result<Option<&'a str>> {
    if p.is_null() {
        Ok(None)
    } else {
        // SAFETY: forwarded contract.
        unsafe { str_arg(p, what) }.map(Some)
    }
}

/// An owned C string from text that may contain NUL bytes (a random policy can emit byte 0):
/// each NUL becomes U+FFFD so the C string is never cut short.
pub(crate) fn owned_cstring(s: &str) -> CString {
    let cleaned = if s.contains('\0') { s.replace('\0', "\u{FFFD}") } else { s.to_string() };
    // No NUL remains, so this cannot fail; fall back to an empty string rather than panic.
    CString::new(cleaned).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nul_is_replaced() {
        assert_eq!(owned_cstring("a\0b").to_str().unwrap(), "a\u{FFFD}b");
    }

    #[test]
    fn null_and_bad_utf8() {
        // SAFETY: test code: every pointer passed is NULL on purpose or valid and owned by this test.
        let e = unsafe { str_arg(std::ptr::null(), "prompt") }.unwrap_err();
        assert_eq!(e.code(), crate::Code::NullArgument);
        let bad = b"\xff\xfe\0";
        // SAFETY: test code: every pointer passed is NULL on purpose or valid and owned by this test.
        let e = unsafe { str_arg(bad.as_ptr().cast(), "prompt") }.unwrap_err();
        assert_eq!(e.code(), crate::Code::InvalidUtf8);
    }
}
