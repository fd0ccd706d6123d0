"""promptist: Python ctypes binding over the C API in include/promptist.h (for ComfyUI-style hosts).

The shared library is found through $PROMPTIST_LIBRARY, then next to this file, then
target/release and target/debug of the repository, then the system loader.

    from promptist import Engine
    with Engine("bundle-dir") as engine:
        result = engine.optimize("a cat on a mat", num_return_sequences=3)
        if result.random_weights:
            print("note: the policy has random weights; outputs are meaningless")
        for c in result.candidates:
            print(c.score, c.text)
"""

from __future__ import annotations

import ctypes
import os
from ctypes import POINTER, Structure, byref, c_bool, c_char_p, c_float, c_int32, c_size_t, c_uint32, c_uint64, c_void_p
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional

ABI_VERSION = 1

PROVIDERS = {"cpu": 0, "cuda": 1, "auto": 2}
CPU_MATMUL = {"packed": 0, "onnxruntime": 1}
STRATEGIES = {"greedy": 0, "beam": 1, "diverse_beam": 2, "sample": 3}
EARLY_STOPPING = {"heuristic": 0, False: 0, "true": 1, True: 1, "never": 2}


class EngineOptions(Structure):
    _fields_ = [
        ("struct_size", c_size_t),
        ("ort_library_path", c_char_p),
        ("provider", c_int32),
        ("device_id", c_int32),
        ("intra_op_threads", c_uint32),
        ("skip_checksums", c_int32),
        ("cpu_matmul", c_int32),
    ]


# bool (*)(int32_t stage, size_t step, size_t total, void *user_data)
PROGRESS_FN = ctypes.CFUNCTYPE(c_bool, c_int32, c_size_t, c_size_t, c_void_p)


class OptimizeOptions(Structure):
    _fields_ = [
        ("struct_size", c_size_t),
        ("strategy", c_int32),
        ("num_beams", c_uint32),
        ("num_beam_groups", c_uint32),
        ("diversity_penalty", c_float),
        ("length_penalty", c_float),
        ("early_stopping", c_int32),
        ("temperature", c_float),
        ("top_k", c_uint32),
        ("top_p", c_float),
        ("has_seed", c_int32),
        ("seed", c_uint64),
        ("max_new_tokens", c_uint32),
        ("num_return_sequences", c_uint32),
        ("progress", PROGRESS_FN),
        ("user_data", c_void_p),
        ("cancel_flag", POINTER(c_int32)),
        ("keep_syntax", c_int32),
        ("max_clip_tokens", c_uint32),
    ]


class PromptistError(Exception):
    """A failed call: `code` (int), `name` (e.g. "BUNDLE_NOT_FOUND") and the library's message."""

    def __init__(self, code: int, message: str):
        self.code = code
        # The library's own name table (promptist_status_name): one list of statuses, in the header.
        self.name = _status_name(code).decode()
        self.message = message
        super().__init__(f"[{self.name}] {message}")


def _candidates() -> List[Path]:
    names = ["libpromptist.so", "libpromptist.dylib", "promptist.dll"]
    here = Path(__file__).resolve().parent
    repo = here.parent.parent
    out = []
    if os.environ.get("PROMPTIST_LIBRARY"):
        out.append(Path(os.environ["PROMPTIST_LIBRARY"]))
    for d in [here, repo / "target" / "release", repo / "target" / "debug"]:
        out.extend(d / n for n in names)
    return out


def _load() -> ctypes.CDLL:
    tried = []
    for p in _candidates():
        if p.is_file():
            return ctypes.CDLL(str(p))
        tried.append(str(p))
    try:
        return ctypes.CDLL("libpromptist.so")
    except OSError:
        tried.append("libpromptist.so (system loader)")
    raise OSError("promptist library not found; tried: " + ", ".join(tried))


_lib = _load()


def _fn(name, restype, *argtypes):
    f = getattr(_lib, name)
    f.restype = restype
    f.argtypes = list(argtypes)
    return f


