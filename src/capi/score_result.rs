//! `promptist_score_result`: the rewards of the candidates of one `promptist_score*` /
//! `promptist_best_of_n` call with their parts (relevance, per-image similarity and aesthetic,
//! the user prompt's aesthetic), seed, provider and, when asked, the RGB8 images; everything is
//! owned by the result.

use std::ffi::{c_char, CString};

use crate::capi::cstr::owned_cstring;
use crate::capi::handle;
use crate::capi::status::promptist_provider;
use crate::diffusion::pipeline::Image;
use crate::engine::ScoreResult;

/// The result of a score call. Owned by the caller; free with `promptist_score_result_free`.
/// Immutable: may be read from several threads at once.
pub struct promptist_score_result {
    pub(crate) inner: ScoreResult,
    texts: Vec<CString>,
}

impl promptist_score_result {
    pub(crate) fn new(inner: ScoreResult) -> Self {
        let texts = inner.candidates.iter().map(|c| owned_cstring(&c.prompt)).collect();
        promptist_score_result { inner, texts }
    }
}

/// # Safety
/// `r` is NULL or a live result.
unsafe fn get<'a>(r: *const promptist_score_result) -> Option<&'a promptist_score_result> {
    // SAFETY: per the contract.
    unsafe { handle::borrow_opt(r) }
}

/// Number of candidates scored (0 for NULL). Thread-safe.
///
/// # Safety
/// `result` is NULL or a live result.
#[no_mangle]
pub unsafe extern "C" fn promptist_score_result_count(result: *const promptist_score_result) -> usize {
    // SAFETY: `result` is NULL or a live result (this function's documented contract); `get` checks for NULL.
    ffi_infallible!(0, { unsafe { get(result) }.map_or(0, |r| r.inner.candidates.len()) })
}

/// Images per prompt (0 for NULL). Thread-safe.
///
/// # Safety
/// `result` is NULL or a live result.
#[no_mangle]
pub unsafe extern "C" fn promptist_score_result_images_per_prompt(result: *const promptist_score_result) -> usize {
    // SAFETY: `result` is NULL or a live result (this function's documented contract); `get` checks for NULL.
    ffi_infallible!(0, { unsafe { get(result) }.map_or(0, |r| r.inner.images_per_prompt) })
}

/// Candidate `index`'s prompt text (UTF-8, owned by the result); NULL when out of range.
/// For `promptist_best_of_n` the candidates come best first.
///
/// # Safety
/// `result` is NULL or a live result.
#[no_mangle]
pub unsafe extern "C" fn promptist_score_result_prompt(result: *const promptist_score_result, index: usize) -> *const c_char {
    ffi_infallible!(std::ptr::null(), {
        // SAFETY: `result` is NULL or a live result (this function's documented contract); `get` checks for NULL.
        unsafe { get(result) }.and_then(|r| r.texts.get(index)).map_or(std::ptr::null(), |s| s.as_ptr())
    })
}

/// The Promptist reward of candidate `index` (docs/method.md §3); NaN when out of range.
///
/// # Safety
/// `result` is NULL or a live result.
#[no_mangle]
pub unsafe extern "C" fn promptist_score_result_reward(result: *const promptist_score_result, index: usize) -> f64 {
    // SAFETY: `result` is NULL or a live result (this function's documented contract); `get` checks for NULL.
    ffi_infallible!(f64::NAN, { unsafe { get(result) }.and_then(|r| r.inner.candidates.get(index)).map_or(f64::NAN, |c| c.reward.reward) })
}

/// The relevance term `mean_i min(20 * max(s_i, 0) - 5.6, 0)` of candidate `index`; NaN when out of range.
///
/// # Safety
/// `result` is NULL or a live result.
#[no_mangle]
pub unsafe extern "C" fn promptist_score_result_relevance(result: *const promptist_score_result, index: usize) -> f64 {
    // SAFETY: `result` is NULL or a live result (this function's documented contract); `get` checks for NULL.
    ffi_infallible!(f64::NAN, { unsafe { get(result) }.and_then(|r| r.inner.candidates.get(index)).map_or(f64::NAN, |c| c.reward.relevance) })
}

/// The mean aesthetic score of candidate `index`'s images; NaN when out of range.
///
/// # Safety
/// `result` is NULL or a live result.
#[no_mangle]
pub unsafe extern "C" fn promptist_score_result_aesthetic(result: *const promptist_score_result, index: usize) -> f64 {
    // SAFETY: `result` is NULL or a live result (this function's documented contract); `get` checks for NULL.
    ffi_infallible!(f64::NAN, { unsafe { get(result) }.and_then(|r| r.inner.candidates.get(index)).map_or(f64::NAN, |c| c.reward.mean_aesthetic_y()) })
}

/// The mean aesthetic score of the user prompt's images; NaN for NULL or an empty result.
///
/// # Safety
/// `result` is NULL or a live result.
#[no_mangle]
pub unsafe extern "C" fn promptist_score_result_user_aesthetic(result: *const promptist_score_result) -> f64 {
    // SAFETY: `result` is NULL or a live result (this function's documented contract); `get` checks for NULL.
    ffi_infallible!(f64::NAN, { unsafe { get(result) }.and_then(|r| r.inner.candidates.first()).map_or(f64::NAN, |c| c.reward.mean_aesthetic_x()) })
}

