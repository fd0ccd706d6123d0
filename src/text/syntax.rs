//! Front-end prompt syntax: the weighting, extra-network and wildcard notation of the common
//! image front-ends (AUTOMATIC1111's attention `(word:1.2)`, `((word))`, `[word]`, prompt editing
//! `[a:b:0.5]` and alternation `[a|b]`; extra networks `<lora:name:0.8>`, `<hypernet:...>`;
//! ComfyUI's `embedding:name`; the `BREAK` keyword; sd-dynamic-prompts' `{a|b}` variants and
//! `__wildcard__` files; backslash escapes). [`parse`] finds the syntax spans of a prompt and the
//! plain text a language model should see; [`keep_syntax`] merges a rewrite of that plain text
//! back into the user's prompt so every byte of the user's prompt, syntax included, stays in place
//! (docs/prompt-syntax.md).

/// One piece of syntax in a prompt: its byte range and what it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Span {
    pub start: usize,
    pub end: usize,
    pub kind: SpanKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpanKind {
    /// `(text)`, `((text))`, `(text:1.2)`: the text is plain, the brackets and weight are syntax.
    Emphasis,
    /// `[text]`, `[a:b:0.5]`, `[a|b]`.
    Deemphasis,
    /// `<lora:name:0.8>` and any other `<kind:...>` extra network.
    ExtraNetwork,
    /// `embedding:name` (ComfyUI).
    Embedding,
    /// `{a|b}` (sd-dynamic-prompts variants).
    Variants,
    /// `__name__` (sd-dynamic-prompts wildcard file).
    Wildcard,
    /// `BREAK` (a new 75-token chunk).
    Break,
    /// A backslash escape such as `\(`.
    Escape,
}

/// A parsed prompt: its top-level syntax spans in order, and the plain text (syntax removed,
/// emphasised words kept, `{a|b}` reduced to its first choice, `BREAK` to a comma).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    pub spans: Vec<Span>,
    pub plain: String,
}

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'/')
}