_E = c_void_p  # opaque handles
_version = _fn("promptist_version", c_char_p)
_abi_version = _fn("promptist_abi_version", c_uint32)
_error_code = _fn("promptist_error_code", c_int32, _E)
_status_name = _fn("promptist_status_name", c_char_p, c_int32)
_error_message = _fn("promptist_error_message", c_char_p, _E)
_error_free = _fn("promptist_error_free", None, _E)
_engine_options_init = _fn("promptist_engine_options_init", c_int32, POINTER(EngineOptions), c_size_t)
_optimize_options_init = _fn("promptist_optimize_options_init", c_int32, POINTER(OptimizeOptions), c_size_t)
_engine_open = _fn("promptist_engine_open", c_int32, c_char_p, POINTER(EngineOptions), POINTER(_E), POINTER(_E))
_engine_free = _fn("promptist_engine_free", None, _E)
_engine_provider = _fn("promptist_engine_provider", c_int32, _E)
_engine_random = _fn("promptist_engine_policy_is_random", c_bool, _E)
_optimize = _fn("promptist_optimize", c_int32, _E, c_char_p, POINTER(OptimizeOptions), POINTER(_E), POINTER(_E))
_result_count = _fn("promptist_optimize_result_count", c_size_t, _E)
_result_text = _fn("promptist_optimize_result_text", c_char_p, _E, c_size_t)
_result_score = _fn("promptist_optimize_result_score", c_float, _E, c_size_t)
_result_seed = _fn("promptist_optimize_result_seed", c_bool, _E, POINTER(c_uint64))
_result_provider = _fn("promptist_optimize_result_provider", c_int32, _E)
_result_random = _fn("promptist_optimize_result_random_weights", c_bool, _E)
_result_clip_tokens = _fn("promptist_optimize_result_clip_tokens", c_size_t, _E, c_size_t)
_result_over_budget = _fn("promptist_optimize_result_over_budget", c_bool, _E, c_size_t)
_result_free = _fn("promptist_optimize_result_free", None, _E)

if _abi_version() != ABI_VERSION:
    raise OSError(f"promptist library ABI {_abi_version()} does not match this binding's ABI {ABI_VERSION}")


def version() -> str:
    """The loaded library's version."""
    return _version().decode()


def _raise(status: int, err: c_void_p) -> None:
    """Turn a failed status and its error object into PromptistError, freeing the object."""
    if status == 0:
        return
    try:
        msg = _error_message(err)
        message = msg.decode("utf-8", "replace") if msg else "(no message)"
    finally:
        _error_free(err)
    raise PromptistError(status, message)


@dataclass
class Candidate:
    text: str
    score: float
    clip_tokens: int = 0
    over_budget: bool = False


@dataclass
class OptimizeResult:
    candidates: List[Candidate] = field(default_factory=list)
    seed: Optional[int] = None
    provider: str = "cpu"
    random_weights: bool = False

    @property
    def best(self) -> str:
        return self.candidates[0].text


_PROVIDER_NAMES = {v: k for k, v in PROVIDERS.items()}


