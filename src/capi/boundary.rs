//! The panic boundary: every export runs its body through `ffi_fallible!` (status + owned error)
//! or `ffi_infallible!` (a fallback value), so no panic unwinds into C and every failure becomes a
//! status code with a message.

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::capi::error::{new_error, promptist_error};
use crate::capi::status::promptist_status;
use crate::error::{Error, Result};

/// Text of a panic payload.
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic payload".to_string()
    }
}

/// Run a fallible body: clear `*error_out` first (when given), run `body` under `catch_unwind`,
/// and turn an `Err` or a panic into a status plus a new error object in `*error_out`.
///
/// # Safety
/// `error_out` is NULL or points to writable storage for one pointer.
pub(crate) unsafe fn run_fallible(
    error_out: *mut *mut promptist_error,
    body: impl FnOnce() -> Result<()>,
) -> promptist_status {
    if !error_out.is_null() {
        // SAFETY: non-NULL and writable per the function's contract.
        unsafe { *error_out = std::ptr::null_mut() };
    }
    let err = match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => return promptist_status::Ok,
        Ok(Err(e)) => e,
        Err(payload) => Error::Internal(format!("panic in promptist: {}", panic_message(payload.as_ref()))),
    };
    let status = err.code();
    if !error_out.is_null() {
        // Building the error object allocates; guard it as well so nothing unwinds into C.
        if let Ok(e) = catch_unwind(AssertUnwindSafe(|| new_error(&err))) {
            // SAFETY: as above.
            unsafe { *error_out = e };
        }
    }
    status
}

/// Body of a fallible export: `ffi_fallible!(error_out, { ...; Ok(()) })` returns a `promptist_status`.
macro_rules! ffi_fallible {
    ($error_out:expr, $body:block) => {{
        let body = || -> $crate::error::Result<()> { $body };
        // SAFETY: the export's contract says `error_out` is NULL or writable.
        unsafe { $crate::capi::boundary::run_fallible($error_out, body) }
    }};
}

/// Body of an infallible export (accessors, `_free`): a panic returns `$fallback` instead of unwinding.
macro_rules! ffi_infallible {
    ($fallback:expr, $body:block) => {
        match ::std::panic::catch_unwind(::std::panic::AssertUnwindSafe(|| $body)) {
            Ok(v) => v,
            Err(_) => $fallback,
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capi::error::{promptist_error_code, promptist_error_free, promptist_error_message};

    #[test]
    fn panic_becomes_internal_with_message() {
        let mut err: *mut promptist_error = std::ptr::null_mut();
        // SAFETY: test code: every pointer passed is NULL on purpose or valid and owned by this test.
        let s = unsafe { run_fallible(&mut err, || -> Result<()> { panic!("boom {}", 42) }) };
        assert_eq!(s, promptist_status::Internal);
        assert!(!err.is_null());
        // SAFETY: test code: every pointer passed is NULL on purpose or valid and owned by this test.
        assert_eq!(unsafe { promptist_error_code(err) }, promptist_status::Internal);
        // SAFETY: test code: every pointer passed is NULL on purpose or valid and owned by this test.
        let msg = unsafe { std::ffi::CStr::from_ptr(promptist_error_message(err)) }.to_str().unwrap().to_string();
        assert!(msg.contains("boom 42"), "{msg}");
        // SAFETY: test code: every pointer passed is NULL on purpose or valid and owned by this test.
        unsafe { promptist_error_free(err) };
    }

    #[test]
    fn error_out_cleared_on_success_and_optional() {
        let mut err: *mut promptist_error = std::ptr::dangling_mut::<promptist_error>();
        // SAFETY: test code: every pointer passed is NULL on purpose or valid and owned by this test.
        let s = unsafe { run_fallible(&mut err, || Ok(())) };
        assert_eq!(s, promptist_status::Ok);
        assert!(err.is_null());
        // SAFETY: test code: every pointer passed is NULL on purpose or valid and owned by this test.
        let s = unsafe { run_fallible(std::ptr::null_mut(), || Err(Error::EmptyPrompt)) };
        assert_eq!(s, promptist_status::EmptyPrompt);
    }

    #[test]
    fn infallible_panic_returns_fallback() {
        let v: i32 = ffi_infallible!(-1, {
            if std::hint::black_box(true) {
                panic!("inside accessor");
            }
            5
        });
        assert_eq!(v, -1);
    }
}
