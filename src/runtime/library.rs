//! Locating and loading the ONNX Runtime shared library once per process (ort's `load-dynamic`
//! mode, `ort::init_from`). An explicit path from the engine options is the only place tried when
//! given (a path that cannot be loaded is an error, never a silent fallback); without one the
//! search order is `ORT_DYLIB_PATH`, next to the promptist library itself, then the system loader.
//! ONNX Runtime loads once per process: a later engine asking for another file gets an error.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use ort::environment::Environment;

use crate::error::{Error, Result};

/// The file names looked for next to the promptist library, in order.
pub const NEIGHBOUR_NAMES: &[&str] = &[
    "libonnxruntime.so",
    "libonnxruntime.so.1.31.1",
    "libonnxruntime.so.1.30.0",
];
/// The name handed to the system loader last.
pub const SYSTEM_NAME: &str = "libonnxruntime.so";
/// The environment variable with a library path (the same one ort reads).
pub const ENV_VAR: &str = "ORT_DYLIB_PATH";

/// Where a library candidate came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LibrarySource {
    /// `EngineOptions::ort_library_path`.
    Explicit,
    /// The `ORT_DYLIB_PATH` environment variable.
    EnvVar,
    /// The folder of the promptist shared library (or of the executable it is linked into).
    NextToLibrary,
    /// The system dynamic loader's search path.
    System,
}

impl LibrarySource {
    pub fn name(self) -> &'static str {
        match self {
            LibrarySource::Explicit => "engine option ort_library_path",
            LibrarySource::EnvVar => "ORT_DYLIB_PATH",
            LibrarySource::NextToLibrary => "next to the promptist library",
            LibrarySource::System => "system loader",
        }
    }
}

/// One place that was tried, and why it did not work (None when it worked).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub source: LibrarySource,
    pub path: PathBuf,
    pub failure: Option<String>,
}

impl std::fmt::Display for Attempt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.source.name())?;
        if !self.path.as_os_str().is_empty() {
            write!(f, " `{}`", self.path.display())?;
        }
        match &self.failure {
            Some(why) => write!(f, ": {why}"),
            None => write!(f, ": loaded"),
        }
    }
}

/// The ONNX Runtime library this process uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LibraryInfo {
    /// The path that was loaded (as given to the loader).
    pub path: PathBuf,
    /// The file the loader resolved it to, when known (useful for the system-loader case).
    pub resolved_path: Option<PathBuf>,
    pub source: LibrarySource,
    /// ONNX Runtime's version string, e.g. "1.31.1".
    pub version: String,
    /// Every place tried before (and including) the one that worked.
    pub attempts: Vec<Attempt>,
}

/// A handle on the process-wide ONNX Runtime (library + ort environment). Cheap to clone.
#[derive(Clone)]
pub struct Runtime {
    pub(crate) env: Environment,
    info: LibraryInfo,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("library", &self.info)
            .finish()
    }
}

static RUNTIME: Mutex<Option<(Environment, LibraryInfo)>> = Mutex::new(None);

impl Runtime {
    /// The process's ONNX Runtime, loading it on first use: from `explicit` alone when given
    /// (RUNTIME_NOT_FOUND naming it when it cannot be loaded), else from the search order
    /// (`ORT_DYLIB_PATH`, next to the promptist library, system loader).
    ///
    /// ONNX Runtime can be loaded only once per process. When it is already loaded and `explicit`
    /// names a different file, the call fails with INVALID_OPTIONS naming both files.
    pub fn get(explicit: Option<&Path>) -> Result<Runtime> {
        let mut guard = RUNTIME
            .lock()
            .map_err(|_| Error::Internal("runtime lock poisoned".into()))?;
        if let Some((env, info)) = guard.as_ref() {
            if let Some(p) = explicit.filter(|p| !same_file(p, info)) {
                return Err(Error::InvalidOptions(format!(
                    "ort_library_path `{}` is not the ONNX Runtime this process already loaded (`{}`, {} {}): ONNX Runtime loads once per process; pass that path or none",
                    p.display(),
                    info.resolved_path.as_deref().unwrap_or(&info.path).display(),
                    info.source.name(),
                    info.version
                )));
            }
            return Ok(Runtime { env: env.clone(), info: info.clone() });
        }
        let info = load(explicit)?;
        let env = ort::init()
            .with_name("promptist")
            .with_telemetry(false)
            .build()
            .map_err(|e| {
                Error::RuntimeNotFound(format!(
                    "{} loaded but its ONNX Runtime environment could not be created (ort allows one per \
                     process; was ort used before promptist::runtime::Runtime::get?): {e}",
                    info.path.display()
                ))
            })?;
        *guard = Some((env.clone(), info.clone()));
        Ok(Runtime { env, info })
    }

