"""Reference GPT-2 token ids from transformers' GPT2TokenizerFast, for the tokenizer parity tests.

Run as a script: `python tok_reference.py OUT.json [GPT2_DIR]` writes a JSON list of
{"text", "ids", "decoded"} for every test string (tests/bundle_gpt2_parity.rs reads it), and
OUT.json.tokenizer.json, the reference's own tokenizer.json as transformers serialises it.
The vocabulary is the real GPT-2 one (encoder.json = vocab.json, vocab.bpe = merges.txt).
"""
import json
import os
import random
import sys
from pathlib import Path

EOS = "<|endoftext|>"


def gpt2_dir():
    """The GPT-2 vocabulary shipped in the repository (src/data/gpt2)."""
    return Path(__file__).resolve().parents[2] / "src" / "data" / "gpt2"


def reference_tokenizer(d=None):
    """transformers 5 GPT2TokenizerFast built from the vocabulary, guarded against the empty-tokenizer trap."""
    from transformers import GPT2TokenizerFast

    d = Path(d) if d else gpt2_dir()
    vocab = json.loads((d / "encoder.json").read_text(encoding="utf-8"))
    lines = (d / "vocab.bpe").read_text(encoding="utf-8").split("\n")
    merges = [tuple(l.split(" ")) for l in lines if l and not l.startswith("#version")]
    # transformers 5 takes vocab= (dict) and merges= (pairs); vocab_file= would silently give an EMPTY tokenizer.
    tok = GPT2TokenizerFast(vocab=vocab, merges=merges)
    assert len(tok) == 50257, f"reference tokenizer has {len(tok)} tokens, expected 50257"
    assert len(merges) == 50000, f"{len(merges)} merges, expected 50000"
    assert tok.convert_tokens_to_ids(EOS) == 50256
    assert tok("hello world")["input_ids"] == [31373, 995], "reference tokenizer is not GPT-2"
    return tok


