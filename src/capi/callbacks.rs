//! The host's progress callback and cancel flag of one call, turned into the progress closures of
//! the Rust core (docs/c-abi.md, "Progress and cancellation"). The one copy of this glue: the
//! optimize and score exports both go through [`Callbacks::run`].

use std::ffi::c_void;
use std::sync::atomic::{AtomicI32, Ordering};

use crate::capi::options::promptist_progress_fn;
use crate::capi::status::promptist_stage;
use crate::diffusion::pipeline::Stage;
use crate::{Error, Result};

/// The host callbacks of one call (not part of the Rust options: they are C pointers).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Callbacks {
    pub progress: promptist_progress_fn,
    pub user_data: *mut c_void,
    pub cancel_flag: *const i32,
}

/// Where a progress report comes from, as the `stage` argument of the host's callback.
pub(crate) fn stage_code(s: Stage) -> i32 {
    (match s {
        Stage::Encode => promptist_stage::Encode,
        Stage::Denoise => promptist_stage::Denoise,
        Stage::VaeDecode => promptist_stage::VaeDecode,
        Stage::Score => promptist_stage::Score,
    }) as i32
}

impl Callbacks {
    /// True when the call has neither a callback nor a cancel flag.
    pub(crate) fn is_empty(&self) -> bool {
        self.progress.is_none() && self.cancel_flag.is_null()
    }

    /// True when the cancel flag is set (atomic load); false without a flag.
    fn cancelled(&self) -> bool {
        // SAFETY: the flag is NULL or, per the options' documented contract, a valid 4-byte
        // aligned int32_t that stays valid for the call; AtomicI32 has i32's layout, and other
        // threads only store to it.
        !self.cancel_flag.is_null() && unsafe { AtomicI32::from_ptr(self.cancel_flag.cast_mut()) }.load(Ordering::Acquire) != 0
    }

    /// One progress point: false (cancel) when the flag is set or the host's callback says so.
    fn report(&self, stage: i32, step: usize, total: usize) -> bool {
        // SAFETY: the callback is the caller's, called with its own user_data as documented on the
        // options field (it must not unwind).
        !self.cancelled() && self.progress.is_none_or(|f| unsafe { f(stage, step, total, self.user_data) })
    }

    /// Run `f` with a progress closure that reports to the host and checks its cancel flag;
    /// CANCELLED at once when the flag is already set.
    pub(crate) fn run<T>(&self, f: impl FnOnce(&mut dyn FnMut(Stage, usize, usize) -> bool) -> Result<T>) -> Result<T> {
        if self.cancelled() {
            return Err(Error::Cancelled);
        }
        f(&mut |stage, step, total| self.report(stage_code(stage), step, total))
    }

    /// As [`Callbacks::run`] for decoding, whose progress is a (step, total) pair of the
    /// `Decode` stage.
    pub(crate) fn run_decode<T>(&self, f: impl FnOnce(&mut dyn FnMut(usize, usize) -> bool) -> Result<T>) -> Result<T> {
        if self.cancelled() {
            return Err(Error::Cancelled);
        }
        f(&mut |step, total| self.report(promptist_stage::Decode as i32, step, total))
    }
}
