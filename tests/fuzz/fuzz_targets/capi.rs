//! The C ABI with arbitrary input: prompt bytes (NUL-terminated where they hold no NUL) and option
//! structs whose every field is left at its default, set to a small valid value or to raw fuzz
//! bits, through `promptist_optimize` and `promptist_score` on one engine over the tiny bundle.
//! The call must return an error object exactly when it failed and a result exactly when it
//! succeeded. In-range requests that would only be slow (large images,
//! many steps) are not sent: their checks are covered by the limits tests.
#![no_main]

use std::ffi::{c_void, CString};
use std::ptr;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use promptist::capi::engine::{promptist_engine_open, promptist_optimize};
use promptist::capi::error::promptist_error_free;
use promptist::capi::options::{promptist_engine_options_init, promptist_optimize_options_init};
use promptist::capi::result::promptist_optimize_result_free;
use promptist::capi::score::{promptist_score, promptist_score_options_init};
use promptist::capi::score_result::promptist_score_result_free;
use promptist::capi::status::promptist_status;
use promptist::capi::{promptist_engine, promptist_engine_options, promptist_error, promptist_optimize_options, promptist_score_options};
use promptist_fuzz::Bytes;

struct EnginePtr(*mut promptist_engine);
// SAFETY: the engine is documented thread-safe; the fuzzer calls from one thread anyway.
unsafe impl Send for EnginePtr {}
// SAFETY: as above.
unsafe impl Sync for EnginePtr {}

fn engine() -> *const promptist_engine {
    static E: OnceLock<EnginePtr> = OnceLock::new();
    E.get_or_init(|| {
        let path = CString::new(promptist_fuzz::template_bundle().to_str().expect("UTF-8 path")).expect("no NUL");
        let mut o: promptist_engine_options = unsafe { std::mem::zeroed() };
        // SAFETY: `o` is a live struct of the size passed.
        unsafe { promptist_engine_options_init(&mut o, std::mem::size_of::<promptist_engine_options>()) };
        o.intra_op_threads = 1;
        let mut e = ptr::null_mut();
        let mut err = ptr::null_mut();
        // SAFETY: valid pointers, NUL-terminated path.
        let st = unsafe { promptist_engine_open(path.as_ptr(), &o, &mut e, &mut err) };
        assert_eq!(st, promptist_status::Ok, "the tiny bundle must open");
        EnginePtr(e)
    })
    .0
}

/// A field's value: the default (mode 0), a small valid value from `small`, or raw fuzz bits.
fn pick_u32(b: &mut Bytes, default: u32, small: impl Fn(u32) -> u32) -> u32 {
    match b.u8() % 3 {
        0 => default,
        1 => small(b.u32()),
        _ => b.u32(),
    }
}

fn pick_f32(b: &mut Bytes, default: f32, small: impl Fn(u32) -> f32) -> f32 {
    match b.u8() % 3 {
        0 => default,
        1 => small(b.u32()),
        _ => b.f32(),
    }
}

/// `struct_size`: this library's, an older valid one, or arbitrary (the struct sits in a buffer
/// with room to spare, so a larger claim reads only memory the harness owns).
fn pick_size(b: &mut Bytes, full: usize) -> usize {
    match b.u8() % 4 {
        0 | 1 => full,
        2 => full - (usize::from(b.u8()) % 16) * 4,
        _ => (b.u32() as usize) % (full + 512),
    }
}

#[repr(C)]
struct Padded<T> {
    value: T,
    room: [u8; 512],
}

struct Cb {
    stop_after: u32,
    calls: u32,
}

extern "C" fn progress(_stage: i32, _step: usize, _total: usize, user: *mut c_void) -> bool {
    // SAFETY: `user` is the `Cb` the harness passed for this call.
    let cb = unsafe { &mut *(user as *mut Cb) };
    cb.calls += 1;
    cb.stop_after == 0 || cb.calls < cb.stop_after
}

fn check(st: promptist_status, err: *mut promptist_error, has_result: bool) {
    if st == promptist_status::Ok {
        assert!(err.is_null(), "an error object on success");
        assert!(has_result, "no result on success");
    } else {
        assert!(!err.is_null(), "no error object for {st:?}");
        assert!(!has_result, "a result on failure");
        // SAFETY: an error object the library made.
        unsafe { promptist_error_free(err) };
    }
}

fn prompt_of(bytes: &[u8]) -> CString {
    let end = bytes.iter().position(|&c| c == 0).unwrap_or(bytes.len());
    CString::new(&bytes[..end.min(4096)]).expect("cut at the first NUL")
}