    /// The library in use.
    pub fn library(&self) -> &LibraryInfo {
        &self.info
    }

}

/// The library this process has loaded, if any (loads nothing).
pub fn loaded() -> Option<LibraryInfo> {
    RUNTIME.lock().ok().and_then(|g| g.as_ref().map(|(_, info)| info.clone()))
}

fn same_file(p: &Path, info: &LibraryInfo) -> bool {
    let canon = |q: &Path| std::fs::canonicalize(q).ok();
    let want = canon(p);
    want.is_some() && (want == canon(&info.path) || want == info.resolved_path.as_deref().and_then(canon))
}

/// Every candidate in search order: the explicit path alone when given, else the search;
/// places that cannot be tried are attempts with a failure.
pub fn candidates(explicit: Option<&Path>) -> Vec<Attempt> {
    let mut out = Vec::new();
    let push = |out: &mut Vec<Attempt>, source, path: PathBuf, failure: Option<String>| {
        out.push(Attempt { source, path, failure })
    };
    match explicit {
        Some(p) => {
            push(&mut out, LibrarySource::Explicit, p.to_path_buf(), None);
            return out;
        }
        None => push(
            &mut out,
            LibrarySource::Explicit,
            PathBuf::new(),
            Some("not set".into()),
        ),
    }
    match std::env::var_os(ENV_VAR) {
        Some(v) if !v.is_empty() => push(&mut out, LibrarySource::EnvVar, PathBuf::from(v), None),
        _ => push(&mut out, LibrarySource::EnvVar, PathBuf::new(), Some("not set".into())),
    }
    match own_library_dir() {
        Ok(dir) => {
            for name in NEIGHBOUR_NAMES {
                push(&mut out, LibrarySource::NextToLibrary, dir.join(name), None);
            }
        }
        Err(why) => push(&mut out, LibrarySource::NextToLibrary, PathBuf::new(), Some(why)),
    }
    push(&mut out, LibrarySource::System, PathBuf::from(SYSTEM_NAME), None);
    out
}

fn load(explicit: Option<&Path>) -> Result<LibraryInfo> {
    let mut attempts = Vec::new();
    for mut a in candidates(explicit) {
        if a.failure.is_some() {
            attempts.push(a);
            continue;
        }
        let is_file_path = a.source != LibrarySource::System;
        if is_file_path && !a.path.is_file() {
            a.failure = Some(if a.path.exists() {
                "not a file".into()
            } else {
                "no such file".into()
            });
            attempts.push(a);
            continue;
        }
        // An absolute path keeps ort from resolving it against the executable's folder.
        let path = if is_file_path {
            std::path::absolute(&a.path).unwrap_or(a.path.clone())
        } else {
            a.path.clone()
        };
        match ort::init_from(&path) {
            Ok(_builder) => {
                let (version, resolved_path) = loaded_version_and_file(&path);
                attempts.push(Attempt {
                    source: a.source,
                    path: path.clone(),
                    failure: None,
                });
                return Ok(LibraryInfo {
                    path,
                    resolved_path,
                    source: a.source,
                    version,
                    attempts,
                });
            }
            Err(e) => {
                a.failure = Some(e.to_string());
                attempts.push(a);
            }
        }
    }
    let list: Vec<String> = attempts.iter().map(|a| a.to_string()).collect();
    if explicit.is_some() {
        return Err(Error::RuntimeNotFound(format!(
            "{} (an explicit path is the only place tried: nothing else is loaded in its place)",
            list.join("; ")
        )));
    }
    Err(Error::RuntimeNotFound(format!(
        "{}. Get the library with tests/fetch-ort.sh (PyPI onnxruntime==1.31.1) and pass its path or set {ENV_VAR}",
        list.join("; ")
    )))
}

