//! Versioned options structs (`struct_size` first), their `_init` functions, and translation to
//! the Rust options. Enum-like fields are plain integers so that any value C writes is a valid
//! Rust value; unknown values are rejected with `PROMPTIST_STATUS_INVALID_OPTIONS`. Range checks
//! (e.g. `num_beams` 0) are the engine's (`crate::engine::validate_decoding`), not this layer's.

use std::ffi::{c_char, c_void};
use std::mem::size_of;
use std::path::PathBuf;

use crate::capi::cstr::opt_str_arg;
use crate::capi::status::{promptist_cpu_matmul, promptist_early_stopping as ES, promptist_provider as PV, promptist_strategy as ST};
use crate::engine::{DecodingParams, EngineOptions, OptimizeOptions, StrategyKind};
use crate::error::{Error, Result};
use crate::policy::config::EarlyStopping;
use crate::runtime::ProviderChoice;

/// Options of `promptist_engine_open`. Fill with `promptist_engine_options_init` first, then set
/// fields. Strings are borrowed only for the duration of the call.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct promptist_engine_options {
    /// `sizeof(promptist_engine_options)` as the caller knows it; set by `_init`.
    pub struct_size: usize,
    /// Path of the ONNX Runtime shared library, or NULL. When given it is the only place tried
    /// (RUNTIME_NOT_FOUND naming it if it cannot be loaded); NULL searches `ORT_DYLIB_PATH`, next
    /// to the promptist library, then the system loader. ONNX Runtime loads once per process: a
    /// path other than the loaded library's is INVALID_OPTIONS.
    pub ort_library_path: *const c_char,
    /// A `promptist_provider` value (CPU, CUDA or AUTO). Default CPU.
    pub provider: i32,
    /// CUDA device ordinal (>= 0). Default 0.
    pub device_id: i32,
    /// ONNX Runtime intra-op threads, 0..=PROMPTIST_MAX_THREADS; 0 = ONNX Runtime's default. Default 0.
    pub intra_op_threads: u32,
    /// Non-zero skips hashing the bundle's files at open. Still checked: the manifest, that every
    /// listed file exists inside the bundle, and each file's size (a file whose size differs from
    /// the manifest's is hashed after all and fails with BUNDLE_CHECKSUM). Default 0.
    pub skip_checksums: i32,
    /// A `promptist_cpu_matmul` value: how the policy's matrix products run on the CPU. Default
    /// PACKED. (Added after the first version: a caller whose `struct_size` ends before it gets
    /// the default.)
    pub cpu_matmul: i32,
}

