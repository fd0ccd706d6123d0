//! The README's main command: `promptist_optimize` through the C ABI on the embedded demo bundle
//! (training/demo/bundle, committed; its policy was trained on synthetic data), with no download.
//!
//! ORT_DYLIB_PATH=$(bash tests/fetch-ort.sh) cargo run --release --example demo -- "a red fox in the snow"

use std::ffi::{CStr, CString};
use std::path::{Path, PathBuf};
use std::ptr;

use promptist::capi::engine::{promptist_engine_free, promptist_engine_open, promptist_optimize};
use promptist::capi::error::{promptist_error_free, promptist_error_message};
use promptist::capi::options::{promptist_engine_options_init, promptist_optimize_options_init};
use promptist::capi::result::{
    promptist_optimize_result_count, promptist_optimize_result_free, promptist_optimize_result_provider,
    promptist_optimize_result_random_weights, promptist_optimize_result_score, promptist_optimize_result_text,
};
use promptist::capi::status::promptist_status;
use promptist::capi::{promptist_engine, promptist_engine_options, promptist_error, promptist_optimize_options, promptist_optimize_result};

fn main() -> std::process::ExitCode {
    let prompt = std::env::args().nth(1).unwrap_or_else(|| "a red fox in the snow".to_string());
    match run(&prompt) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("demo failed: {msg}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// The committed demo bundle: a small GPT-2 policy trained by `promptist-train` on a SYNTHETIC
/// corpus (reproduce with `bash training/demo/reproduce.sh`).
fn demo_bundle() -> Result<PathBuf, String> {
    let bundle = Path::new(env!("CARGO_MANIFEST_DIR")).join("training/demo/bundle");
    let manifest = promptist::bundle::read_manifest(&bundle).map_err(|e| e.to_string())?;
    println!("bundle:   {} ({})", bundle.display(), manifest.name);
    println!("about:    {}", manifest.description);
    Ok(bundle)
}

/// Turns a failed status into the error's message and frees the error.
unsafe fn check(status: promptist_status, err: *mut promptist_error) -> Result<(), String> {
    if status == promptist_status::Ok {
        return Ok(());
    }
    let msg = if err.is_null() {
        format!("{status:?}")
    } else {
        CStr::from_ptr(promptist_error_message(err)).to_string_lossy().into_owned()
    };
    promptist_error_free(err);
    Err(msg)
}

fn run(prompt: &str) -> Result<(), String> {
    let bundle = demo_bundle()?;
    let path = CString::new(bundle.to_string_lossy().as_bytes()).map_err(|e| e.to_string())?;
    let text = CString::new(prompt).map_err(|e| e.to_string())?;
    unsafe {
        let mut eo: promptist_engine_options = std::mem::zeroed();
        check(promptist_engine_options_init(&mut eo, std::mem::size_of::<promptist_engine_options>()), ptr::null_mut())?;
        let mut engine: *mut promptist_engine = ptr::null_mut();
        let mut err: *mut promptist_error = ptr::null_mut();
        check(promptist_engine_open(path.as_ptr(), &eo, &mut engine, &mut err), err)?;

        let mut oo: promptist_optimize_options = std::mem::zeroed();
        check(promptist_optimize_options_init(&mut oo, std::mem::size_of::<promptist_optimize_options>()), ptr::null_mut())?;
        oo.num_return_sequences = 3;
        let mut result: *mut promptist_optimize_result = ptr::null_mut();
        let outcome = check(promptist_optimize(engine, text.as_ptr(), &oo, &mut result, &mut err), err);
        if outcome.is_ok() {
            if promptist_optimize_result_random_weights(result) {
                println!("NOTE:     this bundle's policy has RANDOM weights; the rewrites below are");
                println!("          meaningless. Convert the real microsoft/Promptist checkpoint for real ones (README).");
            }
            let provider = promptist_optimize_result_provider(result);
            println!("provider: {}", CStr::from_ptr(promptist::capi::status::promptist_provider_name(provider as i32)).to_string_lossy());
            println!("input:    {prompt}");
            for i in 0..promptist_optimize_result_count(result) {
                let t = CStr::from_ptr(promptist_optimize_result_text(result, i)).to_string_lossy();
                println!("#{i} score {:>9.3}: {t}", promptist_optimize_result_score(result, i));
            }
        }
        promptist_optimize_result_free(result);
        promptist_engine_free(engine);
        outcome
    }
}