/// The folder of the shared object (or executable) that contains this function.
#[cfg(unix)]
pub fn own_library_dir() -> std::result::Result<PathBuf, String> {
    use std::os::unix::ffi::OsStrExt;
    // SAFETY: libc::Dl_info is plain C data (pointers and integers) for which all-zero bytes are a valid value.
    let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
    let addr = own_library_dir as fn() -> std::result::Result<PathBuf, String> as *const libc::c_void;
    // SAFETY: dladdr only reads the address and fills `info`.
    let ok = unsafe { libc::dladdr(addr, &mut info) };
    if ok == 0 || info.dli_fname.is_null() {
        return Err("dladdr could not find the promptist library".into());
    }
    // SAFETY: dli_fname is a NUL-terminated string owned by the loader.
    let fname = unsafe { std::ffi::CStr::from_ptr(info.dli_fname) };
    let path = PathBuf::from(std::ffi::OsStr::from_bytes(fname.to_bytes()));
    let path = std::fs::canonicalize(&path).unwrap_or(path);
    path.parent()
        .map(Path::to_path_buf)
        .ok_or_else(|| format!("{} has no parent folder", path.display()))
}

#[cfg(not(unix))]
pub fn own_library_dir() -> std::result::Result<PathBuf, String> {
    Err("not supported on this platform".into())
}

/// The loaded library's version string and resolved file, read through its `OrtGetApiBase` export.
#[cfg(unix)]
fn loaded_version_and_file(path: &Path) -> (String, Option<PathBuf>) {
    use std::os::unix::ffi::OsStrExt;
    let fallback = || (version_from_build_info(ort::info()), None);
    let Ok(cpath) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return fallback();
    };
    // SAFETY: RTLD_NOLOAD only returns a handle when ort has already loaded this library (it adds a
    // reference that dlclose drops); nothing new is loaded or initialised.
    let handle = unsafe { libc::dlopen(cpath.as_ptr(), libc::RTLD_LAZY | libc::RTLD_NOLOAD) };
    if handle.is_null() {
        return fallback();
    }
    // SAFETY: a valid handle and a NUL-terminated symbol name.
    let sym = unsafe { libc::dlsym(handle, c"OrtGetApiBase".as_ptr()) };
    let result = if sym.is_null() {
        fallback()
    } else {
        // SAFETY: OrtGetApiBase has this signature in every ONNX Runtime release; ort checked the
        // export when it loaded the library, and GetVersionString returns a static string.
        let version = unsafe {
            let get_base: unsafe extern "C" fn() -> *const ort::sys::OrtApiBase = std::mem::transmute(sym);
            let base = get_base();
            if base.is_null() {
                None
            } else {
                let v = ((*base).GetVersionString)();
                (!v.is_null()).then(|| std::ffi::CStr::from_ptr(v).to_string_lossy().into_owned())
            }
        };
        // SAFETY: libc::Dl_info is plain C data (pointers and integers) for which all-zero bytes are a valid value.
        let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
        // SAFETY: dladdr only reads the address and fills `info`.
        let resolved = if unsafe { libc::dladdr(sym, &mut info) } != 0 && !info.dli_fname.is_null() {
            // SAFETY: dli_fname is a NUL-terminated string owned by the loader.
            let b = unsafe { std::ffi::CStr::from_ptr(info.dli_fname) }.to_bytes();
            let p = PathBuf::from(std::ffi::OsStr::from_bytes(b));
            Some(std::fs::canonicalize(&p).unwrap_or(p))
        } else {
            None
        };
        (
            version.unwrap_or_else(|| version_from_build_info(ort::info())),
            resolved,
        )
    };
    // SAFETY: drops the reference taken by the RTLD_NOLOAD dlopen above.
    unsafe { libc::dlclose(handle) };
    result
}

#[cfg(not(unix))]
fn loaded_version_and_file(_path: &Path) -> (String, Option<PathBuf>) {
    (version_from_build_info(ort::info()), None)
}

/// "ORT Build Info: git-branch=rel-1.31.1, ..." -> "1.31.1" (the whole string when it has no branch).
fn version_from_build_info(info: &str) -> String {
    info.split([',', ' '])
        .find_map(|part| part.trim().strip_prefix("git-branch=rel-"))
        .map(str::to_string)
        .unwrap_or_else(|| info.to_string())
}
