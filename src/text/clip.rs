//! CLIP's BPE tokenizer (OpenAI CLIP `simple_tokenizer.py`, as open_clip's `SimpleTokenizer` and
//! transformers' `CLIPTokenizer` build it) on the `tokenizers` crate, from CLIP's own
//! `bpe_simple_vocab_16e6.txt.gz` (a header line, then merges; words end in `</w>`).
//!
//! Vocabulary (49408 ids): the 256 byte symbols of GPT-2's byte-to-unicode table, the same 256
//! with `</w>`, one id per merge (the first 48894 merge lines), then `<|startoftext|>` (49406) and
//! `<|endoftext|>` (49407). Pipeline: clean the text (see [`CleanMode`]), split with CLIP's regex
//! `'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+` (case-insensitive; the text is
//! already lower-cased), map bytes to unicode symbols, BPE with `</w>` on each word's last symbol.
//! `tokenize` adds the start and end tokens and truncates to the context (77) keeping the end
//! token last; padding with 0 (open_clip) or with the end token (transformers' CLIPTokenizer as
//! Stable Diffusion's text encoder is fed).
//!
//! Cleaning implemented for open_clip's `basic_clean` + `whitespace_clean` + `lower`: HTML entity
//! unescaping (twice; numeric entities and the common named ones: amp lt gt quot in both cases,
//! nbsp copy apos; the rest of HTML5's 2000+ names and the cp1252 remapping of `&#128;`..`&#159;`
//! are not implemented), and of ftfy's `fix_text` the parts that change
//! well-formed text: NFC, curly quotes to straight, Latin ligatures (U+FB00..FB06) split, full-width
//! ASCII and the ideographic space to ASCII, control characters removed. NOT implemented: ftfy's
//! mojibake repair (text that was decoded with the wrong codec), which can differ on such input.
//!
//! The merges file is embedded ([`EMBEDDED_BPE_GZ`], from `src/data/clip/`, MIT), so
//! [`ClipTokenizer::embedded`] needs no file.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

use tokenizers::models::bpe::BPE;
use tokenizers::normalizers::unicode::NFC;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::{NormalizedString, Normalizer, SplitDelimiterBehavior, Tokenizer};

use crate::{Error, Result};

/// CLIP's context length.
pub const CONTEXT_LENGTH: usize = 77;
/// Number of merges CLIP uses (lines 1..=48894 of the merges file).
pub const NUM_MERGES: usize = 49152 - 256 - 2;
pub const VOCAB_SIZE: usize = 49408;
pub const START_OF_TEXT: &str = "<|startoftext|>";
pub const END_OF_TEXT: &str = "<|endoftext|>";

/// CLIP's `bpe_simple_vocab_16e6.txt.gz` (`src/data/clip/`, provenance in `src/data/README.md`).
pub static EMBEDDED_BPE_GZ: &[u8] = include_bytes!("../data/clip/bpe_simple_vocab_16e6.txt.gz");

/// Decompress a CLIP merges file (`bpe_simple_vocab_16e6.txt.gz` format); `what` names it in errors.
pub fn gunzip_merges(gz: &[u8], what: &str) -> Result<String> {
    // Capped: a real merges file is 1.6 MB decompressed; a gzip bomb must not exhaust memory.
    let cap = crate::io::MAX_TEXT_FILE_BYTES;
    let mut text = String::new();
    flate2::read::GzDecoder::new(gz)
        .take(cap + 1)
        .read_to_string(&mut text)
        .map_err(|e| Error::Tokenizer(format!("decompressing {what}: {e}")))?;
    if text.len() as u64 > cap {
        return Err(Error::Tokenizer(format!("{what}: decompresses to more than {cap} bytes")));
    }
    Ok(text)
}

const PATTERN: &str = r"(?i)'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+";

/// How the text is cleaned before the regex split.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CleanMode {
    /// open_clip / OpenAI CLIP: HTML unescape + ftfy subset + whitespace collapse + lower-case.
    OpenClip,
    /// transformers' (fast) CLIPTokenizer: NFC + whitespace runs to one space + lower-case.
    Transformers,
}

/// What fills the positions after the end token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClipPadding {
    /// 0, as `open_clip.tokenize` (the scorer's CLIP).
    Zeros,
    /// The end token (49407), as transformers' CLIPTokenizer with `padding="max_length"` for SD.
    EndOfText,
}

pub struct ClipTokenizer {
    tokenizer: Tokenizer,
    sot: u32,
    eot: u32,
}

