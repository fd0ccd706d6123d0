//! `promptist_score`, `promptist_score_many` and `promptist_best_of_n`: the Promptist reward over
//! the C ABI (a thin translation onto `Engine::score_many` / `Engine::optimize_best_of_n`), with
//! the versioned `promptist_score_options` struct.

use std::ffi::{c_char, c_void};
use std::mem::size_of;

use crate::capi::callbacks::Callbacks;
use crate::capi::cstr::str_arg;
use crate::capi::engine::promptist_engine;
use crate::capi::error::promptist_error;
use crate::capi::handle;
use crate::capi::options::{init_versioned, optimize_options, promptist_optimize_options, promptist_progress_fn, read_versioned};
pub use crate::capi::score_result::promptist_score_result;
use crate::capi::status::promptist_status;
use crate::diffusion::pipeline::SdSettings;
use crate::diffusion::scheduler::SchedulerKind;
use crate::engine::ScoreOptions;
use crate::error::{Error, Result};

/// Options of the score calls. Fill with `promptist_score_options_init` first (defaults =
/// docs/method.md §3: 512x512, 20 steps, guidance 7.5, DPM-Solver++, 2 images per prompt, seed 0), then
/// set fields.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct promptist_score_options {
    /// `sizeof(promptist_score_options)` as the caller knows it; set by `_init`.
    pub struct_size: usize,
    /// Image width in pixels, 1..=PROMPTIST_MAX_IMAGE_SIDE, a multiple of the VAE's scale factor (8 for
    /// SD 1.x). Default 512.
    pub width: u32,
    /// Image height in pixels, 1..=PROMPTIST_MAX_IMAGE_SIDE, a multiple of the VAE's scale factor (8 for
    /// SD 1.x). Default 512.
    pub height: u32,
    /// Denoising steps, 1..=PROMPTIST_MAX_STEPS. Default 20.
    pub steps: u32,
    /// Classifier-free guidance scale, finite, |scale| <= PROMPTIST_MAX_GUIDANCE. Default 7.5.
    pub guidance_scale: f32,
    /// Images per prompt, for the user prompt and each candidate, 1..=PROMPTIST_MAX_IMAGES_PER_PROMPT.
    /// Default 2.
    pub images_per_prompt: u32,
    /// Base seed: image i of every prompt starts from latent stream i of it. Default 0.
    pub seed: u64,
    /// 0 = DPM-Solver++ multistep (the reward's), 1 = DDIM. Default 0.
    pub scheduler: i32,
    /// Images per UNet call, 1..=PROMPTIST_MAX_UNET_BATCH. Default 4.
    pub max_batch: u32,
    /// Non-zero: keep the RGB8 images in the result. Default 0.
    pub return_images: i32,
    /// Called with (stage, step, total, user_data) after text encoding, every denoising step,
    /// every VAE-decoded batch and every CLIP batch, on the calling thread; returning false
    /// cancels with PROMPTIST_STATUS_CANCELLED. Must not unwind. NULL: none. Default NULL.
    pub progress: promptist_progress_fn,
    /// Passed unchanged to `progress`. Default NULL.
    pub user_data: *mut c_void,
    /// If not NULL: read atomically before the call and at every progress point (at least once per
    /// denoising step); non-zero cancels with PROMPTIST_STATUS_CANCELLED. Must stay valid and
    /// 4-byte aligned for the whole call. Default NULL.
    pub cancel_flag: *const i32,
}

pub(crate) const SCORE_OPTIONS_V1_SIZE: usize = size_of::<promptist_score_options>();

impl Default for promptist_score_options {
    fn default() -> Self {
        let d = ScoreOptions::default();
        let u = |v: usize| u32::try_from(v).unwrap_or(u32::MAX);
        promptist_score_options {
            struct_size: size_of::<Self>(),
            width: u(d.sd.width),
            height: u(d.sd.height),
            steps: u(d.sd.steps),
            guidance_scale: d.sd.guidance_scale,
            images_per_prompt: u(d.images_per_prompt),
            seed: d.seed,
            scheduler: 0,
            max_batch: u(d.sd.max_batch),
            return_images: 0,
            progress: None,
            user_data: std::ptr::null_mut(),
            cancel_flag: std::ptr::null(),
        }
    }
}

/// Fill `*options` with the defaults. Pass `sizeof(promptist_score_options)` as `struct_size`.
/// Returns NULL_ARGUMENT for NULL, INVALID_OPTIONS for a `struct_size` below the first version.
///
/// # Safety
/// `options` is NULL or points to `struct_size` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn promptist_score_options_init(options: *mut promptist_score_options, struct_size: usize) -> promptist_status {
    ffi_fallible!(std::ptr::null_mut(), {
        // SAFETY: per the contract.
        unsafe { init_versioned(options, struct_size, SCORE_OPTIONS_V1_SIZE, "promptist_score_options") }
    })
}

