//! The README's main command: `promptist_optimize` through the C ABI on the embedded demo bundle
//! (training/demo/bundle, committed; its policy was trained on synthetic data), with no download;
//! then `promptist_score` of the best rewrite on a copy of that bundle with tiny RANDOM Stable
//! Diffusion / CLIP components and the real aesthetic head (made on first run), to show the reward
//! path (its numbers are meaningless, and the output says so).
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
use promptist::capi::score::{promptist_score, promptist_score_options_init};
use promptist::capi::score_result::{
    promptist_score_result_aesthetic, promptist_score_result_free, promptist_score_result_relevance,
    promptist_score_result_reward, promptist_score_result_user_aesthetic,
};
use promptist::capi::status::promptist_status;
use promptist::capi::{promptist_engine, promptist_engine_options, promptist_error, promptist_optimize_options, promptist_optimize_result};
use promptist::capi::score::promptist_score_options;
use promptist::capi::score_result::promptist_score_result;

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
    let best = optimize(&bundle, prompt)?;
    let scoring = score_bundle(&bundle)?;
    score(&scoring, prompt, &best)
}

/// A copy of the demo bundle plus tiny random SD / CLIP components and the real aesthetic head
/// (embedded in the library), made once under target/.
fn score_bundle(policy_bundle: &Path) -> Result<PathBuf, String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = root.join("target/promptist-demo/bundle-with-score");
    if out.join(promptist::bundle::MANIFEST_FILE).is_file() {
        return Ok(out);
    }
    eprintln!("making {} (once): the demo policy + tiny RANDOM SD/CLIP + the real aesthetic head", out.display());
    let tmp = out.with_extension("part");
    let _ = std::fs::remove_dir_all(&tmp);
    copy_dir(policy_bundle, &tmp).map_err(|e| e.to_string())?;
    use promptist::export::sd_convert::{add_score_components, ScoreSources};
    let src = ScoreSources::tiny_random(0, Default::default());
    add_score_components(&tmp, &src).map_err(|e| e.to_string())?;
    std::fs::rename(&tmp, &out).map_err(|e| e.to_string())?;
    Ok(out)
}

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

/// Opens an engine through the C ABI.
unsafe fn open(bundle: &Path) -> Result<*mut promptist_engine, String> {
    let path = CString::new(bundle.to_string_lossy().as_bytes()).map_err(|e| e.to_string())?;
    let mut eo: promptist_engine_options = std::mem::zeroed();
    check(promptist_engine_options_init(&mut eo, std::mem::size_of::<promptist_engine_options>()), ptr::null_mut())?;
    let mut engine: *mut promptist_engine = ptr::null_mut();
    let mut err: *mut promptist_error = ptr::null_mut();
    check(promptist_engine_open(path.as_ptr(), &eo, &mut engine, &mut err), err)?;
    Ok(engine)
}

fn score(bundle: &Path, prompt: &str, candidate: &str) -> Result<(), String> {
    let x = CString::new(prompt).map_err(|e| e.to_string())?;
    let y = CString::new(candidate).map_err(|e| e.to_string())?;
    // SAFETY: the pointers are valid: the engine from `open` and NUL-terminated CStrings that outlive the call.
    unsafe {
        let engine = open(bundle)?;
        let mut so: promptist_score_options = std::mem::zeroed();
        check(promptist_score_options_init(&mut so, std::mem::size_of::<promptist_score_options>()), ptr::null_mut())?;
        // Small images and few steps: the tiny random image models only show the path.
        so.width = 64;
        so.height = 64;
        so.steps = 4;
        let mut result: *mut promptist_score_result = ptr::null_mut();
        let mut err: *mut promptist_error = ptr::null_mut();
        let outcome = check(promptist_score(engine, x.as_ptr(), y.as_ptr(), &so, &mut result, &mut err), err);
        if outcome.is_ok() {
            println!(
                "score:    reward {:.4} = aesthetic {:.4} - user aesthetic {:.4} + relevance {:.4}  (64x64, 4 steps, 2 images)",
                promptist_score_result_reward(result, 0),
                promptist_score_result_aesthetic(result, 0),
                promptist_score_result_user_aesthetic(result),
                promptist_score_result_relevance(result, 0),
            );
            println!("NOTE:     the demo's Stable Diffusion and CLIP models are tiny and RANDOM (only the aesthetic");
            println!("          head is real): this reward is meaningless; it shows promptist_score end to end.");
        }
        promptist_score_result_free(result);
        promptist_engine_free(engine);
        outcome
    }
}

/// Rewrites `prompt` through `promptist_optimize`; returns the best rewrite.
fn optimize(bundle: &Path, prompt: &str) -> Result<String, String> {
    let text = CString::new(prompt).map_err(|e| e.to_string())?;
    let mut best = String::new();
    // SAFETY: the pointers are valid: the engine from `open` and NUL-terminated CStrings that outlive the call.
    unsafe {
        let engine = open(bundle)?;
        let mut err: *mut promptist_error = ptr::null_mut();

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
                if i == 0 {
                    best = t.into_owned();
                }
            }
        }
        promptist_optimize_result_free(result);
        promptist_engine_free(engine);
        outcome.map(|()| best)
    }
}
