//! Ownership of the opaque handles, in one place: `into_raw` gives a Box to C, `free` takes it
//! back, `borrow` / `out_ptr` check pointers before use.

use crate::error::{Error, Result};

/// Move `v` to the heap and hand ownership to the caller of the C API.
pub(crate) fn into_raw<T>(v: T) -> *mut T {
    Box::into_raw(Box::new(v))
}

/// Take back and drop a handle made by [`into_raw`]; NULL is a no-op.
///
/// # Safety
/// `p` is NULL or came from `into_raw::<T>` and was not freed before.
pub(crate) unsafe fn free<T>(p: *mut T) {
    if !p.is_null() {
        // SAFETY: per the contract, `p` is a live Box<T> leaked by into_raw.
        drop(unsafe { Box::from_raw(p) });
    }
}

/// Borrow a handle; NULL -> `NullArgument`.
///
/// # Safety
/// `p` is NULL or a live handle of type `T` that outlives `'a`.
pub(crate) unsafe fn borrow<'a, T>(p: *const T, what: &'static str) -> Result<&'a T> {
    // SAFETY: per the contract.
    unsafe { p.as_ref() }.ok_or(Error::NullArgument { what })
}

/// Borrow a handle for an infallible accessor (NULL -> None).
///
/// # Safety
/// As [`borrow`].
pub(crate) unsafe fn borrow_opt<'a, T>(p: *const T) -> Option<&'a T> {
    // SAFETY: per the contract.
    unsafe { p.as_ref() }
}

/// Check an out-pointer and clear it (so the caller never sees a stale value on failure).
///
/// # Safety
/// `p` is NULL or writable storage for one pointer.
pub(crate) unsafe fn out_ptr<'a, T>(p: *mut *mut T, what: &'static str) -> Result<&'a mut *mut T> {
    // SAFETY: per the contract.
    let slot = unsafe { p.as_mut() }.ok_or(Error::NullArgument { what })?;
    *slot = std::ptr::null_mut();
    Ok(slot)
}
