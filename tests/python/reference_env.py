"""What the parity tests need from the machine, failing (never skipping) with a message when it is
missing: the built promptist CLI (PROMPTIST_BIN, default target/debug/promptist) and the reference
venv's Python packages."""
import importlib
import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def promptist_bin():
    p = Path(os.environ.get("PROMPTIST_BIN", REPO / "target" / "debug" / "promptist"))
    if not p.is_file():
        raise AssertionError(f"promptist CLI not found at {p}: run `cargo build` or set PROMPTIST_BIN")
    return p


def require(*packages):
    """Import each package; a missing one is an AssertionError pointing at the reference venv."""
    try:
        for name in packages:
            importlib.import_module(name)
    except ImportError as e:
        raise AssertionError(f"reference Python packages missing ({e}); use ~/.cache/promptist/venv/bin/python") from e


def shared_data(rel):
    """`data/<rel>` in the project's shared folder: PROMPTIST_SHARED_DIR, else the first `shared/`
    above the repository that holds it (CI lays shared/ beside the clone)."""
    tried = []
    if os.environ.get("PROMPTIST_SHARED_DIR"):
        p = Path(os.environ["PROMPTIST_SHARED_DIR"]) / "data" / rel
        if p.exists():
            return p
        tried.append(p)
    for a in REPO.parents:
        p = a / "shared" / "data" / rel
        if p.exists():
            return p
        tried.append(p)
    raise AssertionError(f"shared data {rel} not found (set PROMPTIST_SHARED_DIR); tried: {', '.join(map(str, tried))}")
