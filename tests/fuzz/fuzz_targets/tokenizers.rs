//! Both tokenizers on arbitrary text, ids and tokenizer files. Properties checked beyond "no
//! panic": GPT-2's byte-level BPE gives back exactly the text it encoded; CLIP's token rows are
//! always 77 long, start with start-of-text and hold end-of-text; decoding any id list is Ok or a
//! clean error. Tokenizer files: a mutated `tokenizer.json` (GPT-2) or merges text (CLIP) loads or
//! is refused, and what loads can encode and decode. Prompt syntax: any text split into a prompt
//! and a "rewrite" merges into a prompt that starts with the user's and has exactly its syntax
//! spans, and fitting it into a CLIP token budget never panics and never cuts the user's text.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use promptist::text::clip::ClipTokenizer;
use promptist::text::gpt2::Gpt2Tokenizer;

fn gpt2() -> &'static Gpt2Tokenizer {
    static T: OnceLock<Gpt2Tokenizer> = OnceLock::new();
    T.get_or_init(|| Gpt2Tokenizer::embedded().expect("the embedded GPT-2 tokenizer loads"))
}

fn clip() -> &'static ClipTokenizer {
    static T: OnceLock<ClipTokenizer> = OnceLock::new();
    T.get_or_init(|| ClipTokenizer::embedded().expect("the embedded CLIP merges load"))
}

fn check_clip_row(row: &[u32], tok: &ClipTokenizer) {
    assert_eq!(row.len(), 77, "a CLIP row is 77 tokens");
    assert_eq!(row[0], tok.start_of_text());
    assert!(row.contains(&tok.end_of_text()), "no end-of-text in {row:?}");
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    match mode % 5 {
        0 => {
            let text = String::from_utf8_lossy(rest);
            let ids = gpt2().encode(&text).expect("GPT-2 encodes any UTF-8");
            let back = gpt2().decode(&ids).expect("GPT-2 decodes its own ids");
            assert_eq!(back, text, "GPT-2 byte-level BPE must round-trip");
            let _ = gpt2().decode_skip_special(&ids).expect("decode without specials");
        }
        1 => {
            let text = String::from_utf8_lossy(rest);
            check_clip_row(&clip().tokenize_sd(&text).expect("CLIP (transformers cleaning) tokenizes any UTF-8"), clip());
            check_clip_row(&clip().tokenize_open_clip(&text).expect("CLIP (open_clip cleaning) tokenizes any UTF-8"), clip());
        }
        2 => {
            // Arbitrary ids, in and out of the vocabulary.
            let ids: Vec<u32> = rest.chunks(4).map(|c| c.iter().fold(0u32, |a, &b| (a << 8) | u32::from(b)) % 60000).collect();
            let n = gpt2().vocab_size() as u32;
            match gpt2().decode(&ids) {
                Ok(_) => assert!(ids.iter().all(|&i| i < n)),
                Err(e) => assert!(ids.iter().any(|&i| i >= n), "decode refused in-vocabulary ids: {e}"),
            }
        }
        4 => {
            let text = String::from_utf8_lossy(rest);
            let cut = text.char_indices().nth(text.chars().count() / 2).map_or(text.len(), |(i, _)| i);
            let (prompt, rewrite) = text.split_at(cut);
            let merged = promptist::text::syntax::keep_syntax(prompt, &promptist::text::syntax::parse(prompt).plain, rewrite);
            assert!(merged.starts_with(prompt.trim_end()), "{merged:?} lost the prompt {prompt:?}");
            let spans = |s: &str| promptist::text::syntax::parse(s).spans.into_iter().map(|x| (x.start, x.end, x.kind)).collect::<Vec<_>>();
            assert_eq!(spans(&merged), spans(prompt), "prompt {prompt:?}, rewrite {rewrite:?}");
            let budget = usize::from(rest.first().copied().unwrap_or(0) % 40);
            let f = promptist::text::budget::fit(clip(), prompt, &merged, budget).expect("fitting never fails on text");
            if f.over_budget {
                assert_eq!(f.text, prompt.trim());
            } else if budget > 0 {
                assert!(f.clip_tokens <= budget, "{f:?}");
            }
        }
        _ => {
            // A tokenizer file: the first byte picks GPT-2 tokenizer.json or CLIP merges text.
            let Some((&which, body)) = rest.split_first() else { return };
            if which % 2 == 0 {
                if let Ok(t) = Gpt2Tokenizer::from_json_bytes(body, "fuzz tokenizer.json") {
                    if let Ok(ids) = t.encode("a red fox, highly detailed") {
                        let _ = t.decode(&ids);
                    }
                }
            } else if let Ok(t) = ClipTokenizer::from_merges_text(&String::from_utf8_lossy(body)) {
                if let Ok(row) = t.tokenize_sd("a red fox, highly detailed") {
                    check_clip_row(&row, &t);
                }
            }
        }
    }
});