class Engine:
    """An opened bundle. Thread-safe: one Engine may be shared by several threads."""

    def __init__(self, bundle: os.PathLike | str, provider: str = "cpu", ort_library_path: Optional[str] = None,
                 device_id: int = 0, intra_op_threads: int = 0, skip_checksums: bool = False,
                 cpu_matmul: str = "packed"):
        opts = EngineOptions()
        _raise(_engine_options_init(byref(opts), ctypes.sizeof(opts)), None)
        if provider not in PROVIDERS:
            raise ValueError(f"provider must be one of {sorted(PROVIDERS)}")
        opts.provider = PROVIDERS[provider]
        opts.device_id = device_id
        opts.intra_op_threads = intra_op_threads
        opts.skip_checksums = int(bool(skip_checksums))
        if cpu_matmul not in CPU_MATMUL:
            raise ValueError(f"cpu_matmul must be one of {sorted(CPU_MATMUL)}")
        opts.cpu_matmul = CPU_MATMUL[cpu_matmul]
        self._ort = os.fsencode(ort_library_path) if ort_library_path else None
        opts.ort_library_path = self._ort
        handle, err = _E(), _E()
        _raise(_engine_open(os.fsencode(os.fspath(bundle)), byref(opts), byref(handle), byref(err)), err)
        self._handle = handle

    @property
    def provider(self) -> str:
        return _PROVIDER_NAMES.get(_engine_provider(self._handle), "unknown")

    @property
    def policy_is_random(self) -> bool:
        return bool(_engine_random(self._handle))

    def optimize(self, prompt: str, strategy: str = "beam", num_beams: int = 8, num_beam_groups: int = 8,
                 diversity_penalty: float = 1.0, length_penalty: float = -1.0, early_stopping="heuristic",
                 temperature: float = 1.0, top_k: int = 50, top_p: float = 1.0, seed: Optional[int] = None,
                 max_new_tokens: int = 75, num_return_sequences: int = 1, progress=None,
                 cancel: Optional[ctypes.c_int32] = None, keep_syntax: bool = True,
                 max_clip_tokens: int = 75) -> OptimizeResult:
        """Rewrite `prompt`; defaults are the reference demo (beam 8, length_penalty -1.0, 75 tokens).

        `progress(step, total) -> bool` is called after every decoding step (False cancels);
        `cancel` is a ctypes.c_int32 another thread may set to 1 to cancel. A cancelled call raises
        PromptistError with name "CANCELLED". `keep_syntax` keeps front-end syntax such as
        `(word:1.2)`, `<lora:name:0.8>` or `{a|b}` intact: the policy sees the plain text and each
        candidate is the prompt, byte for byte, plus the rewrite's new phrases. `max_clip_tokens`
        (0 = off) fits each candidate into that many CLIP tokens, cutting after its last whole
        phrase that fits and never inside the user's text; each candidate reports `clip_tokens` and
        `over_budget` (the user's text alone is over)."""
        if self._handle is None:
            raise ValueError("engine is closed")
        if strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {sorted(STRATEGIES)}")
        o = OptimizeOptions()
        _raise(_optimize_options_init(byref(o), ctypes.sizeof(o)), None)
        o.strategy = STRATEGIES[strategy]
        o.num_beams, o.num_beam_groups = num_beams, num_beam_groups
        o.diversity_penalty, o.length_penalty = diversity_penalty, length_penalty
        o.early_stopping = EARLY_STOPPING[early_stopping]
        o.temperature, o.top_k, o.top_p = temperature, top_k, top_p
        o.has_seed, o.seed = (0, 0) if seed is None else (1, seed)
        o.max_new_tokens, o.num_return_sequences = max_new_tokens, num_return_sequences
        o.keep_syntax = int(bool(keep_syntax))
        o.max_clip_tokens = max_clip_tokens
        if progress is not None:
            cb = PROGRESS_FN(lambda stage, step, total, _user: bool(progress(step, total)))
            o.progress = cb  # kept alive by `cb` until the call returns
        if cancel is not None:
            o.cancel_flag = ctypes.pointer(cancel)
        res, err = _E(), _E()
        _raise(_optimize(self._handle, prompt.encode("utf-8"), byref(o), byref(res), byref(err)), err)
        try:
            n = _result_count(res)
            cands = [Candidate(_result_text(res, i).decode("utf-8"), float(_result_score(res, i)),
                               int(_result_clip_tokens(res, i)), bool(_result_over_budget(res, i))) for i in range(n)]
            s = c_uint64()
            used = _result_seed(res, byref(s))
            return OptimizeResult(cands, s.value if used else None,
                                  _PROVIDER_NAMES.get(_result_provider(res), "unknown"), bool(_result_random(res)))
        finally:
            _result_free(res)

    def close(self) -> None:
        if getattr(self, "_handle", None) is not None:
            _engine_free(self._handle)
            self._handle = None

    def __enter__(self) -> "Engine":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        self.close()
