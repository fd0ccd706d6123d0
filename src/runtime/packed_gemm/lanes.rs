//! Zeroed storage of 64-byte lanes for packed weights. Buffers of 2 MiB and more are 2 MiB aligned
//! and, on Linux, advised for transparent huge pages (`madvise(MADV_HUGEPAGE)`, honoured where THP
//! is in `madvise` or `always` mode) before first touch: every decoding step streams all weights
//! once, and huge pages take most page walks out of that stream.

use std::alloc::{alloc, dealloc, Layout};
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;

use super::pack::Lane16;
use crate::{Error, Result};

const HUGE: usize = 2 << 20;

pub(crate) struct Lanes {
    ptr: NonNull<Lane16>,
    len: usize,
    layout: Layout,
}

// SAFETY: `Lanes` owns its allocation like a `Vec<Lane16>`.
unsafe impl Send for Lanes {}
unsafe impl Sync for Lanes {}

impl Lanes {
    /// `len` zeroed lanes.
    pub(crate) fn zeroed(len: usize) -> Result<Lanes> {
        let bytes = len.checked_mul(size_of::<Lane16>()).ok_or_else(|| Error::ModelFormat("packed weights too large".into()))?;
        if bytes == 0 {
            return Ok(Lanes { ptr: NonNull::dangling(), len: 0, layout: Layout::new::<Lane16>() });
        }
        let huge = bytes >= HUGE;
        // Not rounded up: the tail past the last whole 2 MiB stays in small pages.
        let size = bytes;
        let align = if huge { HUGE } else { align_of::<Lane16>() };
        let layout = Layout::from_size_align(size, align).map_err(|e| Error::ModelFormat(format!("packed weights: {e}")))?;
        // SAFETY: `layout` has a non-zero size.
        let raw = unsafe { alloc(layout) };
        let ptr = NonNull::new(raw.cast::<Lane16>())
            .ok_or_else(|| Error::Inference(format!("out of memory allocating {size} bytes of packed weights")))?;
        #[cfg(target_os = "linux")]
        if huge {
            // SAFETY: the range is our own fresh allocation; the advice is a hint (errors ignored).
            unsafe { libc::madvise(raw.cast(), size, libc::MADV_HUGEPAGE) };
        }
        // SAFETY: `size` writable bytes at `raw`; all-zero bytes are a valid `Lane16`.
        unsafe { std::ptr::write_bytes(raw, 0, size) };
        Ok(Lanes { ptr, len, layout })
    }
}

impl Deref for Lanes {
    type Target = [Lane16];
    fn deref(&self) -> &[Lane16] {
        // SAFETY: `len` initialised lanes at `ptr` (dangling and 0 for an empty buffer).
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl DerefMut for Lanes {
    fn deref_mut(&mut self) -> &mut [Lane16] {
        // SAFETY: as in `deref`, and `&mut self` is unique.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl Drop for Lanes {
    fn drop(&mut self) {
        if self.len > 0 {
            // SAFETY: allocated in `zeroed` with this layout.
            unsafe { dealloc(self.ptr.as_ptr().cast(), self.layout) };
        }
    }
}