/// Options of `promptist_optimize`. Fill with `promptist_optimize_options_init` first (defaults
/// = the Promptist reference demo: beam search, 8 beams, length_penalty -1.0, 75 new tokens,
/// 1 returned sequence), then set fields. Fields unused by the chosen strategy are ignored.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct promptist_optimize_options {
    /// `sizeof(promptist_optimize_options)` as the caller knows it; set by `_init`.
    pub struct_size: usize,
    /// A `promptist_strategy` value. Default BEAM.
    pub strategy: i32,
    /// Beams for BEAM and DIVERSE_BEAM, 1..=PROMPTIST_MAX_BEAMS. Default 8.
    pub num_beams: u32,
    /// Groups for DIVERSE_BEAM, 1..=PROMPTIST_MAX_BEAMS, dividing `num_beams`. Default 8.
    pub num_beam_groups: u32,
    /// Hamming diversity penalty for DIVERSE_BEAM (>= 0). Default 1.0.
    pub diversity_penalty: f32,
    /// Beam score = sum_logprobs / generated_length^length_penalty. Default -1.0.
    pub length_penalty: f32,
    /// A `promptist_early_stopping` value. Default HEURISTIC.
    pub early_stopping: i32,
    /// Sampling temperature (> 0). Default 1.0.
    pub temperature: f32,
    /// Sampling top-k; 0 disables. Default 50.
    pub top_k: u32,
    /// Sampling nucleus mass in (0, 1]; 1 disables. Default 1.0.
    pub top_p: f32,
    /// Non-zero: sample with `seed`; zero: the library draws a seed and reports it in the result.
    pub has_seed: i32,
    /// Sampling seed, used when `has_seed` is non-zero.
    pub seed: u64,
    /// Tokens to generate at most, 1..=PROMPTIST_MAX_NEW_TOKENS (and within the model's context). Default 75.
    pub max_new_tokens: u32,
    /// Candidates to return, best first, 1..=PROMPTIST_MAX_RETURN_SEQUENCES (<= `num_beams` for the
    /// beam strategies). Default 1.
    pub num_return_sequences: u32,
    /// Called after every decoding step on the calling thread (while the engine's session lock is
    /// held: do not call into the same engine from it); returning false cancels the call with
    /// PROMPTIST_STATUS_CANCELLED. Must not unwind (no C++ exceptions). NULL: none. Default NULL.
    pub progress: promptist_progress_fn,
    /// Passed unchanged to `progress`. Default NULL.
    pub user_data: *mut c_void,
    /// If not NULL: read atomically before decoding and after every step; non-zero cancels the call
    /// with PROMPTIST_STATUS_CANCELLED. Another thread may set it (with an atomic store). It must
    /// stay valid and 4-byte aligned for the whole call. Default NULL.
    pub cancel_flag: *const i32,
    /// Non-zero keeps the prompt's front-end syntax intact (`(word:1.2)`, `((word))`, `[word]`,
    /// `<lora:name:0.8>`, `embedding:name`, `BREAK`, `{a|b}`, `__wildcard__`, escapes): the policy
    /// sees the plain text, and each candidate is the prompt byte for byte followed by the
    /// rewrite's new phrases (docs/prompt-syntax.md). No effect on a prompt without syntax.
    /// Default 1. (Added after the first version: a caller whose `struct_size` ends before it
    /// gets the default.)
    pub keep_syntax: i32,
    /// Fit each candidate into this many CLIP tokens, 0..=PROMPTIST_MAX_CLIP_TOKENS (0 = off):
    /// counted with the embedded CLIP tokenizer on the plain text (Stable Diffusion's window is
    /// 75), cut after the last whole comma-separated phrase that fits; the user's own text is never
    /// cut (when it alone is over, it comes back unchanged and
    /// `promptist_optimize_result_over_budget` says so). Default 75. (Added after the first
    /// version: a caller whose `struct_size` ends before it gets the default.)
    pub max_clip_tokens: u32,
}

/// Progress callback of long calls: `stage` (a `promptist_stage` value), `step` of `total` done,
/// the caller's `user_data`. Return false to cancel.
pub type promptist_progress_fn = Option<unsafe extern "C" fn(stage: i32, step: usize, total: usize, user_data: *mut c_void) -> bool>;

pub(crate) use crate::capi::callbacks::Callbacks;

/// The size of the first published version of each struct: smaller `struct_size` values are
/// rejected, larger ones are accepted and only the known fields are read.
pub(crate) const ENGINE_OPTIONS_V1_SIZE: usize = std::mem::offset_of!(promptist_engine_options, cpu_matmul);
pub(crate) const OPTIMIZE_OPTIONS_V1_SIZE: usize = std::mem::offset_of!(promptist_optimize_options, keep_syntax);

impl Default for promptist_engine_options {
    fn default() -> Self {
        promptist_engine_options {
            struct_size: size_of::<Self>(),
            ort_library_path: std::ptr::null(),
            provider: PV::Cpu as i32,
            device_id: 0,
            intra_op_threads: 0,
            skip_checksums: 0,
            cpu_matmul: promptist_cpu_matmul::Packed as i32,
        }
    }
}

impl Default for promptist_optimize_options {
    /// The core's defaults ([`DecodingParams::default`]); counts that do not fit 32 bits saturate.
    fn default() -> Self {
        let d = DecodingParams::default();
        let u = |v: usize| u32::try_from(v).unwrap_or(u32::MAX);
        promptist_optimize_options {
            struct_size: size_of::<Self>(),
            strategy: match d.strategy {
                StrategyKind::Greedy => ST::Greedy,
                StrategyKind::Beam => ST::Beam,
                StrategyKind::DiverseBeam => ST::DiverseBeam,
                StrategyKind::Sample => ST::Sample,
            } as i32,
            num_beams: u(d.num_beams),
            num_beam_groups: u(d.num_beam_groups),
            diversity_penalty: d.diversity_penalty,
            length_penalty: d.length_penalty,
            early_stopping: match d.early_stopping {
                EarlyStopping::Heuristic => ES::Heuristic,
                EarlyStopping::True => ES::True,
                EarlyStopping::Never => ES::Never,
            } as i32,
            temperature: d.temperature,
            top_k: u(d.top_k),
            top_p: d.top_p,
            has_seed: i32::from(d.seed.is_some()),
            seed: d.seed.unwrap_or(0),
            max_new_tokens: u(d.max_new_tokens),
            num_return_sequences: u(d.num_return_sequences),
            progress: None,
            user_data: std::ptr::null_mut(),
            cancel_flag: std::ptr::null(),
            keep_syntax: i32::from(d.keep_syntax),
            max_clip_tokens: u(d.max_clip_tokens),
        }
    }
}

