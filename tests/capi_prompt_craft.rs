//! Prompt craft through the C ABI on the embedded demo bundle (docs/prompt-syntax.md). Syntax:
//! with `keep_syntax` (the default, also for a caller whose `struct_size` predates the field)
//! every candidate starts with the user's prompt byte for byte and has exactly its syntax spans;
//! the policy saw the plain text; a prompt without syntax is unaffected; `keep_syntax = 0` hands
//! the raw prompt to the policy. Token budget: `max_clip_tokens` (default 75) cuts each candidate
//! after its last whole phrase that fits, never inside the user's text, reports the count and the
//! over-budget flag, and is range-checked. Needs ORT_DYLIB_PATH.

mod common;

use std::ffi::{CStr, CString};
use std::path::PathBuf;
use std::ptr::{null, null_mut};

use promptist::capi::engine::{promptist_engine_free, promptist_engine_open, promptist_optimize};
use promptist::capi::error::{promptist_error_free, promptist_error_message};
use promptist::capi::options::{promptist_optimize_options, promptist_optimize_options_init};
use promptist::capi::result::{
    promptist_optimize_result_clip_tokens, promptist_optimize_result_count, promptist_optimize_result_free, promptist_optimize_result_over_budget,
    promptist_optimize_result_text,
};
use promptist::capi::{promptist_engine, promptist_status};
use promptist::text::syntax::parse;

fn demo_bundle() -> CString {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("training/demo/bundle");
    CString::new(p.to_str().unwrap()).unwrap()
}

fn options(keep: Option<i32>, old_struct: bool) -> promptist_optimize_options {
    let mut o = options_budget(None, old_struct);
    if let Some(k) = keep {
        o.keep_syntax = k;
    }
    // Syntax tests compare against the uncut rewrite.
    if !old_struct {
        o.max_clip_tokens = 0;
    }
    o
}

fn options_budget(budget: Option<u32>, old_struct: bool) -> promptist_optimize_options {
    // SAFETY: a zeroed plain-data struct, filled by _init.
    let mut o: promptist_optimize_options = unsafe { std::mem::zeroed() };
    // SAFETY: `o` is a live struct of the size passed.
    assert_eq!(unsafe { promptist_optimize_options_init(&mut o, std::mem::size_of::<promptist_optimize_options>()) }, promptist_status::Ok);
    o.num_beams = 4;
    o.num_return_sequences = 3;
    o.max_new_tokens = 30;
    if let Some(b) = budget {
        o.max_clip_tokens = b;
    }
    if old_struct {
        // A caller built against the header before `keep_syntax` (and `max_clip_tokens`) existed.
        o.struct_size = std::mem::offset_of!(promptist_optimize_options, keep_syntax);
    }
    o
}

/// (text, clip tokens, over budget) of every candidate.
fn optimize_full(e: *const promptist_engine, prompt: &str, o: &promptist_optimize_options) -> Result<Vec<(String, usize, bool)>, promptist_status> {
    let p = CString::new(prompt).unwrap();
    let (mut r, mut err) = (null_mut(), null_mut());
    // SAFETY: live engine, NUL-terminated prompt, valid options and out-pointers.
    let st = unsafe { promptist_optimize(e, p.as_ptr(), o, &mut r, &mut err) };
    // SAFETY: NULL or an error the library made.
    unsafe { promptist_error_free(err) };
    if st != promptist_status::Ok {
        return Err(st);
    }
    // SAFETY: a result the library made; texts are valid until it is freed.
    let out = (0..unsafe { promptist_optimize_result_count(r) })
        .map(|i| unsafe {
            (
                CStr::from_ptr(promptist_optimize_result_text(r, i)).to_string_lossy().into_owned(),
                promptist_optimize_result_clip_tokens(r, i),
                promptist_optimize_result_over_budget(r, i),
            )
        })
        .collect();
    // SAFETY: as above.
    unsafe { promptist_optimize_result_free(r) };
    Ok(out)
}

fn optimize(e: *const promptist_engine, prompt: &str, o: &promptist_optimize_options) -> Vec<String> {
    let p = CString::new(prompt).unwrap();
    let (mut r, mut err) = (null_mut(), null_mut());
    // SAFETY: live engine, NUL-terminated prompt, valid options and out-pointers.
    let st = unsafe { promptist_optimize(e, p.as_ptr(), o, &mut r, &mut err) };
    if st != promptist_status::Ok {
        // SAFETY: an error the library made.
        let msg = unsafe { CStr::from_ptr(promptist_error_message(err)) }.to_string_lossy().into_owned();
        // SAFETY: as above.
        unsafe { promptist_error_free(err) };
        panic!("optimize({prompt:?}) failed: {st:?}: {msg}");
    }
    // SAFETY: a result the library made; texts are valid until it is freed.
    let out = (0..unsafe { promptist_optimize_result_count(r) })
        .map(|i| unsafe { CStr::from_ptr(promptist_optimize_result_text(r, i)) }.to_string_lossy().into_owned())
        .collect();
    // SAFETY: as above.
    unsafe { promptist_optimize_result_free(r) };
    out
}

