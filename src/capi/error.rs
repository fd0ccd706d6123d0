//! `promptist_error`: an owned error object (status code + message) that fallible calls hand to
//! the caller through `promptist_error **`; no thread-local "last error" (docs/c-abi.md).

use std::ffi::{c_char, CString};

use crate::capi::cstr::owned_cstring;
use crate::capi::handle;
use crate::capi::status::promptist_status;
use crate::error::Error;

/// An error returned by a fallible call. Owned by the caller; free with `promptist_error_free`.
/// Immutable: may be read from several threads at once.
pub struct promptist_error {
    code: promptist_status,
    message: CString,
}

/// Make an error object for C from a crate error (message prefixed by nothing; the code is separate).
pub(crate) fn new_error(e: &Error) -> *mut promptist_error {
    handle::into_raw(promptist_error { code: e.code(), message: owned_cstring(&e.to_string()) })
}

/// The status code of `error`, or `PROMPTIST_STATUS_NULL_ARGUMENT` when `error` is NULL.
///
/// # Safety
/// `error` is NULL or a live error from this library.
#[no_mangle]
pub unsafe extern "C" fn promptist_error_code(error: *const promptist_error) -> promptist_status {
    ffi_infallible!(promptist_status::Internal, {
        // SAFETY: per the contract.
        match unsafe { handle::borrow_opt(error) } {
            Some(e) => e.code,
            None => promptist_status::NullArgument,
        }
    })
}

/// The UTF-8, NUL-terminated message of `error` (never empty), owned by the error and valid until
/// `promptist_error_free`; NULL when `error` is NULL.
///
/// # Safety
/// `error` is NULL or a live error from this library.
#[no_mangle]
pub unsafe extern "C" fn promptist_error_message(error: *const promptist_error) -> *const c_char {
    ffi_infallible!(std::ptr::null(), {
        // SAFETY: per the contract.
        match unsafe { handle::borrow_opt(error) } {
            Some(e) => e.message.as_ptr(),
            None => std::ptr::null(),
        }
    })
}

/// Free an error object. NULL is a no-op.
///
/// # Safety
/// `error` is NULL or a live error from this library, not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn promptist_error_free(error: *mut promptist_error) {
    // SAFETY: per the contract.
    ffi_infallible!((), { unsafe { handle::free(error) } })
}