/// Write the defaults into the first `struct_size` bytes of `*p` (never more than this library's
/// struct), and set `struct_size` to the size written.
///
/// # Safety
/// `p` is NULL or points to at least `struct_size` writable bytes.
pub(crate) unsafe fn init_versioned<T: Copy + Default>(p: *mut T, struct_size: usize, v1: usize, what: &'static str) -> Result<()> {
    if p.is_null() {
        return Err(Error::NullArgument { what });
    }
    if struct_size < v1 {
        return Err(Error::InvalidOptions(format!("{what}: struct_size {struct_size} is smaller than the first version's {v1}")));
    }
    let n = struct_size.min(size_of::<T>());
    let mut d = T::default();
    // SAFETY: every options struct starts with `struct_size: usize` (repr(C)).
    unsafe { (&mut d as *mut T).cast::<usize>().write(n) };
    // SAFETY: n <= size_of::<T>() bytes are readable from `d` and writable at `p` per the contract.
    unsafe { std::ptr::copy_nonoverlapping((&d as *const T).cast::<u8>(), p.cast::<u8>(), n) };
    Ok(())
}

/// Read a versioned struct: reject `struct_size` below the first version, copy the fields the
/// caller has (at most this library's struct) over the defaults.
///
/// # Safety
/// `p` is non-NULL and points to a struct whose first field is `struct_size` and which is at least
/// that many bytes long. All fields of `T` accept every bit pattern.
pub(crate) unsafe fn read_versioned<T: Copy + Default>(p: *const T, v1: usize, what: &'static str) -> Result<T> {
    // SAFETY: the struct starts with a usize per the contract.
    let size = unsafe { p.cast::<usize>().read() };
    if size < v1 {
        return Err(Error::InvalidOptions(format!(
            "{what}.struct_size is {size}, smaller than the first version's {v1}; call the _init function first"
        )));
    }
    let n = size.min(size_of::<T>());
    let mut out = T::default();
    // SAFETY: n bytes readable at `p` (caller's struct is `size` >= n bytes), writable in `out`.
    unsafe { std::ptr::copy_nonoverlapping(p.cast::<u8>(), (&mut out as *mut T).cast::<u8>(), n) };
    Ok(out)
}

/// Fill `*options` with the defaults. Pass `sizeof(promptist_engine_options)` as `struct_size`
/// (so a program built against an older header is never written past its struct).
/// Returns NULL_ARGUMENT for NULL, INVALID_OPTIONS for a `struct_size` below the first version.
/// Thread-safe.
///
/// # Safety
/// `options` is NULL or points to `struct_size` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn promptist_engine_options_init(
    options: *mut promptist_engine_options,
    struct_size: usize,
) -> crate::capi::promptist_status {
    ffi_fallible!(std::ptr::null_mut(), {
        // SAFETY: per the contract.
        unsafe { init_versioned(options, struct_size, ENGINE_OPTIONS_V1_SIZE, "promptist_engine_options") }
    })
}

/// Fill `*options` with the defaults (the reference demo). Pass
/// `sizeof(promptist_optimize_options)` as `struct_size`. Returns NULL_ARGUMENT for NULL,
/// INVALID_OPTIONS for a `struct_size` below the first version. Thread-safe.
///
/// # Safety
/// `options` is NULL or points to `struct_size` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn promptist_optimize_options_init(
    options: *mut promptist_optimize_options,
    struct_size: usize,
) -> crate::capi::promptist_status {
    ffi_fallible!(std::ptr::null_mut(), {
        // SAFETY: per the contract.
        unsafe { init_versioned(options, struct_size, OPTIMIZE_OPTIONS_V1_SIZE, "promptist_optimize_options") }
    })
}

