"""Shared fixtures of the binding tests: a tiny random GPT-2 checkpoint and its bundle made by the
promptist CLI (PROMPTIST_BIN, default target/debug/promptist), with ORT_DYLIB_PATH required (the
binding loads ONNX Runtime from it); anything missing fails with a message, never skips."""

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent


@pytest.fixture(scope="session")
def make_tiny_bundle(tmp_path_factory):
    """`make(seed)` -> (checkpoint folder, bundle folder): `promptist make-tiny --seed SEED`, then
    `promptist convert`."""
    ort = os.environ.get("ORT_DYLIB_PATH")
    assert ort and Path(ort).is_file(), "ORT_DYLIB_PATH must name the ONNX Runtime library"
    cli = Path(os.environ.get("PROMPTIST_BIN", ROOT / "target" / "debug" / "promptist"))
    assert cli.is_file(), f"promptist CLI not found at {cli}: run `cargo build` or set PROMPTIST_BIN"

    def make(seed):
        d = tmp_path_factory.mktemp(f"tiny{seed}")
        ck, bundle = d / "ck", d / "bundle"
        subprocess.run([str(cli), "make-tiny", "--out", str(ck), "--seed", str(seed)], check=True, capture_output=True)
        subprocess.run([str(cli), "convert", "--checkpoint", str(ck), "--out", str(bundle)], check=True, capture_output=True)
        return ck, bundle

    return make