#[test]
fn syntax_survives_the_rewrite_through_the_c_abi() {
    common::ort_ready();
    let path = demo_bundle();
    let mut e = null_mut();
    let mut err = null_mut();
    // SAFETY: valid path and out-pointers; default options.
    assert_eq!(unsafe { promptist_engine_open(path.as_ptr(), null(), &mut e, &mut err) }, promptist_status::Ok);
    let prompts = [
        "(red fox:1.2) in the snow <lora:foxStyle:0.8>",
        "((masterpiece)), a castle at dawn, BREAK, {oil painting|watercolor}",
        "embedding:EasyNegative portrait of a sailor, [blurry], __styles__",
        "a \\(small\\) bowl of fruit, [apple:pear:0.5]",
    ];
    let spans = |s: &str| parse(s).spans.into_iter().map(|x| (x.start, x.end, x.kind)).collect::<Vec<_>>();
    for p in prompts {
        for o in [options(None, false), options(None, true), options(Some(1), false)] {
            let cands = optimize(e, p, &o);
            assert_eq!(cands.len(), 3);
            let plain_cands = optimize(e, &parse(p).plain, &options(Some(0), false));
            for (c, plain) in cands.iter().zip(&plain_cands) {
                assert!(c.starts_with(p), "{c:?} does not start with {p:?}");
                assert_eq!(spans(c), spans(p), "{c:?}");
                // The policy saw the plain text: the new phrases come from the plain prompt's rewrite.
                assert_eq!(*c, promptist::text::syntax::keep_syntax(p, &parse(p).plain, plain), "prompt {p:?}");
            }
            eprintln!("{p:?} -> {:?}", cands[0]);
        }
        // Off: the policy gets the raw prompt, so the candidates are its plain rewrites of it.
        let raw = optimize(e, p, &options(Some(0), false));
        assert_eq!(raw.len(), 3);
    }
    // No syntax: identical either way.
    let a = optimize(e, "a red fox in the snow", &options(Some(1), false));
    let b = optimize(e, "a red fox in the snow", &options(Some(0), false));
    assert_eq!(a, b);
    // SAFETY: the engine is no longer used.
    unsafe { promptist_engine_free(e) };
}

#[test]
fn rewrites_fit_the_clip_token_budget_through_the_c_abi() {
    let clip = promptist::text::clip::ClipTokenizer::embedded().unwrap();
    let clip_tokens = |s: &str| promptist::text::budget::clip_tokens(&clip, s);
    let fit = |u: &str, c: &str, b: usize| promptist::text::budget::fit(&clip, u, c, b);
    common::ort_ready();
    let path = demo_bundle();
    let mut e = null_mut();
    let mut err = null_mut();
    // SAFETY: valid path and out-pointers; default options.
    assert_eq!(unsafe { promptist_engine_open(path.as_ptr(), null(), &mut e, &mut err) }, promptist_status::Ok);
    let prompt = "a red fox in the snow";
    let uncut = optimize_full(e, prompt, &options_budget(Some(0), false)).unwrap();
    let longest = uncut.iter().map(|c| c.1).max().unwrap();
    assert!(longest > 12, "the demo's rewrites must be longer than the budget tested: {uncut:?}");
    for budget in [12u32, 20] {
        let cut = optimize_full(e, prompt, &options_budget(Some(budget), false)).unwrap();
        for ((text, n, over), (full, _, _)) in cut.iter().zip(&uncut) {
            assert!(!over && *n <= budget as usize, "{text:?}: {n} tokens");
            assert_eq!(*n, clip_tokens(text).unwrap());
            assert!(text.starts_with(prompt) && full.starts_with(text.as_str()), "{text:?} is not a cut of {full:?}");
            assert_eq!(*text, fit(prompt, full, budget as usize).unwrap().text);
            eprintln!("budget {budget}: {text:?} ({n} tokens) from {full:?}");
        }
    }
    // The default (75), also for a caller whose struct predates the field.
    for o in [options_budget(None, false), options_budget(None, true)] {
        for (text, n, over) in optimize_full(e, prompt, &o).unwrap() {
            assert!(!over && n <= 75 && text.starts_with(prompt), "{text:?}");
        }
    }
    // The user's text alone over the budget: returned unchanged and flagged.
    let long = "a very old stone castle on a steep green hill above a quiet river at dawn with mist";
    for (text, n, over) in optimize_full(e, long, &options_budget(Some(8), false)).unwrap() {
        assert_eq!(text, long);
        assert!(over && n > 8);
    }
    // Out of range.
    assert_eq!(optimize_full(e, prompt, &options_budget(Some(5000), false)).unwrap_err(), promptist_status::InvalidOptions);
    // SAFETY: the engine is no longer used.
    unsafe { promptist_engine_free(e) };
}