fn provider_choice(v: i32) -> Result<ProviderChoice> {
    match v {
        x if x == PV::Cpu as i32 => Ok(ProviderChoice::Cpu),
        x if x == PV::Cuda as i32 => Ok(ProviderChoice::Cuda),
        x if x == PV::Auto as i32 => Ok(ProviderChoice::Auto),
        _ => Err(Error::InvalidOptions(format!("unknown provider {v} (0 = CPU, 1 = CUDA, 2 = AUTO)"))),
    }
}

/// True for the packed kernel.
fn cpu_matmul(v: i32) -> Result<bool> {
    match v {
        x if x == promptist_cpu_matmul::Packed as i32 => Ok(true),
        x if x == promptist_cpu_matmul::OnnxRuntime as i32 => Ok(false),
        _ => Err(Error::InvalidOptions(format!("unknown cpu_matmul {v} (0 = PACKED, 1 = ONNXRUNTIME)"))),
    }
}

fn early_stopping(v: i32) -> Result<EarlyStopping> {
    match v {
        x if x == ES::Heuristic as i32 => Ok(EarlyStopping::Heuristic),
        x if x == ES::True as i32 => Ok(EarlyStopping::True),
        x if x == ES::Never as i32 => Ok(EarlyStopping::Never),
        _ => Err(Error::InvalidOptions(format!("unknown early_stopping {v} (0 = HEURISTIC, 1 = TRUE, 2 = NEVER)"))),
    }
}

/// Translate C engine options (NULL = defaults) into [`EngineOptions`].
///
/// # Safety
/// `p` is NULL or a valid options struct whose string fields are NULL or NUL-terminated.
pub(crate) unsafe fn engine_options(p: *const promptist_engine_options) -> Result<EngineOptions> {
    let c = if p.is_null() {
        promptist_engine_options::default()
    } else {
        // SAFETY: per the contract.
        unsafe { read_versioned(p, ENGINE_OPTIONS_V1_SIZE, "promptist_engine_options")? }
    };
    // SAFETY: per the contract.
    let ort = unsafe { opt_str_arg(c.ort_library_path, "promptist_engine_options.ort_library_path")? };
    Ok(EngineOptions {
        ort_library_path: ort.map(PathBuf::from),
        provider: provider_choice(c.provider)?,
        device_id: c.device_id,
        intra_op_threads: c.intra_op_threads as usize,
        skip_checksums: c.skip_checksums != 0,
        packed_matmul: cpu_matmul(c.cpu_matmul)?,
        ..EngineOptions::default()
    })
}

/// Translate C optimize options (NULL = defaults) into [`OptimizeOptions`].
///
/// # Safety
/// `p` is NULL or a valid options struct.
pub(crate) unsafe fn optimize_options(p: *const promptist_optimize_options) -> Result<(OptimizeOptions, Callbacks)> {
    let c = if p.is_null() {
        promptist_optimize_options::default()
    } else {
        // SAFETY: per the contract.
        unsafe { read_versioned(p, OPTIMIZE_OPTIONS_V1_SIZE, "promptist_optimize_options")? }
    };
    let strategy = match c.strategy {
        x if x == ST::Greedy as i32 => StrategyKind::Greedy,
        x if x == ST::Beam as i32 => StrategyKind::Beam,
        x if x == ST::DiverseBeam as i32 => StrategyKind::DiverseBeam,
        x if x == ST::Sample as i32 => StrategyKind::Sample,
        v => return Err(Error::InvalidOptions(format!("unknown strategy {v} (0 = GREEDY, 1 = BEAM, 2 = DIVERSE_BEAM, 3 = SAMPLE)"))),
    };
    let params = DecodingParams {
        strategy,
        num_beams: c.num_beams as usize,
        num_beam_groups: c.num_beam_groups as usize,
        diversity_penalty: c.diversity_penalty,
        length_penalty: c.length_penalty,
        early_stopping: early_stopping(c.early_stopping)?,
        temperature: c.temperature,
        top_k: c.top_k as usize,
        top_p: c.top_p,
        seed: (c.has_seed != 0).then_some(c.seed),
        max_new_tokens: c.max_new_tokens as usize,
        num_return_sequences: c.num_return_sequences as usize,
        keep_syntax: c.keep_syntax != 0,
        max_clip_tokens: c.max_clip_tokens as usize,
    };
    let callbacks = Callbacks { progress: c.progress, user_data: c.user_data, cancel_flag: c.cancel_flag };
    Ok((OptimizeOptions::from(&params), callbacks))
}