/// # Safety
/// `p` is NULL or a valid options struct.
unsafe fn score_options(p: *const promptist_score_options) -> Result<(ScoreOptions, Callbacks)> {
    let c = if p.is_null() {
        promptist_score_options::default()
    } else {
        // SAFETY: per the contract.
        unsafe { read_versioned(p, SCORE_OPTIONS_V1_SIZE, "promptist_score_options")? }
    };
    let scheduler = match c.scheduler {
        0 => SchedulerKind::DpmSolverMultistep,
        1 => SchedulerKind::Ddim,
        v => return Err(Error::InvalidOptions(format!("unknown scheduler {v} (0 = DPM-Solver++, 1 = DDIM)"))),
    };
    let o = ScoreOptions {
        sd: SdSettings {
            width: c.width as usize,
            height: c.height as usize,
            steps: c.steps as usize,
            guidance_scale: c.guidance_scale,
            scheduler,
            max_batch: c.max_batch as usize,
        },
        images_per_prompt: c.images_per_prompt as usize,
        seed: c.seed,
        return_images: c.return_images != 0,
        ..ScoreOptions::default()
    };
    Ok((o, Callbacks { progress: c.progress, user_data: c.user_data, cancel_flag: c.cancel_flag }))
}

/// Score `candidate_prompt` as a rewrite of `user_prompt` with the Promptist reward
/// (docs/method.md §3): `R = mean_i [A(img_i(y)) - mean_j A(img_j(x)) + min(20 * max(s_i, 0) - 5.6, 0)]`,
/// `s_i` the CLIP cosine of y's image i with x's text. Same as `promptist_score_many` with one
/// candidate.
///
/// Prompts longer than CLIP's 77-token context are truncated, as diffusers' pipeline and
/// open_clip's tokenizer do: the start token, the first 75 tokens, the end token. Nothing past the
/// 75th token changes the images or the relevance (each prompt is still at most
/// PROMPTIST_MAX_PROMPT_BYTES).
///
/// # Safety
/// Pointers are NULL or valid for their type; strings NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn promptist_score(
    engine: *const promptist_engine,
    user_prompt: *const c_char,
    candidate_prompt: *const c_char,
    options: *const promptist_score_options,
    result_out: *mut *mut promptist_score_result,
    error_out: *mut *mut promptist_error,
) -> promptist_status {
    let cands = [candidate_prompt];
    // SAFETY: per the contract.
    unsafe { promptist_score_many(engine, user_prompt, cands.as_ptr(), 1, options, result_out, error_out) }
}

/// Score `count` candidates (an array of UTF-8, NUL-terminated strings) for one user prompt; their
/// images go through the UNet together (`max_batch` images per call). The user prompt's images
/// and aesthetic are computed once and cached in the engine (bounded LRU keyed by prompt, seed
/// and settings), so later calls for the same user prompt skip them.
///
/// `options` may be NULL (defaults). On success `*result_out` receives a new result (free with
/// `promptist_score_result_free`); on failure NULL.
///
/// Status: OK; NULL_ARGUMENT (engine, a prompt, candidates or result_out NULL); INVALID_UTF8;
/// EMPTY_PROMPT; INVALID_OPTIONS (`count` outside 1..=PROMPTIST_MAX_CANDIDATES, checked before the
/// array is read; a number outside its PROMPTIST_MAX_* range, named in the message with its value
/// and range; width/height not multiples of the VAE factor; unknown scheduler; struct_size too
/// small); NOT_IN_BUNDLE (the bundle has no score components; optimize still works); CANCELLED;
/// INFERENCE; MODEL_FORMAT; TOKENIZER; INTERNAL.
///
/// Thread-safe; each graph (text encoder, UNet, VAE, CLIP towers) runs one call at a time.
///
/// # Safety
/// Pointers are NULL or valid for their type; `candidates` has `count` entries; strings
/// NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn promptist_score_many(
    engine: *const promptist_engine,
    user_prompt: *const c_char,
    candidates: *const *const c_char,
    count: usize,
    options: *const promptist_score_options,
    result_out: *mut *mut promptist_score_result,
    error_out: *mut *mut promptist_error,
) -> promptist_status {
    ffi_fallible!(error_out, {
        // SAFETY: per the contract (each helper checks for NULL).
        let slot = unsafe { handle::out_ptr(result_out, "result_out") }?;
        // SAFETY: as stated above: the arguments are NULL or valid under this function's documented contract.
        let engine = unsafe { handle::borrow(engine, "engine") }?;
        // SAFETY: as stated above: the arguments are NULL or valid under this function's documented contract.
        let user = unsafe { str_arg(user_prompt, "user_prompt") }?;
        if candidates.is_null() {
            return Err(Error::NullArgument { what: "candidates" });
        }
        if count == 0 {
            return Err(Error::InvalidOptions("no candidate prompt to score (count is 0)".into()));
        }
        // Checked before the array is read or anything is sized from `count`.
        crate::capi::limits::check_range("count", count, 1, crate::capi::limits::PROMPTIST_MAX_CANDIDATES)?;
        let mut cands = Vec::with_capacity(count);
        for i in 0..count {
            // SAFETY: `candidates` has `count` entries per the contract.
            let p = unsafe { candidates.add(i).read() };
            // SAFETY: as stated above: the arguments are NULL or valid under this function's documented contract.
            cands.push(unsafe { str_arg(p, "candidate prompt") }?);
        }
        // SAFETY: as stated above: the arguments are NULL or valid under this function's documented contract.
        let (opts, cb) = unsafe { score_options(options) }?;
        let r = cb.run(|p| engine.engine.score_many(user, &cands, &opts, p))?;
        *slot = handle::into_raw(promptist_score_result::new(r));
        Ok(())
    })
}