fuzz_target!(|data: &[u8]| {
    let mut b = Bytes::new(data);
    let which = b.u8();
    let use_progress = b.u8();
    let mut cb = Cb { stop_after: u32::from(b.u8() % 8), calls: 0 };
    let cancel: i32 = i32::from(b.u8() % 16 == 0);
    if which % 2 == 0 {
        let mut o: Padded<promptist_optimize_options> = unsafe { std::mem::zeroed() };
        let full = std::mem::size_of::<promptist_optimize_options>();
        // SAFETY: `o` has room for the struct.
        unsafe { promptist_optimize_options_init(&mut o.value, full) };
        let v = &mut o.value;
        v.strategy = pick_u32(&mut b, v.strategy as u32, |x| x % 5) as i32;
        v.num_beams = pick_u32(&mut b, v.num_beams, |x| 1 + x % 8);
        v.num_beam_groups = pick_u32(&mut b, v.num_beam_groups, |x| 1 + x % 8);
        v.diversity_penalty = pick_f32(&mut b, v.diversity_penalty, |x| (x % 40) as f32 / 10.0);
        v.length_penalty = pick_f32(&mut b, v.length_penalty, |x| (x % 40) as f32 / 10.0 - 2.0);
        v.early_stopping = pick_u32(&mut b, v.early_stopping as u32, |x| x % 4) as i32;
        v.temperature = pick_f32(&mut b, v.temperature, |x| (x % 40) as f32 / 10.0);
        v.top_k = pick_u32(&mut b, v.top_k, |x| x % 100);
        v.top_p = pick_f32(&mut b, v.top_p, |x| (x % 11) as f32 / 10.0);
        v.has_seed = pick_u32(&mut b, v.has_seed as u32, |x| x % 2) as i32;
        v.seed = b.u64();
        v.max_new_tokens = pick_u32(&mut b, v.max_new_tokens, |x| x % 24);
        v.num_return_sequences = pick_u32(&mut b, v.num_return_sequences, |x| x % 9);
        v.keep_syntax = pick_u32(&mut b, v.keep_syntax as u32, |x| x % 2) as i32;
        v.max_clip_tokens = pick_u32(&mut b, v.max_clip_tokens, |x| x % 80);
        if use_progress % 2 == 1 {
            v.progress = Some(progress);
            v.user_data = &mut cb as *mut Cb as *mut c_void;
        }
        if use_progress % 4 >= 2 {
            v.cancel_flag = &cancel;
        }
        v.struct_size = pick_size(&mut b, full);
        let prompt = prompt_of(b.rest());
        let mut r = ptr::null_mut();
        let mut err = ptr::null_mut();
        // SAFETY: valid engine, NUL-terminated prompt, options with room for any claimed size.
        let st = unsafe { promptist_optimize(engine(), prompt.as_ptr(), &o.value, &mut r, &mut err) };
        check(st, err, !r.is_null());
        // SAFETY: NULL or a result the library made.
        unsafe { promptist_optimize_result_free(r) };
    } else {
        let mut o: Padded<promptist_score_options> = unsafe { std::mem::zeroed() };
        let full = std::mem::size_of::<promptist_score_options>();
        // SAFETY: `o` has room for the struct.
        unsafe { promptist_score_options_init(&mut o.value, full) };
        let v = &mut o.value;
        v.width = pick_u32(&mut b, v.width, |x| 8 * (1 + x % 8));
        v.height = pick_u32(&mut b, v.height, |x| 8 * (1 + x % 8));
        v.steps = pick_u32(&mut b, v.steps, |x| x % 4);
        v.guidance_scale = pick_f32(&mut b, v.guidance_scale, |x| (x % 200) as f32 / 10.0 - 5.0);
        v.images_per_prompt = pick_u32(&mut b, v.images_per_prompt, |x| x % 3);
        v.seed = b.u64();
        v.scheduler = pick_u32(&mut b, v.scheduler as u32, |x| x % 3) as i32;
        v.max_batch = pick_u32(&mut b, v.max_batch, |x| x % 5);
        v.return_images = pick_u32(&mut b, v.return_images as u32, |x| x % 2) as i32;
        if use_progress % 2 == 1 {
            v.progress = Some(progress);
            v.user_data = &mut cb as *mut Cb as *mut c_void;
        }
        if use_progress % 4 >= 2 {
            v.cancel_flag = &cancel;
        }
        v.struct_size = pick_size(&mut b, full);
        // Not sent: in range but slow (the defaults' 512x512x20 included).
        let work = u64::from(v.width) * u64::from(v.height) * u64::from(v.steps.max(1)) * u64::from(v.images_per_prompt.max(1));
        if v.width <= 2048 && v.height <= 2048 && v.steps <= 1000 && v.images_per_prompt <= 16 && work > 64 * 64 * 3 * 2 {
            return;
        }
        let rest = b.rest();
        let cut = rest.len() / 2;
        let user = prompt_of(&rest[..cut]);
        let cand = prompt_of(&rest[cut..]);
        let mut r = ptr::null_mut();
        let mut err = ptr::null_mut();
        // SAFETY: as for optimize.
        let st = unsafe { promptist_score(engine(), user.as_ptr(), cand.as_ptr(), &o.value, &mut r, &mut err) };
        check(st, err, !r.is_null());
        // SAFETY: NULL or a result the library made.
        unsafe { promptist_score_result_free(r) };
    }
});
