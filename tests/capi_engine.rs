//! The C ABI driven from Rust on a tiny random bundle: open/optimize/free, every documented error
//! status (NULL, bad UTF-8, empty and over-long prompt, missing / corrupt bundle files, num_beams 0,
//! small struct_size), the cpu_matmul engine option, and one engine shared by several threads at once.
//! Needs ORT_DYLIB_PATH (fails with a clear message without it).

mod common;

use std::ffi::{CStr, CString};
use std::path::{Path, PathBuf};
use std::ptr::{null, null_mut};
use std::sync::OnceLock;

use promptist::capi::engine::{promptist_engine_free, promptist_engine_open, promptist_engine_policy_is_random, promptist_optimize};
use promptist::capi::error::{promptist_error_code, promptist_error_free, promptist_error_message};
use promptist::capi::options::{promptist_engine_options, promptist_engine_options_init, promptist_optimize_options, promptist_optimize_options_init};
use promptist::capi::result::{
    promptist_optimize_result_count, promptist_optimize_result_free, promptist_optimize_result_random_weights,
    promptist_optimize_result_score, promptist_optimize_result_seed, promptist_optimize_result_text,
};
use promptist::capi::{promptist_engine, promptist_error, promptist_optimize_result, promptist_status, promptist_strategy};

use common::ort_ready;

/// A tiny random bundle made once for the whole test binary, plus a broken copy of each kind.
struct Bundles {
    _dir: tempfile::TempDir,
    good: PathBuf,
    /// The same checkpoint converted with float16 weights and KV cache.
    fp16: PathBuf,
    missing: PathBuf,
    corrupt: PathBuf,
}

fn bundles() -> &'static Bundles {
    static B: OnceLock<Bundles> = OnceLock::new();
    B.get_or_init(|| {
        ort_ready();
        let dir = tempfile::tempdir().unwrap();
        let ck = dir.path().join("ck");
        let cfg = promptist::export::Gpt2Config::preset("tiny").unwrap();
        promptist::export::write_random_checkpoint(&ck, &cfg, 11, promptist::export::tiny::LmHead::Untied { scale: promptist::export::tiny::DEFAULT_SCALE }).unwrap();
        let good = dir.path().join("good");
        promptist::export::convert_checkpoint(&ck, &good, &promptist::export::ConvertOptions::default(), &mut |_| {}).unwrap();
        let fp16 = dir.path().join("fp16");
        let o16 = promptist::export::ConvertOptions { dtype: promptist::export::onnx::DType::F16, ..Default::default() };
        promptist::export::convert_checkpoint(&ck, &fp16, &o16, &mut |_| {}).unwrap();
        let copy = |name: &str| {
            let to = dir.path().join(name);
            std::fs::create_dir_all(to.join("policy")).unwrap();
            for e in walk(&good) {
                let rel = e.strip_prefix(&good).unwrap();
                std::fs::copy(&e, to.join(rel)).unwrap();
            }
            to
        };
        let missing = copy("missing");
        std::fs::remove_file(missing.join("policy/tokenizer.json")).unwrap();
        let corrupt = copy("corrupt");
        let p = corrupt.join("policy/model.onnx_data");
        let mut bytes = std::fs::read(&p).unwrap();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 1;
        std::fs::write(&p, bytes).unwrap();
        Bundles { _dir: dir, good, fp16, missing, corrupt }
    })
}

