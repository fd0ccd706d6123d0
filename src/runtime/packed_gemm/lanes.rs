//! Zeroed storage of 64-byte lanes for packed weights. On Linux, buffers of 2 MiB and more are
//! fresh anonymous mappings (already zero: no fill pass) advised for transparent huge pages
//! (`madvise(MADV_HUGEPAGE)`, honoured where THP is in `madvise` or `always` mode) before first
//! touch: every decoding step streams all weights once, and huge pages take most page walks out of
//! that stream. Smaller buffers, and other systems, use the heap.

use std::alloc::{alloc_zeroed, dealloc, Layout};
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;

use super::pack::Lane16;
use crate::{Error, Result};

const HUGE: usize = 2 << 20;

enum Backing {
    Heap(Layout),
    #[cfg(target_os = "linux")]
    Mapped(usize),
}

pub(crate) struct Lanes {
    ptr: NonNull<Lane16>,
    len: usize,
    backing: Backing,
}

// SAFETY: `Lanes` owns its memory like a `Vec<Lane16>`.
unsafe impl Send for Lanes {}
// SAFETY: shared references only read the memory, like `&Vec<Lane16>`.
unsafe impl Sync for Lanes {}

impl Lanes {
    /// `len` (> 0) zeroed lanes.
    pub(crate) fn zeroed(len: usize) -> Result<Lanes> {
        let bytes = len.checked_mul(size_of::<Lane16>()).ok_or_else(|| Error::ModelFormat("packed weights too large".into()))?;
        if bytes == 0 {
            return Err(Error::Internal("packed weights of zero size".into()));
        }
        #[cfg(target_os = "linux")]
        if bytes >= HUGE {
            if let Some(ptr) = map_huge(bytes) {
                return Ok(Lanes { ptr, len, backing: Backing::Mapped(bytes) });
            }
        }
        let layout = Layout::from_size_align(bytes, align_of::<Lane16>()).map_err(|e| Error::ModelFormat(format!("packed weights: {e}")))?;
        // SAFETY: `layout` has a non-zero size; all-zero bytes are a valid `Lane16`.
        let raw = unsafe { alloc_zeroed(layout) };
        let ptr = NonNull::new(raw.cast::<Lane16>())
            .ok_or_else(|| Error::Inference(format!("out of memory allocating {bytes} bytes of packed weights")))?;
        Ok(Lanes { ptr, len, backing: Backing::Heap(layout) })
    }
}

/// A fresh private anonymous mapping of `bytes` (zero-filled by the kernel, page aligned, so
/// 64-byte aligned), advised for huge pages; `None` if the mapping fails.
#[cfg(target_os = "linux")]
fn map_huge(bytes: usize) -> Option<NonNull<Lane16>> {
    // SAFETY: a new anonymous mapping touches no existing memory.
    let raw = unsafe {
        libc::mmap(std::ptr::null_mut(), bytes, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1, 0)
    };
    if raw == libc::MAP_FAILED {
        return None;
    }
    // SAFETY: the range is the mapping just made; the advice is a hint (an error changes nothing).
    unsafe { libc::madvise(raw, bytes, libc::MADV_HUGEPAGE) };
    NonNull::new(raw.cast::<Lane16>())
}

impl Deref for Lanes {
    type Target = [Lane16];
    fn deref(&self) -> &[Lane16] {
        // SAFETY: `len` initialised lanes at `ptr`.
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
        match self.backing {
            // SAFETY: allocated in `zeroed` with this layout.
            Backing::Heap(layout) => unsafe { dealloc(self.ptr.as_ptr().cast(), layout) },
            // SAFETY: mapped in `map_huge` with this length.
            #[cfg(target_os = "linux")]
            Backing::Mapped(bytes) => unsafe {
                libc::munmap(self.ptr.as_ptr().cast(), bytes);
            },
        }
    }
}
