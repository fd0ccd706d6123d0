"""Reference for the CLIP tokenizer parity test. Generates a fixed set of test strings (seeded;
unicode, emoji, repeated spaces, newlines, casing, contractions, HTML entities, numbers, very long
strings) and prints JSON with, per string, open_clip's ids (SimpleTokenizer built from BPE_GZ,
`tokenize`: 77 tokens, zero padding) and transformers' CLIPTokenizer ids (built from the same
file's vocab and merges; padding="max_length", max_length=77, truncation=True).

usage: score_clip_tokenizer_ref.py BPE_GZ [SAVE_DIR]
  SAVE_DIR: also write the vocabulary in the layout of SD's `tokenizer/` folder there
            (vocab.json, merges.txt with its `#version: 0.2` header).
"""
import gzip
import json
import random
import sys

import torch

torch.set_num_threads(1)
from open_clip.tokenizer import SimpleTokenizer, bytes_to_unicode  # noqa: E402
from transformers import CLIPTokenizer  # noqa: E402

WORDS = """a photo of cat dog astronaut riding horse on the moon highly detailed digital painting
artstation concept art smooth sharp focus illustration by greg rutkowski and alphonse mucha 8k
octane render trending unreal engine cinematic lighting portrait beautiful woman landscape
mountains sunset cyberpunk city street night rain neon reflections fantasy castle dragon""".split()
UNICODE = ["café", "naïve", "Übermensch", "straße", "東京の夜", "北京", "서울", "Москва", "Ελλάδα",
           "ΣΟΦΟΣ", "mañana", "İstanbul", "ﬁne", "Ｆｕｌｌ", "“quoted”", "it’s", "…", "—", "½", "x²",
           "٣", "e\u0301", "\u00a0nbsp", "🙂", "🐱‍👤", "👍🏽", "🇫🇷", "🚀🚀🚀", "❤️", "™"]
EXTRA = ["don't", "I'M", "we'll", "they've", "She'd", "it's", "&amp;", "&lt;tag&gt;", "&#39;",
         "&quot;hi&quot;", "&amp;amp;", "3.14159", "1234567890", "v1.5", "$100", "#hashtag",
         "@user", "e-mail", "C++", "(parens)", "[brackets]", "{braces}", "a/b\\c", "___", "!!!", "?!"]


def make_strings():
    rng = random.Random(1234)
    out = ["", " ", "a", "A", "hello world", "Hello World", "HELLO WORLD", "  leading and trailing  ",
           "many     spaces    here", "tabs\tand\nnewlines\n\nhere", "line1\r\nline2", "\n\n\n",
           "a photo of an astronaut riding a horse on mars",
           "A beautiful painting of a singular lighthouse, shining its light across a tumultuous sea of blood by greg rutkowski and thomas kinkade, Trending on artstation."]
    pools = [WORDS, UNICODE, EXTRA]
    while len(out) < 240:
        n = rng.randint(1, 25)
        parts = []
        for _ in range(n):
            pool = pools[rng.choices([0, 1, 2], weights=[6, 2, 2])[0]]
            w = rng.choice(pool)
            r = rng.random()
            if r < 0.15:
                w = w.upper()
            elif r < 0.3:
                w = w.capitalize()
            parts.append(w)
        seps = [" ", " ", " ", ", ", "  ", "\n", "\t", " , ", "   "]
        s = ""
        for p in parts:
            s += p + rng.choice(seps)
        out.append(s)
    # very long strings (truncation at 77 keeping the end token)
    for k in range(12):
        n = 60 + 15 * k
        out.append(" ".join(rng.choice(WORDS) for _ in range(n)))
    out.append("🙂" * 100)
    out.append("supercalifragilisticexpialidocious" * 20)
    return out


def main():
    bpe = sys.argv[1]
    strings = make_strings()
    oc = SimpleTokenizer(bpe_path=bpe)
    oc_ids = [oc([s])[0].tolist() for s in strings]
    merges = gzip.open(bpe).read().decode("utf-8").split("\n")[1:49152 - 256 - 2 + 1]
    vocab = list(bytes_to_unicode().values())
    vocab = vocab + [v + "</w>" for v in vocab]
    vocab += ["".join(m.split()) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    tf = CLIPTokenizer(
        vocab={t: i for i, t in enumerate(vocab)},
        merges=[tuple(m.split()) for m in merges],
        unk_token="<|endoftext|>", bos_token="<|startoftext|>", eos_token="<|endoftext|>",
        pad_token="<|endoftext|>",
    )
    if len(sys.argv) > 2:
        import os
        with open(os.path.join(sys.argv[2], "vocab.json"), "w", encoding="utf-8") as f:
            json.dump({t: i for i, t in enumerate(vocab)}, f, ensure_ascii=False)
        with open(os.path.join(sys.argv[2], "merges.txt"), "w", encoding="utf-8") as f:
            f.write("#version: 0.2\n" + "\n".join(merges) + "\n")
    tf_ids = tf(strings, padding="max_length", max_length=77, truncation=True).input_ids
    json.dump({"strings": strings, "open_clip": oc_ids, "transformers": tf_ids,
               "transformers_class": type(tf).__name__}, sys.stdout)


if __name__ == "__main__":
    main()
