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


def repo_data(rel):
    """`src/data/<rel>`: the data files shipped in the repository (provenance in src/data/README.md)."""
    p = REPO / "src" / "data" / rel
    if not p.exists():
        raise AssertionError(f"{p} does not exist (the repository's src/data/ is incomplete)")
    return p