/// The index just past the bracket that closes the one at `open` (nesting of the same pair
/// counted, escapes skipped), or None when it is never closed.
fn matching(s: &[u8], open: usize, o: u8, c: u8) -> Option<usize> {
    let mut depth = 0usize;
    let mut i = open;
    while i < s.len() {
        match s[i] {
            b'\\' => i += 1,
            x if x == o => depth += 1,
            x if x == c => {
                depth -= 1;
                if depth == 0 {
                    return Some(i + 1);
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// The plain text of an emphasis body: a trailing `:number` weight removed.
fn strip_weight(body: &str) -> &str {
    if let Some(colon) = body.rfind(':') {
        let w = body[colon + 1..].trim();
        if !w.is_empty() && w.parse::<f64>().is_ok() {
            return &body[..colon];
        }
    }
    body
}

/// The plain text of a `[...]` body: `a:b:N` -> a (or b when a is empty), `a|b` -> a, else itself.
fn deemphasis_plain(body: &str) -> String {
    let top = split_top(body, b'|');
    if top.len() > 1 {
        return plain_of(top[0]);
    }
    let parts = split_top(body, b':');
    if parts.len() == 3 && parts[2].trim().parse::<f64>().is_ok() {
        let a = plain_of(parts[0]);
        return if a.trim().is_empty() { plain_of(parts[1]) } else { a };
    }
    if parts.len() == 2 && parts[1].trim().parse::<f64>().is_ok() {
        return plain_of(parts[0]);
    }
    plain_of(body)
}

/// Split `s` at `sep` outside any brackets.
fn split_top(s: &str, sep: u8) -> Vec<&str> {
    let b = s.as_bytes();
    let (mut depth, mut last, mut out) = (0i32, 0usize, Vec::new());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 1,
            b'(' | b'[' | b'{' | b'<' => depth += 1,
            b')' | b']' | b'}' | b'>' => depth -= 1,
            x if x == sep && depth == 0 => {
                out.push(&s[last..i]);
                last = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    out.push(&s[last..]);
    out
}

fn plain_of(s: &str) -> String {
    parse(s).plain
}

/// Find the syntax spans of `prompt` and its plain text. Unbalanced brackets are plain text.
pub fn parse(prompt: &str) -> Parsed {
    let s = prompt.as_bytes();
    let mut spans = Vec::new();
    let mut plain = String::with_capacity(prompt.len());
    let mut i = 0;
    let mut text_from = 0;
    let flush = |plain: &mut String, from: usize, to: usize| plain.push_str(&prompt[from..to]);
    while i < s.len() {
        let span = match s[i] {
            b'\\' if i + 1 < s.len() && matches!(s[i + 1], b'(' | b')' | b'[' | b']' | b'{' | b'}' | b'<' | b'>' | b'\\' | b'|') => {
                Some((i + 2, SpanKind::Escape, prompt[i + 1..i + 2].to_string()))
            }
            b'(' => matching(s, i, b'(', b')').map(|e| (e, SpanKind::Emphasis, plain_of(strip_weight(&prompt[i + 1..e - 1])))),
            b'[' => matching(s, i, b'[', b']').map(|e| (e, SpanKind::Deemphasis, deemphasis_plain(&prompt[i + 1..e - 1]))),
            b'{' => matching(s, i, b'{', b'}').map(|e| {
                let body = &prompt[i + 1..e - 1];
                let first = split_top(body, b'|')[0];
                // `{2$$a|b}`: the choices follow the last `$$`.
                let first = first.rsplit("$$").next().unwrap_or(first);
                (e, SpanKind::Variants, plain_of(first))
            }),
            b'<' => {
                // `<kind:...>` with a name-like kind, no nesting.
                let end = prompt[i..].find('>').map(|k| i + k + 1);
                let kind_ok = |e: usize| {
                    let body = &prompt[i + 1..e - 1];
                    body.find(':').is_some_and(|c| c > 0 && body[..c].bytes().all(is_name_byte))
                };
                end.filter(|&e| kind_ok(e)).map(|e| (e, SpanKind::ExtraNetwork, String::new()))
            }
            b'_' if s[i..].starts_with(b"__") && (i == 0 || !is_name_byte(s[i - 1])) => {
                let rest = &s[i + 2..];
                let n = rest.iter().take_while(|&&b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'/' | b'*' | b'.')).count();
                // `__name__`, where the name may hold single underscores.
                let mut j = i + 2 + n;
                while j < s.len() && s[j] == b'_' && !s[j..].starts_with(b"__") && j + 1 < s.len() && is_name_byte(s[j + 1]) {
                    j += 1;
                    j += s[j..].iter().take_while(|&&b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'/' | b'*' | b'.')).count();
                }
                (j > i + 2 && s[j..].starts_with(b"__")).then(|| (j + 2, SpanKind::Wildcard, String::new()))
            }
            b'e' if s[i..].starts_with(b"embedding:") && (i == 0 || !is_name_byte(s[i - 1])) => {
                let n = s[i + 10..].iter().take_while(|&&b| is_name_byte(b)).count();
                (n > 0).then(|| (i + 10 + n, SpanKind::Embedding, String::new()))
            }
            b'B' if s[i..].starts_with(b"BREAK")
                && (i == 0 || !s[i - 1].is_ascii_alphanumeric())
                && s.get(i + 5).is_none_or(|b| !b.is_ascii_alphanumeric()) =>
            {
                Some((i + 5, SpanKind::Break, ",".to_string()))
            }
            _ => None,
        };
        match span {
            Some((end, kind, text)) => {
                flush(&mut plain, text_from, i);
                plain.push_str(&text);
                spans.push(Span { start: i, end, kind });
                i = end;
                text_from = end;
            }
            None => {
                // Whole UTF-8 characters only.
                i += prompt[i..].chars().next().map_or(1, char::len_utf8);
            }
        }
    }
    flush(&mut plain, text_from, s.len());
    Parsed { spans, plain: tidy(&plain) }
}

/// Whitespace runs to one space, no space before a comma, no empty comma-separated phrase.
fn tidy(s: &str) -> String {
    let phrases: Vec<String> = s.split(',').map(|p| p.split_whitespace().collect::<Vec<_>>().join(" ")).collect();
    let mut out: Vec<&str> = Vec::new();
    for p in &phrases {
        if !p.is_empty() {
            out.push(p);
        }
    }
    out.join(", ")
}

/// The bytes a generated phrase may not contain: anything that would read as syntax.
fn sanitize_phrase(p: &str) -> String {
    let mut cleaned: String = p.chars().map(|c| if matches!(c, '(' | ')' | '[' | ']' | '{' | '}' | '<' | '>' | '|' | '\\') { ' ' } else { c }).collect();
    cleaned = cleaned.replace("BREAK", "break").replace("embedding:", "embedding ");
    while cleaned.contains("__") {
        cleaned = cleaned.replace("__", "_");
    }
    cleaned.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Merge `rewrite` (the policy's rewrite of `plain`, which is `parse(prompt).plain`) into
/// `prompt`: the user's prompt is kept byte for byte, followed by the rewrite's comma-separated
/// phrases that are not already phrases of the plain text, with any syntax characters removed from
/// them, so the result has exactly the user's syntax spans, where the user put them.
pub fn keep_syntax(prompt: &str, plain: &str, rewrite: &str) -> String {
    let have: Vec<String> = plain.split(',').map(|p| p.trim().to_lowercase()).collect();
    let mut added: Vec<String> = Vec::new();
    for p in rewrite.split(',') {
        let p = sanitize_phrase(p);
        let key = p.to_lowercase();
        if !p.is_empty() && !have.contains(&key) && !added.iter().any(|a| a.to_lowercase() == key) {
            added.push(p);
        }
    }
    let base = prompt.trim_end();
    if added.is_empty() {
        return prompt.to_string();
    }
    let sep = if base.ends_with(',') { " " } else { ", " };
    format!("{}{sep}{}", &prompt[..base.len()], added.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (prompt, plain text, span texts)
    const CASES: &[(&str, &str, &[&str])] = &[
        ("a red fox", "a red fox", &[]),
        ("(red fox:1.2) in the snow", "red fox in the snow", &["(red fox:1.2)"]),
        ("((masterpiece)), a castle", "masterpiece, a castle", &["((masterpiece))"]),
        ("[blurry] portrait", "blurry portrait", &["[blurry]"]),
        ("a cat <lora:catStyle_v2:0.8>", "a cat", &["<lora:catStyle_v2:0.8>"]),
        ("<hypernet:anime:1> a girl", "a girl", &["<hypernet:anime:1>"]),
        ("<lyco:some-thing.v1:0.5>, forest", "forest", &["<lyco:some-thing.v1:0.5>"]),
        ("embedding:EasyNegative, a dog", "a dog", &["embedding:EasyNegative"]),
        ("a city BREAK at night", "a city, at night", &["BREAK"]),
        ("a {red|blue|green} car", "a red car", &["{red|blue|green}"]),
        ("a {2$$red|blue|green} car", "a red car", &["{2$$red|blue|green}"]),
        ("__animals__ in a field", "in a field", &["__animals__"]),
        ("a __colors/warm__ sky", "a sky", &["__colors/warm__"]),
        ("a __my_list__ thing", "a thing", &["__my_list__"]),
        ("\\(not emphasis\\) text", "(not emphasis) text", &["\\(", "\\)"]),
        ("[cat:dog:0.5] on a sofa", "cat on a sofa", &["[cat:dog:0.5]"]),
        ("[:dog:10] on a sofa", "dog on a sofa", &["[:dog:10]"]),
        ("[cat|dog] running", "cat running", &["[cat|dog]"]),
        ("(a (nested:1.1) word:0.9)", "a nested word", &["(a (nested:1.1) word:0.9)"]),
        ("(time:12:30)", "time:12", &["(time:12:30)"]),
        ("a (lonely tree", "a (lonely tree", &[]),
        ("smile :) happy", "smile :) happy", &[]),
        ("a <b>bold</b> tag", "a <b>bold</b> tag", &[]),
        ("BREAKFAST table", "BREAKFAST table", &[]),
        ("a my__var__x", "a my__var__x", &[]),
        ("caf\u{e9} (na\u{ef}ve:1.1) \u{6771}\u{4eac}", "caf\u{e9} na\u{ef}ve \u{6771}\u{4eac}", &["(na\u{ef}ve:1.1)"]),
        ("(masterpiece:1.2), (best quality), <lora:x:1>, 1girl, BREAK, {day|night}", "masterpiece, best quality, 1girl, day", &["(masterpiece:1.2)", "(best quality)", "<lora:x:1>", "BREAK", "{day|night}"]),
        ("a {red|(blue:1.2)} ball", "a red ball", &["{red|(blue:1.2)}"]),
        ("a {(blue:1.2)|red} ball", "a blue ball", &["{(blue:1.2)|red}"]),
        ("  spaced   out ,, words  ", "spaced out, words", &[]),
        ("embedding:", "embedding:", &[]),
        ("x embedding:neg_v1.pt y", "x y", &["embedding:neg_v1.pt"]),
    ];

    #[test]
    fn parses_the_front_ends_syntax() {
        for (prompt, plain, spans) in CASES {
            let p = parse(prompt);
            assert_eq!(p.plain, *plain, "plain text of {prompt:?}");
            let texts: Vec<&str> = p.spans.iter().map(|s| &prompt[s.start..s.end]).collect();
            assert_eq!(texts, *spans, "spans of {prompt:?}");
        }
        assert!(CASES.len() >= 30);
    }

    #[test]
    fn merge_keeps_the_prompt_and_adds_clean_phrases() {
        let p = "(red fox:1.2) in the snow <lora:x:0.8>";
        let r = "red fox in the snow, highly detailed, (artstation), <lora:evil:1>, BREAK, trending";
        assert_eq!(keep_syntax(p, &parse(p).plain, r), "(red fox:1.2) in the snow <lora:x:0.8>, highly detailed, artstation, lora:evil:1, break, trending");
        assert_eq!(keep_syntax("a cat,", &parse("a cat,").plain, "a cat, 8k"), "a cat, 8k");
        assert_eq!(keep_syntax("a cat", &parse("a cat").plain, "a cat"), "a cat");
        assert_eq!(keep_syntax("a cat ", &parse("a cat ").plain, "a cat, 8k, 8K"), "a cat, 8k");
    }

    /// Property: for 2,000 random prompts mixing words and every kind of syntax, and random
    /// rewrites full of syntax characters, the merged prompt starts with the user's prompt and has
    /// exactly the user's syntax spans, at the same bytes.
    #[test]
    fn merged_prompts_keep_exactly_the_users_spans() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let words = ["a", "red", "fox", "castle", "caf\u{e9}", "\u{6771}\u{4eac}", "8k", "BREAKFAST", "embedding", "lora", "x_y", ":", ",", "1.2"];
        let syntax = [
            "(w:1.2)", "((w))", "[w]", "<lora:n:0.8>", "<hypernet:h:1>", "embedding:neg", "BREAK", "{a|b}", "{2$$a|b|c}", "__animals__",
            "\\(", "\\)", "[a:b:0.5]", "[a|b]", "(a (b:1.1) c)", "(", ")", "[", "{", "<", "__", "\\",
        ];
        let junk = ["(", ")", "[", "]", "{", "}", "<", ">", "|", "\\", "__", "BREAK", "embedding:", "lora:", ",", " "];
        for case in 0..2000 {
            let mut p = String::new();
            for _ in 0..rng.random_range(1..12) {
                let piece = if rng.random_bool(0.4) { syntax[rng.random_range(0..syntax.len())] } else { words[rng.random_range(0..words.len())] };
                p.push_str(piece);
                if rng.random_bool(0.7) {
                    p.push(' ');
                }
            }
            let mut r = parse(&p).plain;
            for _ in 0..rng.random_range(0..10) {
                r.push_str(if rng.random_bool(0.5) { junk[rng.random_range(0..junk.len())] } else { words[rng.random_range(0..words.len())] });
            }
            let out = keep_syntax(&p, &parse(&p).plain, &r);
            assert!(out.starts_with(p.trim_end()), "case {case}: {out:?} does not start with {p:?}");
            let span_texts = |s: &str| parse(s).spans.into_iter().map(|x| (x.start, x.end, x.kind)).collect::<Vec<_>>();
            assert_eq!(span_texts(&out), span_texts(&p), "case {case}: prompt {p:?}, rewrite {r:?}, merged {out:?}");
        }
    }
}