/// Python's `str.split()` whitespace (Unicode White_Space plus U+001C..U+001F).
fn is_py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

fn nfc(text: &str) -> String {
    let mut n = NormalizedString::from(text);
    // NFC::normalize cannot fail.
    let _ = NFC.normalize(&mut n);
    n.get().to_string()
}

/// One pass of HTML entity unescaping (numeric entities and common names).
fn html_unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find('&') {
        out.push_str(&rest[..pos]);
        let tail = &rest[pos..];
        let mut consumed = 0;
        if let Some(body) = tail.strip_prefix("&#") {
            let (hex, digits_src) = match body.strip_prefix(['x', 'X']) {
                Some(h) => (true, h),
                None => (false, body),
            };
            let n = digits_src
                .chars()
                .take_while(|c| {
                    if hex {
                        c.is_ascii_hexdigit()
                    } else {
                        c.is_ascii_digit()
                    }
                })
                .count();
            if n > 0 {
                let digits = &digits_src[..n];
                let value = u32::from_str_radix(digits, if hex { 16 } else { 10 }).ok();
                let semi = digits_src[n..].starts_with(';') as usize;
                let ch = match value {
                    Some(0) | None => Some('\u{fffd}'),
                    Some(v) if (0xD800..=0xDFFF).contains(&v) || v > 0x10FFFF => Some('\u{fffd}'),
                    Some(v) => char::from_u32(v),
                };
                if let Some(c) = ch {
                    out.push(c);
                    consumed = 2 + (hex as usize) + n + semi;
                }
            }
        } else {
            // Named references: with ';' first, then the HTML5 legacy names that may omit it.
            const NAMED: [(&str, &str); 11] = [
                ("amp", "&"),
                ("AMP", "&"),
                ("lt", "<"),
                ("LT", "<"),
                ("gt", ">"),
                ("GT", ">"),
                ("quot", "\""),
                ("QUOT", "\""),
                ("nbsp", "\u{a0}"),
                ("apos", "'"),
                ("copy", "\u{a9}"),
            ];
            let body = &tail[1..];
            for (name, rep) in NAMED {
                if let Some(after) = body.strip_prefix(name) {
                    let semi = after.starts_with(';');
                    // `apos` is only recognised with its semicolon (not a legacy name).
                    if semi || name != "apos" {
                        out.push_str(rep);
                        consumed = 1 + name.len() + semi as usize;
                        break;
                    }
                }
            }
        }
        if consumed == 0 {
            out.push('&');
            consumed = 1;
        }
        rest = &tail[consumed..];
    }
    out.push_str(rest);
    out
}

/// The parts of ftfy's `fix_text` that change well-formed text (see the module docs).
fn ftfy_subset(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in nfc(text).chars() {
        match c {
            '\u{2018}' | '\u{2019}' | '\u{201a}' | '\u{201b}' => out.push('\''),
            '\u{201c}' | '\u{201d}' | '\u{201e}' | '\u{201f}' => out.push('"'),
            '\u{fb00}' => out.push_str("ff"),
            '\u{fb01}' => out.push_str("fi"),
            '\u{fb02}' => out.push_str("fl"),
            '\u{fb03}' => out.push_str("ffi"),
            '\u{fb04}' => out.push_str("ffl"),
            '\u{fb05}' | '\u{fb06}' => out.push_str("st"),
            '\u{3000}' => out.push(' '),
            '\u{ff01}'..='\u{ff5e}' => out.push(char::from_u32(c as u32 - 0xfee0).unwrap_or(c)),
            '\r' => out.push('\n'),
            c if c.is_control() && c != '\n' && c != '\t' => {}
            c => out.push(c),
        }
    }
    out
}