fn walk(d: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(d).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

fn cpath(p: &Path) -> CString {
    CString::new(p.to_str().unwrap()).unwrap()
}

/// Take an error object: its code and message (asserted non-empty), freeing it.
fn take(err: *mut promptist_error) -> (promptist_status, String) {
    assert!(!err.is_null(), "expected an error object");
    // SAFETY: test code: every pointer passed is NULL on purpose or a valid, live object this code owns.
    let code = unsafe { promptist_error_code(err) };
    // SAFETY: test code: every pointer passed is NULL on purpose or a valid, live object this code owns.
    let msg = unsafe { CStr::from_ptr(promptist_error_message(err)) }.to_str().unwrap().to_string();
    // SAFETY: test code: every pointer passed is NULL on purpose or a valid, live object this code owns.
    unsafe { promptist_error_free(err) };
    assert!(!msg.is_empty());
    (code, msg)
}

fn open(path: &Path) -> Result<*mut promptist_engine, (promptist_status, String)> {
    let (mut e, mut err) = (null_mut(), null_mut());
    // SAFETY: test code: every pointer passed is NULL on purpose or a valid, live object this code owns.
    let s = unsafe { promptist_engine_open(cpath(path).as_ptr(), null(), &mut e, &mut err) };
    if s == promptist_status::Ok {
        assert!(err.is_null() && !e.is_null());
        Ok(e)
    } else {
        assert!(e.is_null());
        let (code, msg) = take(err);
        assert_eq!(code, s);
        Err((s, msg))
    }
}

struct Engine(*mut promptist_engine);
// SAFETY: an engine handle may be used and freed from any thread (docs/c-abi.md, "Threading").
unsafe impl Send for Engine {}
// SAFETY: one engine may be used from many threads at once (docs/c-abi.md, "Threading").
unsafe impl Sync for Engine {}
impl Drop for Engine {
    fn drop(&mut self) {
        // SAFETY: test code: every pointer passed is NULL on purpose or a valid, live object this code owns.
        unsafe { promptist_engine_free(self.0) };
    }
}

fn options() -> promptist_optimize_options {
    let mut o = std::mem::MaybeUninit::<promptist_optimize_options>::uninit();
    // SAFETY: test code: every pointer passed is NULL on purpose or a valid, live object this code owns.
    let s = unsafe { promptist_optimize_options_init(o.as_mut_ptr(), std::mem::size_of::<promptist_optimize_options>()) };
    assert_eq!(s, promptist_status::Ok);
    // SAFETY: test code: every pointer passed is NULL on purpose or a valid, live object this code owns.
    unsafe { o.assume_init() }
}

fn optimize(e: &Engine, prompt: &[u8], o: Option<&promptist_optimize_options>) -> Result<Vec<(String, f32)>, (promptist_status, String)> {
    let prompt = CString::new(prompt).unwrap();
    let (mut r, mut err): (*mut promptist_optimize_result, _) = (null_mut(), null_mut());
    // SAFETY: test code: every pointer passed is NULL on purpose or a valid, live object this code owns.
    let s = unsafe { promptist_optimize(e.0, prompt.as_ptr(), o.map_or(null(), |o| o as *const _), &mut r, &mut err) };
    if s != promptist_status::Ok {
        assert!(r.is_null());
        let (code, msg) = take(err);
        assert_eq!(code, s);
        return Err((s, msg));
    }
    // SAFETY: test code: every pointer passed is NULL on purpose or a valid, live object this code owns.
    let n = unsafe { promptist_optimize_result_count(r) };
    let out = (0..n)
        // SAFETY: test code: every pointer passed is NULL on purpose or a valid, live object this code owns.
        .map(|i| unsafe {
            (
                CStr::from_ptr(promptist_optimize_result_text(r, i)).to_str().unwrap().to_string(),
                promptist_optimize_result_score(r, i),
            )
        })
        .collect();
    // SAFETY: test code: every pointer passed is NULL on purpose or a valid, live object this code owns.
    assert!(unsafe { promptist_optimize_result_random_weights(r) });
    // SAFETY: test code: every pointer passed is NULL on purpose or a valid, live object this code owns.
    assert!(unsafe { promptist_optimize_result_text(r, n) }.is_null());
    // SAFETY: test code: every pointer passed is NULL on purpose or a valid, live object this code owns.
    unsafe { promptist_optimize_result_free(r) };
    Ok(out)
}

fn small(o: &mut promptist_optimize_options) {
    o.num_beams = 3;
    o.num_return_sequences = 3;
    o.max_new_tokens = 8;
}

#[test]
fn open_and_optimize() {
    let e = Engine(open(&bundles().good).unwrap());
    // SAFETY: test code: every pointer passed is NULL on purpose or a valid, live object this code owns.
    assert!(unsafe { promptist_engine_policy_is_random(e.0) });
    let mut o = options();
    small(&mut o);
    let c = optimize(&e, b"a cat sitting on a mat", Some(&o)).unwrap();
    assert_eq!(c.len(), 3);
    assert!(c.windows(2).all(|w| w[0].1 >= w[1].1), "scores best first: {c:?}");
    // Sampling with a seed reports it.
    o.strategy = promptist_strategy::Sample as i32;
    o.num_return_sequences = 1;
    o.has_seed = 1;
    o.seed = 99;
    let prompt = CString::new("a dog").unwrap();
    let (mut r, mut err) = (null_mut(), null_mut());
    // SAFETY: test code: every pointer passed is NULL on purpose or a valid, live object this code owns.
    let s = unsafe { promptist_optimize(e.0, prompt.as_ptr(), &o, &mut r, &mut err) };
    assert_eq!(s, promptist_status::Ok);
    let mut seed = 0u64;
    // SAFETY: test code: every pointer passed is NULL on purpose or a valid, live object this code owns.
    assert!(unsafe { promptist_optimize_result_seed(r, &mut seed) });
    assert_eq!(seed, 99);
    // SAFETY: test code: every pointer passed is NULL on purpose or a valid, live object this code owns.
    unsafe { promptist_optimize_result_free(r) };
}

/// A float16 bundle (fp16 KV cache) opens and optimizes through the C ABI; its best candidate's
/// score is within 1e-2 (relative) of the float32 bundle's (the same candidate, or a near-tie).
/// Token-level fp16/fp32 parity is tests/policy_fp16.rs.
#[test]
fn fp16_bundle_optimizes() {
    let (e32, e16) = (Engine(open(&bundles().good).unwrap()), Engine(open(&bundles().fp16).unwrap()));
    let mut o = options();
    small(&mut o);
    for p in [&b"a cat sitting on a mat"[..], b"a castle on a hill at sunset", b"portrait of an old sailor"] {
        let (c32, c16) = (optimize(&e32, p, Some(&o)).unwrap(), optimize(&e16, p, Some(&o)).unwrap());
        assert_eq!(c16.len(), c32.len(), "{c16:?}");
        assert!(c16.windows(2).all(|w| w[0].1 >= w[1].1), "scores best first: {c16:?}");
        let (a, b) = (c32[0].1, c16[0].1);
        assert!((a - b).abs() <= 1e-2 * a.abs().max(1.0), "best score fp32 {a} vs fp16 {b}: {c32:?} / {c16:?}");
        eprintln!("{:?}: best fp32 {:?} ({a}), fp16 {:?} ({b})", String::from_utf8_lossy(p), c32[0].0, c16[0].0);
    }
}

#[test]
fn bundle_errors() {
    let b = bundles();
    assert_eq!(open(&b.good.join("does-not-exist")).unwrap_err().0, promptist_status::BundleNotFound);
    let (s, msg) = open(&b.missing).unwrap_err();
    assert_eq!(s, promptist_status::BundleInvalid, "{msg}");
    assert!(msg.contains("tokenizer.json"), "{msg}");
    let (s, msg) = open(&b.corrupt).unwrap_err();
    assert_eq!(s, promptist_status::BundleChecksum, "{msg}");
    assert!(msg.contains("model.onnx_data"), "{msg}");
}

#[test]
fn prompt_and_option_errors() {
    let e = Engine(open(&bundles().good).unwrap());
    let code = |p: &[u8], o: Option<&promptist_optimize_options>| optimize(&e, p, o).unwrap_err().0;
    assert_eq!(code(b"a \xff cat", None), promptist_status::InvalidUtf8);
    assert_eq!(code(b"", None), promptist_status::EmptyPrompt);
    assert_eq!(code(b" \t\n ", None), promptist_status::EmptyPrompt);
    // The tiny model's context is 256 tokens: 200 words + 75 new tokens do not fit.
    assert_eq!(code("cat ".repeat(200).as_bytes(), None), promptist_status::PromptTooLong);
    let mut o = options();
    o.num_beams = 0;
    assert_eq!(code(b"a cat", Some(&o)), promptist_status::InvalidOptions);
    let mut o = options();
    o.struct_size = 8;
    assert_eq!(code(b"a cat", Some(&o)), promptist_status::InvalidOptions);
    // NULL prompt / result / engine.
    let (mut r, mut err) = (null_mut(), null_mut());
    // SAFETY: test code: every pointer passed is NULL on purpose or a valid, live object this code owns.
    assert_eq!(unsafe { promptist_optimize(e.0, null(), null(), &mut r, &mut err) }, promptist_status::NullArgument);
    take(err);
    let p = CString::new("a cat").unwrap();
    // SAFETY: test code: every pointer passed is NULL on purpose or a valid, live object this code owns.
    assert_eq!(unsafe { promptist_optimize(e.0, p.as_ptr(), null(), null_mut(), &mut err) }, promptist_status::NullArgument);
    take(err);
    // SAFETY: test code: every pointer passed is NULL on purpose or a valid, live object this code owns.
    assert_eq!(unsafe { promptist_optimize(null(), p.as_ptr(), null(), &mut r, &mut err) }, promptist_status::NullArgument);
    take(err);
}

#[test]
fn one_engine_many_threads() {
    let e = Engine(open(&bundles().good).unwrap());
    let mut o = options();
    small(&mut o);
    let prompts: Vec<String> = (0..6).map(|i| format!("a house number {i} by the sea")).collect();
    let expected: Vec<_> = prompts.iter().map(|p| optimize(&e, p.as_bytes(), Some(&o)).unwrap()).collect();
    let got: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = prompts
            .iter()
            .map(|p| {
                let e = &e;
                s.spawn(move || {
                    // The options struct holds raw (callback) pointers, so each thread makes its own.
                    let mut o = options();
                    small(&mut o);
                    optimize(e, p.as_bytes(), Some(&o)).unwrap()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(got, expected, "concurrent calls on one engine must give the single-threaded results");
}

#[test]
fn providers_cuda_is_never_a_silent_cpu_run() {
    use promptist::capi::engine::promptist_engine_provider;
    use promptist::capi::options::{promptist_engine_options, promptist_engine_options_init};
    use promptist::capi::promptist_provider;
    let b = bundles();
    let open_with = |provider: promptist_provider| {
        let mut o = std::mem::MaybeUninit::<promptist_engine_options>::uninit();
        // SAFETY: test code: every pointer passed is NULL on purpose or a valid, live object this code owns.
        let s = unsafe { promptist_engine_options_init(o.as_mut_ptr(), std::mem::size_of::<promptist_engine_options>()) };
        assert_eq!(s, promptist_status::Ok);
        // SAFETY: test code: every pointer passed is NULL on purpose or a valid, live object this code owns.
        let mut o = unsafe { o.assume_init() };
        o.provider = provider as i32;
        let (mut e, mut err) = (null_mut(), null_mut());
        // SAFETY: test code: every pointer passed is NULL on purpose or a valid, live object this code owns.
        let s = unsafe { promptist_engine_open(cpath(&b.good).as_ptr(), &o, &mut e, &mut err) };
        if s == promptist_status::Ok {
            let engine = Engine(e);
            // SAFETY: test code: every pointer passed is NULL on purpose or a valid, live object this code owns.
            Ok(unsafe { promptist_engine_provider(engine.0) })
        } else {
            Err(take(err))
        }
    };
    assert_eq!(open_with(promptist_provider::Cpu).unwrap(), promptist_provider::Cpu);
    let auto = open_with(promptist_provider::Auto).unwrap();
    match open_with(promptist_provider::Cuda) {
        // A CUDA-capable ONNX Runtime and GPU: CUDA runs, and auto picks it too.
        Ok(p) => {
            assert_eq!(p, promptist_provider::Cuda);
            assert_eq!(auto, promptist_provider::Cuda);
        }
        // No CUDA (e.g. the CPU wheel): an error, never a CPU engine; auto falls back to CPU.
        Err((code, msg)) => {
            assert_eq!(code, promptist_status::ProviderUnavailable, "{msg}");
            assert_eq!(auto, promptist_provider::Cpu);
        }
    }
}

/// `promptist_engine_options.cpu_matmul`: PACKED (default) and ONNXRUNTIME give the same candidates
/// (scores within 1e-5 relative: float rounding of the summation order); an unknown value is
/// INVALID_OPTIONS; a caller built before the field existed (`struct_size` ending before it) gets
/// the default and the bytes past its struct are never read.
#[test]
fn cpu_matmul_option() {
    use promptist::capi::options::{promptist_engine_options, promptist_engine_options_init};
    use promptist::capi::promptist_cpu_matmul;
    let b = bundles();
    let open_with = |f: &dyn Fn(&mut promptist_engine_options)| {
        let mut o = std::mem::MaybeUninit::<promptist_engine_options>::uninit();
        // SAFETY: test code: every pointer passed is NULL on purpose or a valid, live object this code owns.
        let s = unsafe { promptist_engine_options_init(o.as_mut_ptr(), std::mem::size_of::<promptist_engine_options>()) };
        assert_eq!(s, promptist_status::Ok);
        // SAFETY: test code: every pointer passed is NULL on purpose or a valid, live object this code owns.
        let mut o = unsafe { o.assume_init() };
        assert_eq!(o.cpu_matmul, promptist_cpu_matmul::Packed as i32, "the default");
        f(&mut o);
        let (mut e, mut err) = (null_mut(), null_mut());
        // SAFETY: test code: every pointer passed is NULL on purpose or a valid, live object this code owns.
        let s = unsafe { promptist_engine_open(cpath(&b.good).as_ptr(), &o, &mut e, &mut err) };
        if s == promptist_status::Ok {
            Ok(Engine(e))
        } else {
            Err(take(err))
        }
    };
    let packed = open_with(&|_| {}).unwrap();
    let ort = open_with(&|o| o.cpu_matmul = promptist_cpu_matmul::OnnxRuntime as i32).unwrap();
    let old = open_with(&|o| {
        o.struct_size = std::mem::offset_of!(promptist_engine_options, cpu_matmul);
        o.cpu_matmul = 7; // past the caller's struct: must not be read
    })
    .unwrap();
    let mut o = options();
    small(&mut o);
    for p in [&b"a cat sitting on a mat"[..], b"a castle on a hill at sunset", b"portrait of an old sailor"] {
        let want = optimize(&ort, p, Some(&o)).unwrap();
        for got in [optimize(&packed, p, Some(&o)).unwrap(), optimize(&old, p, Some(&o)).unwrap()] {
            assert_eq!(got.len(), want.len());
            for ((gt, gs), (wt, ws)) in got.iter().zip(&want) {
                assert_eq!(gt, wt, "{got:?} vs {want:?}");
                assert!((gs - ws).abs() <= 1e-5 * ws.abs().max(1.0), "{got:?} vs {want:?}");
            }
        }
    }
    let (code, msg) = open_with(&|o| o.cpu_matmul = 7).err().expect("an unknown cpu_matmul must fail");
    assert_eq!(code, promptist_status::InvalidOptions);
    assert!(msg.contains("cpu_matmul"), "{msg}");
}

/// The numbers that once killed the process (an allocation sized from them aborted) now get
/// INVALID_OPTIONS naming the field, its value and its range, before anything is allocated.
#[test]
fn numbers_beyond_the_caps_are_refused_before_allocation() {
    use promptist::capi::limits::{PROMPTIST_MAX_BEAMS, PROMPTIST_MAX_NEW_TOKENS, PROMPTIST_MAX_RETURN_SEQUENCES, PROMPTIST_MAX_THREADS};
    let e = Engine(open(&bundles().good).unwrap());
    let refused = |o: &promptist_optimize_options, field: &str, value: u64| {
        let (code, msg) = optimize(&e, b"a cat", Some(o)).unwrap_err();
        assert_eq!(code, promptist_status::InvalidOptions, "{msg}");
        assert!(msg.contains(&format!("{field} = {value} is out of range")), "{field}: {msg}");
    };
    for v in [i32::MAX as u32, u32::MAX, PROMPTIST_MAX_BEAMS + 1] {
        let mut o = options();
        o.num_beams = v;
        o.num_return_sequences = 1;
        refused(&o, "num_beams", v as u64);
        let mut o = options();
        o.strategy = promptist_strategy::Sample as i32;
        o.num_return_sequences = v.max(PROMPTIST_MAX_RETURN_SEQUENCES + 1);
        refused(&o, "num_return_sequences", o.num_return_sequences as u64);
        let mut o = options();
        o.max_new_tokens = v.max(PROMPTIST_MAX_NEW_TOKENS + 1);
        refused(&o, "max_new_tokens", o.max_new_tokens as u64);
    }
    // The largest values in range still work (beams at the cap, one short sequence).
    let mut o = options();
    o.num_beams = PROMPTIST_MAX_BEAMS;
    o.num_return_sequences = PROMPTIST_MAX_RETURN_SEQUENCES;
    o.max_new_tokens = 2;
    assert_eq!(optimize(&e, b"a cat", Some(&o)).unwrap().len(), PROMPTIST_MAX_RETURN_SEQUENCES as usize);

    for threads in [100_000u32, i32::MAX as u32, PROMPTIST_MAX_THREADS + 1] {
        let mut eo = std::mem::MaybeUninit::<promptist_engine_options>::uninit();
        // SAFETY: test code: `eo` is writable for its size.
        assert_eq!(unsafe { promptist_engine_options_init(eo.as_mut_ptr(), std::mem::size_of::<promptist_engine_options>()) }, promptist_status::Ok);
        // SAFETY: initialised by the call above.
        let mut eo = unsafe { eo.assume_init() };
        eo.intra_op_threads = threads;
        let (mut engine, mut err) = (null_mut(), null_mut());
        // SAFETY: test code: every pointer passed is NULL on purpose or a valid, live object this code owns.
        let s = unsafe { promptist_engine_open(cpath(&bundles().good).as_ptr(), &eo, &mut engine, &mut err) };
        assert_eq!(s, promptist_status::InvalidOptions);
        assert!(engine.is_null());
        let (_, msg) = take(err);
        assert!(msg.contains(&format!("intra_op_threads = {threads} is out of range [0, {PROMPTIST_MAX_THREADS}]")), "{msg}");
    }
}
