"""pytest of the ctypes binding: error codes without a model, then a tiny random bundle opened and
optimized through the C API. Needs the built library (cargo build), the CLI (PROMPTIST_BIN,
default target/debug/promptist) to make the bundle, and ORT_DYLIB_PATH; fails clearly without them.

    ORT_DYLIB_PATH=... ~/.cache/promptist/venv/bin/python -m pytest bindings/python -q
"""

import ctypes
import sys
import threading
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import promptist  # noqa: E402


@pytest.fixture(scope="module")
def bundle(make_tiny_bundle):
    return make_tiny_bundle(5)[1]


def test_version_and_abi():
    assert promptist.version().count(".") == 2
    assert promptist._abi_version() == promptist.ABI_VERSION


def test_missing_bundle_is_bundle_not_found(tmp_path):
    with pytest.raises(promptist.PromptistError) as e:
        promptist.Engine(tmp_path / "nope")
    assert e.value.name == "BUNDLE_NOT_FOUND" and e.value.code == 6 and e.value.message


def test_optimize_tiny_bundle(bundle):
    with promptist.Engine(bundle) as engine:
        assert engine.provider == "cpu"
        assert engine.policy_is_random
        r = engine.optimize("a cat sitting on a mat", num_beams=4, num_return_sequences=3, max_new_tokens=10)
        assert len(r.candidates) == 3
        assert r.random_weights and r.provider == "cpu" and r.seed is None
        scores = [c.score for c in r.candidates]
        assert scores == sorted(scores, reverse=True)
        assert all(isinstance(c.text, str) for c in r.candidates)
        # Deterministic strategy: same call, same output.
        again = engine.optimize("a cat sitting on a mat", num_beams=4, num_return_sequences=3, max_new_tokens=10)
        assert [c.text for c in again.candidates] == [c.text for c in r.candidates]
        # Sampling reports its seed and reproduces with it.
        s1 = engine.optimize("a dog", strategy="sample", seed=1234, max_new_tokens=8)
        s2 = engine.optimize("a dog", strategy="sample", seed=1234, max_new_tokens=8)
        assert s1.seed == 1234 and s1.best == s2.best
        drawn = engine.optimize("a dog", strategy="sample", max_new_tokens=8)
        assert drawn.seed is not None


def test_cpu_matmul_option(bundle):
    """ONNX Runtime's Gemm and the packed kernel give the same candidates (scores to 1e-5 relative)."""
    kw = dict(num_beams=4, num_return_sequences=3, max_new_tokens=10)
    with promptist.Engine(bundle, cpu_matmul="onnxruntime") as ort, promptist.Engine(bundle) as packed:
        for p in ["a cat sitting on a mat", "a castle on a hill at sunset"]:
            a, b = ort.optimize(p, **kw), packed.optimize(p, **kw)
            assert [c.text for c in a.candidates] == [c.text for c in b.candidates]
            for x, y in zip(a.candidates, b.candidates):
                assert abs(x.score - y.score) <= 1e-5 * max(1.0, abs(x.score))
    with pytest.raises(ValueError):
        promptist.Engine(bundle, cpu_matmul="fast")


def test_progress_and_cancel(bundle):
    with promptist.Engine(bundle) as engine:
        steps = []
        engine.optimize("a bird", num_beams=2, max_new_tokens=5, progress=lambda s, t: steps.append((s, t)) or True)
        assert steps and all(t == 5 for _, t in steps)
        with pytest.raises(promptist.PromptistError) as e:
            engine.optimize("a bird", num_beams=2, max_new_tokens=5, progress=lambda s, t: False)
        assert e.value.name == "CANCELLED"
        flag = ctypes.c_int32(1)
        with pytest.raises(promptist.PromptistError) as e:
            engine.optimize("a bird", num_beams=2, max_new_tokens=5, cancel=flag)
        assert e.value.name == "CANCELLED"


def test_error_codes_through_binding(bundle):
    engine = promptist.Engine(bundle)
    cases = [
        (dict(prompt="   "), "EMPTY_PROMPT"),
        (dict(prompt="cat " * 2000), "PROMPT_TOO_LONG"),
        (dict(prompt="a cat", num_beams=0), "INVALID_OPTIONS"),
        (dict(prompt="a cat", strategy="sample", top_p=0.0), "INVALID_OPTIONS"),
    ]
    for kwargs, name in cases:
        with pytest.raises(promptist.PromptistError) as e:
            engine.optimize(**kwargs)
        assert e.value.name == name, (kwargs, e.value)
        assert e.value.message
    engine.close()
    engine.close()  # idempotent


def test_threads_share_one_engine(bundle):
    engine = promptist.Engine(bundle)
    expected = engine.optimize("a castle on a hill", num_beams=2, max_new_tokens=6).best
    out, errors = [], []

    def work():
        try:
            out.append(engine.optimize("a castle on a hill", num_beams=2, max_new_tokens=6).best)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    engine.close()
    assert not errors, errors
    assert out == [expected] * 4


def test_keep_syntax_on_the_demo_bundle():
    """Front-end syntax survives byte for byte (default on); off hands the raw prompt to the policy."""
    demo = HERE.parent.parent / "training" / "demo" / "bundle"
    prompt = "(red fox:1.2) in the snow <lora:foxStyle:0.8>, {day|night}"
    with promptist.Engine(demo) as engine:
        kept = engine.optimize(prompt, num_beams=4, num_return_sequences=2, max_new_tokens=30)
        assert all(c.text.startswith(prompt) and len(c.text) > len(prompt) for c in kept.candidates)
        explicit = engine.optimize(prompt, num_beams=4, num_return_sequences=2, max_new_tokens=30, keep_syntax=True)
        assert [c.text for c in explicit.candidates] == [c.text for c in kept.candidates]
        raw = engine.optimize(prompt, num_beams=4, num_return_sequences=2, max_new_tokens=30, keep_syntax=False)
        assert [c.text for c in raw.candidates] != [c.text for c in kept.candidates]
        plain = "a red fox in the snow"
        assert ([c.text for c in engine.optimize(plain, keep_syntax=True).candidates]
                == [c.text for c in engine.optimize(plain, keep_syntax=False).candidates])


def test_clip_token_budget_on_the_demo_bundle():
    """Candidates fit max_clip_tokens (default 75) by whole phrases; the user's text is never cut."""
    demo = HERE.parent.parent / "training" / "demo" / "bundle"
    prompt = "a red fox in the snow"
    with promptist.Engine(demo) as engine:
        full = engine.optimize(prompt, num_beams=4, num_return_sequences=2, max_clip_tokens=0)
        cut = engine.optimize(prompt, num_beams=4, num_return_sequences=2, max_clip_tokens=12)
        for f, c in zip(full.candidates, cut.candidates):
            assert c.clip_tokens <= 12 and not c.over_budget
            assert c.text.startswith(prompt) and f.text.startswith(c.text) and f.clip_tokens > c.clip_tokens
        default = engine.optimize(prompt)
        assert all(c.clip_tokens <= 75 for c in default.candidates)
        long = "a very old stone castle on a steep green hill above a quiet river at dawn with mist"
        over = engine.optimize(long, max_clip_tokens=8)
        assert all(c.text == long and c.over_budget for c in over.candidates)
        with pytest.raises(promptist.PromptistError) as e:
            engine.optimize(prompt, max_clip_tokens=5000)
        assert e.value.name == "INVALID_OPTIONS"