def test_strings():
    """At least 200 strings: prompts, unicode, emoji, CJK, whitespace runs, tabs, newlines, EOS inside text."""
    s = [
        "",
        " ",
        "  ",
        "\t",
        "\n",
        "\n\n\n",
        " \n \t ",
        "hello world",
        "Hello World!",
        "a cat sitting on a mat Rephrase:",
        "A beautiful sunset over the ocean Rephrase:",
        "A beautiful sunset over the ocean Rephrase: a beautiful sunset over the ocean, highly detailed, digital painting, artstation, concept art, smooth, sharp focus, illustration, art by greg rutkowski",
        "A rabbit is wearing a space suit Rephrase:",
        "Astronaut rides horse Rephrase:",
        "a portrait of a cyberpunk girl, 8 k, trending on artstation, concept art",
        "digital art, 8k, intricate",
        "highly detailed, elegant, smooth",
        "illustration, smooth, octane render",
        "artstation, highly detailed, elegant",
        "digital painting, intricate, fantasy",
        "photo of a dog<|endoftext|>",
        "<|endoftext|>",
        "<|endoftext|><|endoftext|>",
        "a <|endoftext|> b",
        "a<|endoftext|>b",
        " <|endoftext|> ",
        "<|endoftext|>Rephrase:",
        "<|endoftext",
        "|endoftext|>",
        "<| endoftext |>",
        "<|ENDOFTEXT|>",
        "日本語のテキスト",
        "中文提示词：一只猫在月光下",
        "한국어 프롬프트",
        "Привет, мир! Картина маслом",
        "Ελληνικά γράμματα αβγ",
        "עברית מימין לשמאל",
        "العربية نص تجريبي",
        "हिन्दी पाठ",
        "ไทย ภาษา",
        "🤖🎨✨",
        "a 🐱 on the 🌙",
        "👨‍👩‍👧‍👦 family emoji ZWJ",
        "🏳️‍🌈 flag",
        "café naïve résumé façade",
        "Ωmega ∑ ∫ √ ∞ ≠ ≈",
        "zero\u200bwidth space",
        "non\u00a0breaking space",
        "combining e\u0301 accent",
        "\u3000ideographic space\u3000",
        "tabs\tin\tthe\tmiddle",
        "trailing spaces   ",
        "   leading spaces",
        "many          spaces",
        "mixed \t \n \r\n whitespace",
        "windows\r\nline\r\nendings",
        "line1\nline2\n\nline4",
        "numbers 1234567890 3.14159 -42 1e-5",
        "year 2024, 1080p, 4k, 8k uhd",
        "punctuation!!! ??? ... ,,, ;;; :::",
        "quotes \"double\" 'single' `back`",
        "contractions: don't can't won't I'm you're it's we've they'll he'd",
        "'s 't 're 've 'm 'll 'd",
        "URL https://example.com/path?q=1&x=2#frag",
        "email someone@example.org",
        "code: fn main() { println!(\"hi\"); }",
        "json {\"a\": [1, 2, 3]}",
        "brackets (((masterpiece))) [[best quality]] {{detailed}}",
        "weights (red hair:1.3), (blue eyes:0.8)",
        "under_score and hyphen-ated and slash/separated",
        "ALL CAPS PROMPT",
        "camelCaseWords and PascalCase",
        "a" * 100,
        "ab " * 50,
        "supercalifragilisticexpialidocious",
        "antidisestablishmentarianism",
        "\\backslash\\ and /slash/",
        "~!@#$%^&*()_+`-=",
        "<html><body>tag</body></html>",
        "\x00\x01\x02 control chars",
        "\x7f delete char",
        "\ufeff BOM at start",
        "\U0001F600\U0001F601\U0001F602",
        "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 math letters",
        "½ ¼ ¾ ² ³ µ",
        "€ £ ¥ ₹ ₿",
        "♠ ♣ ♥ ♦ ★ ☆",
        "→ ← ↑ ↓ ⇒",
        "by greg rutkowski and alphonse mucha",
        "unreal engine 5, octane render, ray tracing, volumetric lighting",
        "a photo of an astronaut riding a horse on mars",
        "Rephrase: Rephrase: Rephrase:",
        " Rephrase:",
        "x Rephrase: y",
    ]
    rng = random.Random(20261127)
    words = ["a", "the", "cat", "dog", "castle", "forest", "neon", "city", "portrait", "of", "in", "on",
             "detailed", "cinematic", "lighting", "8k", "hdr", "by", "artist", "Rephrase:", "🌸", "東京",
             "naïve", "<|endoftext|>", "  ", "\t", "\n", "'s", "don't", "1024", ",", ".", "!", "?"]
    pieces = ["é", "ß", "ø", "ł", "中", "語", "ア", "한", "ж", "λ", "🙂", "🔥", " ", "  ", "\n", "\t", "x", "Z", "9"]
    while len(s) < 170:
        n = rng.randint(1, 14)
        out = ""
        for _ in range(n):
            out += rng.choice(words) + rng.choice([" ", " ", " ", "", "  ", ", ", "\n"])
        s.append(out)
    while len(s) < 240:
        n = rng.randint(1, 20)
        s.append("".join(rng.choice(pieces) for _ in range(n)))
    assert len(set(s)) >= 200
    return s


def reference_records(tok, strings):
    recs = []
    for t in strings:
        ids = tok(t, add_special_tokens=False)["input_ids"]
        dec = tok.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)
        recs.append({"text": t, "ids": ids, "decoded": dec})
    return recs


def main():
    if len(sys.argv) < 2:
        raise SystemExit("usage: tok_reference.py OUT.json [GPT2_DIR]")
    tok = reference_tokenizer(sys.argv[2] if len(sys.argv) > 2 else None)
    recs = reference_records(tok, test_strings())
    Path(sys.argv[1]).write_text(json.dumps(recs, ensure_ascii=True), encoding="utf-8")
    tok.backend_tokenizer.save(sys.argv[1] + ".tokenizer.json")
    print(f"wrote {len(recs)} reference encodings to {sys.argv[1]}")


if __name__ == "__main__":
    main()
