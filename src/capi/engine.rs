//! `promptist_engine`: open a bundle, optimize prompts, free. A thin translation onto
//! [`crate::engine::Engine`].

use std::ffi::c_char;

use crate::capi::cstr::str_arg;
use crate::capi::error::promptist_error;
use crate::capi::handle;
use crate::capi::options::{engine_options, optimize_options, promptist_engine_options, promptist_optimize_options};
use crate::capi::result::promptist_optimize_result;
use crate::capi::status::{promptist_provider, promptist_status};
use crate::engine::Engine;

/// A loaded bundle with its ONNX Runtime sessions. Thread-safe: one engine may be used by many
/// threads at once (see `promptist_optimize` for what is serialised). Free with
/// `promptist_engine_free` once no call is using it.
pub struct promptist_engine {
    pub(crate) engine: Engine,
}

/// Open the bundle folder `bundle_path` (UTF-8, NUL-terminated): validate its manifest and the
/// sha256 of every file, load ONNX Runtime, create the policy session and the tokenizer.
///
/// `options` may be NULL (defaults: CPU). On success `*engine_out` receives a new engine owned by
/// the caller (free with `promptist_engine_free`); on failure it is set to NULL. `error_out` may
/// be NULL; when given, `*error_out` is set to NULL on success and to a new error (free with
/// `promptist_error_free`) on failure.
///
/// Status: OK; NULL_ARGUMENT (bundle_path or engine_out NULL); INVALID_UTF8; INVALID_OPTIONS
/// (struct_size too small, unknown provider, device_id < 0, a number beyond its PROMPTIST_MAX_*
/// cap); BUNDLE_NOT_FOUND; BUNDLE_INVALID (bad or non-UTF-8 manifest, missing file, no `policy`
/// component, an unknown component or one of the wrong kind, UNet and VAE that do not fit
/// together); BUNDLE_CHECKSUM (corrupt file); IO (e.g. a bundle folder that cannot be read); RUNTIME_NOT_FOUND;
/// PROVIDER_UNAVAILABLE (CUDA asked for but not registrable); INFERENCE; TOKENIZER; MODEL_FORMAT;
/// INTERNAL. Thread-safe.
///
/// # Safety
/// Pointers are NULL or valid for their type; strings NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn promptist_engine_open(
    bundle_path: *const c_char,
    options: *const promptist_engine_options,
    engine_out: *mut *mut promptist_engine,
    error_out: *mut *mut promptist_error,
) -> promptist_status {
    ffi_fallible!(error_out, {
        // SAFETY: per the contract (each helper checks for NULL).
        let slot = unsafe { handle::out_ptr(engine_out, "engine_out") }?;
        // SAFETY: as stated above: the arguments are NULL or valid under this function's documented contract.
        let path = unsafe { str_arg(bundle_path, "bundle_path") }?;
        // SAFETY: as stated above: the arguments are NULL or valid under this function's documented contract.
        let opts = unsafe { engine_options(options) }?;
        let engine = Engine::open(path, &opts)?;
        *slot = handle::into_raw(promptist_engine { engine });
        Ok(())
    })
}

/// Free an engine. NULL is a no-op. No other call may be using the engine.
///
/// # Safety
/// `engine` is NULL or a live engine from `promptist_engine_open`, not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn promptist_engine_free(engine: *mut promptist_engine) {
    // SAFETY: per the contract.
    ffi_infallible!((), { unsafe { handle::free(engine) } })
}

/// Rewrite `prompt` (UTF-8, NUL-terminated) with the engine's policy, per docs/method.md §1-2: the input is
/// `prompt.strip() + " Rephrase:"`, the output the generated tokens decoded and stripped.
///
/// `options` may be NULL (defaults: beam 8, length_penalty -1.0, 75 new tokens). On success
/// `*result_out` receives a new result owned by the caller (free with
/// `promptist_optimize_result_free`); on failure it is set to NULL. `error_out` as in
/// `promptist_engine_open`.
///
/// Status: OK; NULL_ARGUMENT (engine, prompt or result_out NULL); INVALID_UTF8; EMPTY_PROMPT;
/// PROMPT_TOO_LONG (prompt tokens + max_new_tokens exceed the context); INVALID_OPTIONS
/// (struct_size too small, num_beams 0, num_return_sequences > num_beams, bad groups,
/// temperature <= 0, top_p outside (0, 1], unknown enum value, ...); CANCELLED (the progress
/// callback returned false or the cancel flag was set); INFERENCE; TOKENIZER; INTERNAL.
///
/// Thread-safe: many threads may call this on one engine at once. Argument checks and
/// tokenization run in parallel; the decoding loop holds the engine's policy-session lock, so
/// concurrent calls on one engine run their decoding one after another (open several engines
/// for parallel decoding).
///
/// # Safety
/// Pointers are NULL or valid for their type; strings NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn promptist_optimize(
    engine: *const promptist_engine,
    prompt: *const c_char,
    options: *const promptist_optimize_options,
    result_out: *mut *mut promptist_optimize_result,
    error_out: *mut *mut promptist_error,
) -> promptist_status {
    ffi_fallible!(error_out, {
        // SAFETY: per the contract (each helper checks for NULL).
        let slot = unsafe { handle::out_ptr(result_out, "result_out") }?;
        // SAFETY: as stated above: the arguments are NULL or valid under this function's documented contract.
        let engine = unsafe { handle::borrow(engine, "engine") }?;
        // SAFETY: as stated above: the arguments are NULL or valid under this function's documented contract.
        let prompt = unsafe { str_arg(prompt, "prompt") }?;
        // SAFETY: as stated above: the arguments are NULL or valid under this function's documented contract.
        let (opts, callbacks) = unsafe { optimize_options(options) }?;
        let result = if callbacks.is_empty() {
            engine.engine.optimize(prompt, &opts)?
        } else {
            callbacks.run_decode(|p| engine.engine.optimize_with_progress(prompt, &opts, Some(p)))?
        };
        *slot = handle::into_raw(promptist_optimize_result::new(&result));
        Ok(())
    })
}

/// The provider the engine's policy session runs on (CPU or CUDA; never AUTO). CPU for NULL.
/// Thread-safe.
///
/// # Safety
/// `engine` is NULL or a live engine.
#[no_mangle]
pub unsafe extern "C" fn promptist_engine_provider(engine: *const promptist_engine) -> promptist_provider {
    ffi_infallible!(promptist_provider::Cpu, {
        // SAFETY: per the contract.
        match unsafe { handle::borrow_opt(engine) } {
            Some(e) => promptist_provider::from(e.engine.provider()),
            None => promptist_provider::Cpu,
        }
    })
}

/// True when the bundle's policy has random weights (its outputs are meaningless; hosts must say
/// so). False for NULL. Thread-safe.
///
/// # Safety
/// `engine` is NULL or a live engine.
#[no_mangle]
pub unsafe extern "C" fn promptist_engine_policy_is_random(engine: *const promptist_engine) -> bool {
    ffi_infallible!(false, {
        // SAFETY: per the contract.
        unsafe { handle::borrow_opt(engine) }.is_some_and(|e| e.engine.random_weights())
    })
}