/// The cosine similarity `s_i` of candidate `index`'s image `image` to the user prompt's CLIP
/// text embedding; NaN when out of range.
///
/// # Safety
/// `result` is NULL or a live result.
#[no_mangle]
pub unsafe extern "C" fn promptist_score_result_similarity(result: *const promptist_score_result, index: usize, image: usize) -> f64 {
    ffi_infallible!(f64::NAN, {
        // SAFETY: `result` is NULL or a live result (this function's documented contract); `get` checks for NULL.
        unsafe { get(result) }
            .and_then(|r| r.inner.candidates.get(index))
            .and_then(|c| c.reward.similarity.get(image).copied())
            .unwrap_or(f64::NAN)
    })
}

/// The aesthetic score of candidate `index`'s image `image`; NaN when out of range.
///
/// # Safety
/// `result` is NULL or a live result.
#[no_mangle]
pub unsafe extern "C" fn promptist_score_result_image_aesthetic(result: *const promptist_score_result, index: usize, image: usize) -> f64 {
    ffi_infallible!(f64::NAN, {
        // SAFETY: `result` is NULL or a live result (this function's documented contract); `get` checks for NULL.
        unsafe { get(result) }
            .and_then(|r| r.inner.candidates.get(index))
            .and_then(|c| c.reward.aesthetic_y.get(image).copied())
            .unwrap_or(f64::NAN)
    })
}

/// The base seed (image i of every prompt used latent stream i of it); 0 for NULL.
///
/// # Safety
/// `result` is NULL or a live result.
#[no_mangle]
pub unsafe extern "C" fn promptist_score_result_seed(result: *const promptist_score_result) -> u64 {
    // SAFETY: `result` is NULL or a live result (this function's documented contract); `get` checks for NULL.
    ffi_infallible!(0, { unsafe { get(result) }.map_or(0, |r| r.inner.seed) })
}

/// The provider that ran the image models; CPU for NULL.
///
/// # Safety
/// `result` is NULL or a live result.
#[no_mangle]
pub unsafe extern "C" fn promptist_score_result_provider(result: *const promptist_score_result) -> promptist_provider {
    // SAFETY: `result` is NULL or a live result (this function's documented contract); `get` checks for NULL.
    ffi_infallible!(promptist_provider::Cpu, { unsafe { get(result) }.map_or(promptist_provider::Cpu, |r| promptist_provider::from(r.inner.provider)) })
}

/// True when a model of the reward (SD, scorer CLIP, aesthetic head) has random weights, or for
/// `promptist_best_of_n` the policy: images and rewards are then meaningless.
///
/// # Safety
/// `result` is NULL or a live result.
#[no_mangle]
pub unsafe extern "C" fn promptist_score_result_random_weights(result: *const promptist_score_result) -> bool {
    // SAFETY: `result` is NULL or a live result (this function's documented contract); `get` checks for NULL.
    ffi_infallible!(false, { unsafe { get(result) }.is_some_and(|r| r.inner.random_weights) })
}

fn image_out(img: Option<&Image>, width: *mut u32, height: *mut u32) -> *const u8 {
    let (w, h, p) = match img {
        Some(i) => (i.width as u32, i.height as u32, i.rgb8.as_ptr()),
        None => (0, 0, std::ptr::null()),
    };
    // SAFETY: the caller passes NULL or valid pointers (documented on the exports).
    unsafe {
        if !width.is_null() {
            width.write(w);
        }
        if !height.is_null() {
            height.write(h);
        }
    }
    p
}

/// Candidate `index`'s image `image` as RGB8 (`height` rows of `width * 3` bytes, top row first),
/// owned by the result; NULL (and 0 sizes) when out of range or when the call did not set
/// `return_images`. `width` / `height` may be NULL.
///
/// # Safety
/// `result` is NULL or a live result; `width` / `height` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn promptist_score_result_image(
    result: *const promptist_score_result,
    index: usize,
    image: usize,
    width: *mut u32,
    height: *mut u32,
) -> *const u8 {
    ffi_infallible!(std::ptr::null(), {
        // SAFETY: `result` is NULL or a live result (this function's documented contract); `get` checks for NULL.
        let img = unsafe { get(result) }.and_then(|r| r.inner.candidates.get(index)).and_then(|c| c.images.get(image));
        image_out(img, width, height)
    })
}

/// The user prompt's image `image` as RGB8 (as `promptist_score_result_image`).
///
/// # Safety
/// `result` is NULL or a live result; `width` / `height` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn promptist_score_result_user_image(
    result: *const promptist_score_result,
    image: usize,
    width: *mut u32,
    height: *mut u32,
) -> *const u8 {
    ffi_infallible!(std::ptr::null(), {
        // SAFETY: `result` is NULL or a live result (this function's documented contract); `get` checks for NULL.
        let img = unsafe { get(result) }.and_then(|r| r.inner.user_images.get(image));
        image_out(img, width, height)
    })
}

/// Free a result (and every string and image it returned). NULL is a no-op.
///
/// # Safety
/// `result` is NULL or a live result, not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn promptist_score_result_free(result: *mut promptist_score_result) {
    // SAFETY: per the contract.
    ffi_infallible!((), { unsafe { handle::free(result) } })
}