/// Collapse whitespace runs to one space and strip the ends (`" ".join(text.split())`).
fn whitespace_clean(text: &str) -> String {
    text.split(is_py_space)
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Clean `text` as the chosen reference does before splitting.
pub fn clean(text: &str, mode: CleanMode) -> String {
    match mode {
        CleanMode::OpenClip => {
            let t = ftfy_subset(text);
            let t = html_unescape(&html_unescape(&t));
            whitespace_clean(t.trim_matches(is_py_space)).to_lowercase()
        }
        CleanMode::Transformers => {
            let t = nfc(text);
            let mut out = String::with_capacity(t.len());
            let mut in_space = false;
            for c in t.chars() {
                if c.is_whitespace() {
                    if !in_space {
                        out.push(' ');
                    }
                    in_space = true;
                } else {
                    out.push(c);
                    in_space = false;
                }
            }
            // tokenizers' Lowercase maps each char on its own (no final-sigma rule, unlike Python).
            out.chars().flat_map(char::to_lowercase).collect()
        }
    }
}

impl ClipTokenizer {
    /// Build from CLIP's gzipped merges file (`bpe_simple_vocab_16e6.txt.gz`).
    pub fn from_bpe_gz(path: &Path) -> Result<Self> {
        let gz = std::fs::read(path).map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
        let what = path.display().to_string();
        Self::from_merges_text(&gunzip_merges(&gz, &what)?).map_err(|e| Error::Tokenizer(format!("{what}: {e}")))
    }

    /// The tokenizer of the embedded merges file ([`EMBEDDED_BPE_GZ`]).
    pub fn embedded() -> Result<Self> {
        Self::from_merges_text(&gunzip_merges(EMBEDDED_BPE_GZ, "the embedded CLIP merges")?)
    }

    /// Build from the decompressed merges text (header line, then one merge per line).
    pub fn from_merges_text(text: &str) -> Result<Self> {
        let lines: Vec<&str> = text.split('\n').collect();
        if lines.len() < NUM_MERGES + 1 {
            return Err(Error::Tokenizer(format!(
                "the CLIP merges file has {} lines, expected at least {}",
                lines.len(),
                NUM_MERGES + 1
            )));
        }
        let mut merges = Vec::with_capacity(NUM_MERGES);
        for (i, line) in lines[1..=NUM_MERGES].iter().enumerate() {
            let mut parts = line.split_whitespace();
            match (parts.next(), parts.next(), parts.next()) {
                (Some(a), Some(b), None) => merges.push((a.to_string(), b.to_string())),
                _ => {
                    return Err(Error::Tokenizer(format!(
                        "bad merge on line {}: {line:?}",
                        i + 2
                    )))
                }
            }
        }
        // Byte symbols in bytes_to_unicode order (the printable ranges first, then the rest).
        let mut bytes: Vec<u32> = (b'!' as u32..=b'~' as u32)
            .chain(0xa1..=0xac)
            .chain(0xae..=0xff)
            .collect();
        let mut symbols: Vec<char> = bytes.iter().filter_map(|&b| char::from_u32(b)).collect();
        let mut extra = 0u32;
        for b in 0..256u32 {
            if !bytes.contains(&b) {
                bytes.push(b);
                symbols.push(char::from_u32(256 + extra).unwrap_or('\u{fffd}'));
                extra += 1;
            }
        }
        let mut vocab: Vec<String> = symbols.iter().map(|c| c.to_string()).collect();
        vocab.extend(symbols.iter().map(|c| format!("{c}</w>")));
        vocab.extend(merges.iter().map(|(a, b)| format!("{a}{b}")));
        vocab.push(START_OF_TEXT.to_string());
        vocab.push(END_OF_TEXT.to_string());
        if vocab.len() != VOCAB_SIZE {
            return Err(Error::Tokenizer(format!(
                "built {} tokens, expected {VOCAB_SIZE}",
                vocab.len()
            )));
        }
        let map: HashMap<String, u32> = vocab
            .into_iter()
            .enumerate()
            .map(|(i, t)| (t, i as u32))
            .collect();
        Self::from_vocab_and_merges(map, merges)
    }

    /// Build from a token -> id map and ordered merges (as in a transformers CLIP `tokenizer/`
    /// folder: `vocab.json` + `merges.txt`).
    pub fn from_vocab_and_merges(
        vocab: HashMap<String, u32>,
        merges: Vec<(String, String)>,
    ) -> Result<Self> {
        let map: tokenizers::models::bpe::Vocab = vocab.into_iter().collect();
        let bpe = BPE::builder()
            .vocab_and_merges(map, merges)
            .end_of_word_suffix("</w>".to_string())
            .unk_token(END_OF_TEXT.to_string())
            .build()
            .map_err(|e| Error::Tokenizer(format!("building the CLIP BPE: {e}")))?;
        let split = Split::new(
            SplitPattern::Regex(PATTERN.to_string()),
            SplitDelimiterBehavior::Removed,
            true,
        )
        .map_err(|e| Error::Tokenizer(format!("CLIP split regex: {e}")))?;
        let byte_level = ByteLevel::new(false, false, false);
        let mut tokenizer = Tokenizer::new(bpe);
        tokenizer.with_pre_tokenizer(Some(PreTokenizerWrapper::Sequence(Sequence::new(vec![
            PreTokenizerWrapper::Split(split),
            PreTokenizerWrapper::ByteLevel(byte_level),
        ]))));
        let id = |t: &str| {
            tokenizer
                .token_to_id(t)
                .ok_or_else(|| Error::Tokenizer(format!("{t} missing")))
        };
        let (sot, eot) = (id(START_OF_TEXT)?, id(END_OF_TEXT)?);
        Ok(Self {
            tokenizer,
            sot,
            eot,
        })
    }

    /// Build from a transformers CLIP tokenizer folder's `vocab.json` and `merges.txt` (the
    /// optimum / diffusers `tokenizer/` layout; `merges.txt` starts with a `#version` line).
    pub fn from_vocab_merges_files(vocab_json: &Path, merges_txt: &Path) -> Result<Self> {
        let read = |p: &Path| crate::io::read_text(p);
        let vocab: HashMap<String, u32> = serde_json::from_str(&read(vocab_json)?)
            .map_err(|e| Error::Tokenizer(format!("{}: {e}", vocab_json.display())))?;
        let mut merges = Vec::new();
        for (i, line) in read(merges_txt)?.lines().enumerate() {
            if line.starts_with("#version") || line.trim().is_empty() {
                continue;
            }
            let mut parts = line.split(' ');
            match (parts.next(), parts.next(), parts.next()) {
                (Some(a), Some(b), None) => merges.push((a.to_string(), b.to_string())),
                _ => {
                    return Err(Error::Tokenizer(format!(
                        "{}: bad merge on line {}: {line:?}",
                        merges_txt.display(),
                        i + 1
                    )))
                }
            }
        }
        Self::from_vocab_and_merges(vocab, merges)
    }

    pub fn start_of_text(&self) -> u32 {
        self.sot
    }

    pub fn end_of_text(&self) -> u32 {
        self.eot
    }

    /// BPE ids of `text` after cleaning, without start/end tokens.
    pub fn encode(&self, text: &str, mode: CleanMode) -> Result<Vec<u32>> {
        let cleaned = clean(text, mode);
        let enc = self
            .tokenizer
            .encode_fast(cleaned.as_str(), false)
            .map_err(|e| Error::Tokenizer(format!("CLIP encode: {e}")))?;
        Ok(enc.get_ids().to_vec())
    }

    /// `[start] + ids + [end]`, truncated to `context_length` with the end token kept last, then
    /// padded to `context_length`.
    pub fn tokenize(
        &self,
        text: &str,
        mode: CleanMode,
        context_length: usize,
        padding: ClipPadding,
    ) -> Result<Vec<u32>> {
        if context_length < 2 {
            return Err(Error::InvalidOptions(format!(
                "CLIP context length {context_length} < 2"
            )));
        }
        let ids = self.encode(text, mode)?;
        let mut out = Vec::with_capacity(context_length);
        out.push(self.sot);
        out.extend(ids.iter().take(context_length - 2));
        out.push(self.eot);
        let pad = match padding {
            ClipPadding::Zeros => 0,
            ClipPadding::EndOfText => self.eot,
        };
        out.resize(context_length, pad);
        Ok(out)
    }

    /// The scorer's tokens: open_clip cleaning, 77 tokens, zero padding (`open_clip.tokenize`).
    pub fn tokenize_open_clip(&self, text: &str) -> Result<Vec<u32>> {
        self.tokenize(
            text,
            CleanMode::OpenClip,
            CONTEXT_LENGTH,
            ClipPadding::Zeros,
        )
    }

    /// Stable Diffusion's text-encoder tokens: transformers' CLIPTokenizer with
    /// `padding="max_length", max_length=77, truncation=True` (padded with the end token).
    pub fn tokenize_sd(&self, text: &str) -> Result<Vec<u32>> {
        self.tokenize(
            text,
            CleanMode::Transformers,
            CONTEXT_LENGTH,
            ClipPadding::EndOfText,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleaning() {
        assert_eq!(
            clean("  A\n\n  Cat\t&amp;amp; DOG ", CleanMode::OpenClip),
            "a cat & dog"
        );
        assert_eq!(
            clean("&lt;b&gt; &#65;&#x42;", CleanMode::OpenClip),
            "<b> ab"
        );
        assert_eq!(
            clean("\u{201c}Hi\u{201d} \u{fb01}ne", CleanMode::OpenClip),
            "\"hi\" fine"
        );
        assert_eq!(
            clean("  A\n\n  Cat&amp;", CleanMode::Transformers),
            " a cat&amp;"
        );
        assert_eq!(
            html_unescape("a & b &unknown; &#0;"),
            "a & b &unknown; \u{fffd}"
        );
    }
}