/// Best-of-n: rewrite `prompt` with the policy (`optimize_options`, e.g. beam search with
/// `num_return_sequences` = n), score every candidate against `prompt` with the Promptist reward
/// and return them ranked by reward, best first (`promptist_score_result_prompt(result, 0)` is
/// the best rewrite). Progress and cancel come from `score_options` and cover the scoring
/// stages; the decoding runs first, to completion, and `optimize_options`' own progress /
/// cancel fields are not used here. Status as `promptist_optimize` and `promptist_score_many`.
///
/// # Safety
/// Pointers are NULL or valid for their type; strings NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn promptist_best_of_n(
    engine: *const promptist_engine,
    prompt: *const c_char,
    optimize_options_in: *const promptist_optimize_options,
    options: *const promptist_score_options,
    result_out: *mut *mut promptist_score_result,
    error_out: *mut *mut promptist_error,
) -> promptist_status {
    ffi_fallible!(error_out, {
        // SAFETY: per the contract.
        let slot = unsafe { handle::out_ptr(result_out, "result_out") }?;
        // SAFETY: as stated above: the arguments are NULL or valid under this function's documented contract.
        let engine = unsafe { handle::borrow(engine, "engine") }?;
        // SAFETY: as stated above: the arguments are NULL or valid under this function's documented contract.
        let prompt = unsafe { str_arg(prompt, "prompt") }?;
        // SAFETY: as stated above: the arguments are NULL or valid under this function's documented contract.
        let (oo, _) = unsafe { optimize_options(optimize_options_in) }?;
        // SAFETY: as stated above: the arguments are NULL or valid under this function's documented contract.
        let (so, cb) = unsafe { score_options(options) }?;
        let r = cb.run(|p| engine.engine.optimize_best_of_n(prompt, &oo, &so, p))?;
        *slot = handle::into_raw(promptist_score_result::new(r.scores));
        Ok(())
    })
}

/// True when the engine's bundle has the score components (`promptist_score` works). False for NULL.
///
/// # Safety
/// `engine` is NULL or a live engine.
#[no_mangle]
pub unsafe extern "C" fn promptist_engine_can_score(engine: *const promptist_engine) -> bool {
    // SAFETY: the arguments are NULL or valid under this function's documented contract.
    ffi_infallible!(false, { unsafe { handle::borrow_opt(engine) }.is_some_and(|e| e.engine.can_score()) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_bad_values() {
        let mut o = std::mem::MaybeUninit::<promptist_score_options>::zeroed();
        // SAFETY: test code: every pointer passed is NULL on purpose or valid and owned by this test.
        assert_eq!(unsafe { promptist_score_options_init(o.as_mut_ptr(), size_of::<promptist_score_options>()) }, promptist_status::Ok);
        // SAFETY: test code: every pointer passed is NULL on purpose or valid and owned by this test.
        let o = unsafe { o.assume_init() };
        // SAFETY: test code: every pointer passed is NULL on purpose or valid and owned by this test.
        let (r, _) = unsafe { score_options(&o) }.unwrap();
        assert_eq!(r, ScoreOptions::default());
        let mut bad = o;
        bad.scheduler = 7;
        // SAFETY: test code: every pointer passed is NULL on purpose or valid and owned by this test.
        assert_eq!(unsafe { score_options(&bad) }.unwrap_err().code(), crate::Code::InvalidOptions);
        bad = o;
        bad.struct_size = 8;
        // SAFETY: test code: every pointer passed is NULL on purpose or valid and owned by this test.
        assert_eq!(unsafe { score_options(&bad) }.unwrap_err().code(), crate::Code::InvalidOptions);
        // SAFETY: test code: every pointer passed is NULL on purpose or valid and owned by this test.
        assert_eq!(unsafe { promptist_score_options_init(std::ptr::null_mut(), 64) }, promptist_status::NullArgument);
    }
}