#[cfg(test)]
#[allow(clippy::field_reassign_with_default)]
mod tests {
    use super::*;
    use crate::capi::status::promptist_status;
    use crate::policy::config::{DecodingConfig, Strategy};

    #[test]
    fn defaults_match_the_core() {
        let mut o = std::mem::MaybeUninit::<promptist_optimize_options>::zeroed();
        // SAFETY: test code: every pointer passed is NULL on purpose or valid and owned by this test.
        let s = unsafe { promptist_optimize_options_init(o.as_mut_ptr(), size_of::<promptist_optimize_options>()) };
        assert_eq!(s, promptist_status::Ok);
        // SAFETY: test code: every pointer passed is NULL on purpose or valid and owned by this test.
        let o = unsafe { o.assume_init() };
        assert_eq!(o.struct_size, size_of::<promptist_optimize_options>());
        // SAFETY: test code: every pointer passed is NULL on purpose or valid and owned by this test.
        let r = unsafe { optimize_options(&o) }.unwrap().0;
        assert_eq!(r.decoding, DecodingConfig::default());
        // SAFETY: test code: every pointer passed is NULL on purpose or valid and owned by this test.
        let r = unsafe { optimize_options(std::ptr::null()) }.unwrap().0;
        assert_eq!(r.decoding, DecodingConfig::default());
    }

    #[test]
    fn small_struct_size_rejected_larger_accepted() {
        let mut o = promptist_optimize_options::default();
        o.struct_size = 8;
        // SAFETY: test code: every pointer passed is NULL on purpose or valid and owned by this test.
        assert_eq!(unsafe { optimize_options(&o) }.unwrap_err().code(), crate::Code::InvalidOptions);

        // A "future" struct: ours followed by an unknown field.
        #[repr(C)]
        #[derive(Clone, Copy)]
        struct Future {
            base: promptist_optimize_options,
            extra: u64,
        }
        let mut f = Future { base: promptist_optimize_options::default(), extra: 7 };
        f.base.struct_size = size_of::<Future>();
        f.base.num_beams = 4;
        // SAFETY: test code: every pointer passed is NULL on purpose or valid and owned by this test.
        let r = unsafe { optimize_options(&f.base) }.unwrap().0;
        assert!(matches!(r.decoding.strategy, Strategy::Beam { num_beams: 4, .. }));
    }

    #[test]
    fn init_never_writes_past_struct_size() {
        let mut buf = [0xAAu8; 256];
        // SAFETY: test code: every pointer passed is NULL on purpose or valid and owned by this test.
        let s = unsafe { promptist_engine_options_init(buf.as_mut_ptr().cast(), 200) };
        assert_eq!(s, promptist_status::Ok);
        let n = size_of::<promptist_engine_options>();
        assert!(buf[n..].iter().all(|b| *b == 0xAA));
        // SAFETY: test code: every pointer passed is NULL on purpose or valid and owned by this test.
        let s = unsafe { promptist_engine_options_init(buf.as_mut_ptr().cast(), 4) };
        assert_eq!(s, promptist_status::InvalidOptions);
        // SAFETY: test code: every pointer passed is NULL on purpose or valid and owned by this test.
        let s = unsafe { promptist_engine_options_init(std::ptr::null_mut(), n) };
        assert_eq!(s, promptist_status::NullArgument);
    }

    #[test]
    fn unknown_enum_values_rejected() {
        let mut o = promptist_optimize_options::default();
        o.strategy = 42;
        // SAFETY: test code: every pointer passed is NULL on purpose or valid and owned by this test.
        assert_eq!(unsafe { optimize_options(&o) }.unwrap_err().code(), crate::Code::InvalidOptions);
        let mut e = promptist_engine_options::default();
        e.provider = -1;
        // SAFETY: test code: every pointer passed is NULL on purpose or valid and owned by this test.
        assert_eq!(unsafe { engine_options(&e) }.unwrap_err().code(), crate::Code::InvalidOptions);
    }
}
