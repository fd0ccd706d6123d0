"""The committed GPT-2 tokenizer.json (src/text/data/gpt2-tokenizer.json) against transformers'
GPT2TokenizerFast on the same 240 strings; the Rust side of the same comparison is
tests/bundle_gpt2_parity.rs (cargo test --test bundle_gpt2_parity)."""
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import tok_reference  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "src" / "text" / "data" / "gpt2-tokenizer.json"


def test_reference_is_not_empty():
    tok = tok_reference.reference_tokenizer()
    assert len(tok) == 50257
    assert len(tok("a photo of a cat Rephrase:")["input_ids"]) > 3


def test_committed_tokenizer_json_matches_transformers():
    from tokenizers import Tokenizer

    ref = tok_reference.reference_tokenizer()
    ours = Tokenizer.from_file(str(COMMITTED))
    assert ours.get_vocab_size(with_added_tokens=True) == 50257
    strings = tok_reference.test_strings()
    assert len(strings) >= 200
    bad = []
    for t in strings:
        want = ref(t, add_special_tokens=False)["input_ids"]
        got = ours.encode(t, add_special_tokens=False).ids
        if got != want:
            bad.append((t, got, want))
        elif ours.decode(got, skip_special_tokens=False) != t:
            bad.append((t, "round trip", ours.decode(got, skip_special_tokens=False)))
    assert not bad, f"{len(bad)} of {len(strings)} differ: {bad[:5]}"


def test_committed_json_config():
    cfg = json.loads(COMMITTED.read_text(encoding="utf-8"))
    assert cfg["pre_tokenizer"] == {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}
    assert cfg["added_tokens"][0]["content"] == "<|endoftext|>" and cfg["added_tokens"][0]["id"] == 50256
    assert cfg["model"]["type"] == "BPE" and len(cfg["model"]["merges"]) == 50000
