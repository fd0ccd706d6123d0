//! `promptist_optimize_result`: the candidates of one `promptist_optimize` call, best first, with
//! their scores, the seed and the provider that ran; strings owned by the result.

use std::ffi::{c_char, CString};

use crate::capi::cstr::owned_cstring;
use crate::capi::handle;
use crate::capi::status::promptist_provider;
use crate::engine::OptimizeResult;
use crate::runtime::ProviderKind;

/// The result of `promptist_optimize`. Owned by the caller; free with
/// `promptist_optimize_result_free`. Immutable: may be read from several threads at once.
pub struct promptist_optimize_result {
    texts: Vec<CString>,
    scores: Vec<f32>,
    clip_tokens: Vec<usize>,
    over_budget: Vec<bool>,
    seed: Option<u64>,
    provider: ProviderKind,
    random_weights: bool,
}

impl promptist_optimize_result {
    pub(crate) fn new(r: &OptimizeResult) -> Self {
        promptist_optimize_result {
            texts: r.candidates.iter().map(|c| owned_cstring(&c.text)).collect(),
            scores: r.candidates.iter().map(|c| c.score).collect(),
            clip_tokens: r.candidates.iter().map(|c| c.clip_tokens).collect(),
            over_budget: r.candidates.iter().map(|c| c.over_budget).collect(),
            seed: r.seed,
            provider: r.provider,
            random_weights: r.random_weights,
        }
    }
}

/// Number of candidates (>= 1 for a successful call); 0 for NULL. Thread-safe.
///
/// # Safety
/// `result` is NULL or a live result.
#[no_mangle]
pub unsafe extern "C" fn promptist_optimize_result_count(result: *const promptist_optimize_result) -> usize {
    // SAFETY: per the contract.
    ffi_infallible!(0, { unsafe { handle::borrow_opt(result) }.map_or(0, |r| r.texts.len()) })
}

/// Candidate `index` (0 = best) as UTF-8, NUL-terminated text owned by the result (valid until
/// `promptist_optimize_result_free`; a NUL byte in the generated text is replaced by U+FFFD).
/// NULL when `result` is NULL or `index` is out of range. Thread-safe.
///
/// # Safety
/// `result` is NULL or a live result.
#[no_mangle]
pub unsafe extern "C" fn promptist_optimize_result_text(result: *const promptist_optimize_result, index: usize) -> *const c_char {
    ffi_infallible!(std::ptr::null(), {
        // SAFETY: per the contract.
        unsafe { handle::borrow_opt(result) }
            .and_then(|r| r.texts.get(index))
            .map_or(std::ptr::null(), |s| s.as_ptr())
    })
}

/// CLIP tokens of candidate `index` (its plain text, start and end tokens not counted; what
/// `max_clip_tokens` is compared with). 0 when `result` is NULL or `index` is out of range.
/// Thread-safe.
///
/// # Safety
/// `result` is NULL or a live result.
#[no_mangle]
pub unsafe extern "C" fn promptist_optimize_result_clip_tokens(result: *const promptist_optimize_result, index: usize) -> usize {
    // SAFETY: per the contract.
    ffi_infallible!(0, { unsafe { handle::borrow_opt(result) }.and_then(|r| r.clip_tokens.get(index).copied()).unwrap_or(0) })
}

/// True when the user's own text of candidate `index` is alone over `max_clip_tokens`, so the
/// candidate is that text, unchanged and over the budget. False when `result` is NULL or `index`
/// is out of range. Thread-safe.
///
/// # Safety
/// `result` is NULL or a live result.
#[no_mangle]
pub unsafe extern "C" fn promptist_optimize_result_over_budget(result: *const promptist_optimize_result, index: usize) -> bool {
    // SAFETY: per the contract.
    ffi_infallible!(false, { unsafe { handle::borrow_opt(result) }.and_then(|r| r.over_budget.get(index).copied()).unwrap_or(false) })
}

/// The decoder's score of candidate `index` (beam score with length penalty, or the sum of
/// log-probabilities); NaN when `result` is NULL or `index` is out of range. Thread-safe.
///
/// # Safety
/// `result` is NULL or a live result.
#[no_mangle]
pub unsafe extern "C" fn promptist_optimize_result_score(result: *const promptist_optimize_result, index: usize) -> f32 {
    ffi_infallible!(f32::NAN, {
        // SAFETY: per the contract.
        unsafe { handle::borrow_opt(result) }.and_then(|r| r.scores.get(index).copied()).unwrap_or(f32::NAN)
    })
}

/// True when a sampling seed was used; then `*seed_out` (if not NULL) receives it (the caller's
/// seed, or the one the library drew). False for deterministic strategies and for NULL `result`.
/// Thread-safe.
///
/// # Safety
/// `result` is NULL or a live result; `seed_out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn promptist_optimize_result_seed(result: *const promptist_optimize_result, seed_out: *mut u64) -> bool {
    ffi_infallible!(false, {
        // SAFETY: per the contract.
        match unsafe { handle::borrow_opt(result) }.and_then(|r| r.seed) {
            Some(s) => {
                // SAFETY: per the contract.
                if let Some(out) = unsafe { seed_out.as_mut() } {
                    *out = s;
                }
                true
            }
            None => false,
        }
    })
}

/// The execution provider that ran (CPU or CUDA); CPU for NULL. Thread-safe.
///
/// # Safety
/// `result` is NULL or a live result.
#[no_mangle]
pub unsafe extern "C" fn promptist_optimize_result_provider(result: *const promptist_optimize_result) -> promptist_provider {
    ffi_infallible!(promptist_provider::Cpu, {
        // SAFETY: per the contract.
        unsafe { handle::borrow_opt(result) }.map_or(promptist_provider::Cpu, |r| promptist_provider::from(r.provider))
    })
}

/// True when the policy that produced this result has random weights: the candidates are
/// meaningless and hosts must say so. False for NULL. Thread-safe.
///
/// # Safety
/// `result` is NULL or a live result.
#[no_mangle]
pub unsafe extern "C" fn promptist_optimize_result_random_weights(result: *const promptist_optimize_result) -> bool {
    // SAFETY: per the contract.
    ffi_infallible!(false, { unsafe { handle::borrow_opt(result) }.is_some_and(|r| r.random_weights) })
}

/// Free a result (and every string it returned). NULL is a no-op.
///
/// # Safety
/// `result` is NULL or a live result, not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn promptist_optimize_result_free(result: *mut promptist_optimize_result) {
    // SAFETY: per the contract.
    ffi_infallible!((), { unsafe { handle::free(result) } })
}
