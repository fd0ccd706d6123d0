//! GPT-2 byte-level BPE tokenizer (Radford et al. 2019; OpenAI's `encoder.json` + `vocab.bpe`), built
//! on the `tokenizers` crate with the same configuration as transformers' `GPT2TokenizerFast`:
//! byte-level pre-tokenizer with the GPT-2 regex and no prefix space, BPE without dropout or
//! unknown token, byte-level decoder, and `<|endoftext|>` (id 50256) as the one special token.
//!
//! The project's `tokenizer.json` is committed as `src/text/data/gpt2-tokenizer.json` and embedded
//! in the library, so the GPT-2 tokenizer is always available without files. It is generated from
//! the real vocabulary (`src/data/gpt2`, MIT licence and provenance there) by
//! `cargo test --lib text::gpt2::tests::regenerate_embedded_tokenizer_json -- --ignored`.

use std::path::Path;

use tokenizers::models::bpe::BPE;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::{AddedToken, Tokenizer};

use crate::error::{Error, Result};

/// The end-of-text token (GPT-2's EOS = BOS = PAD).
pub const EOS_TOKEN: &str = "<|endoftext|>";
/// Its id in the GPT-2 vocabulary.
pub const EOS_ID: u32 = 50256;
/// The GPT-2 vocabulary size (50 000 merges + 256 bytes + `<|endoftext|>`).
pub const VOCAB_SIZE: usize = 50257;

/// The committed GPT-2 `tokenizer.json`, embedded in the library.
pub static EMBEDDED_TOKENIZER_JSON: &[u8] = include_bytes!("data/gpt2-tokenizer.json");

/// A GPT-2 byte-level BPE tokenizer.
#[derive(Clone)]
pub struct Gpt2Tokenizer {
    inner: Tokenizer,
    eos_id: u32,
}

impl std::fmt::Debug for Gpt2Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gpt2Tokenizer")
            .field("vocab_size", &self.vocab_size())
            .field("eos_id", &self.eos_id)
            .finish()
    }
}

fn tok_err(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Tokenizer(format!("{what}: {e}"))
}

impl Gpt2Tokenizer {
    /// The GPT-2 tokenizer embedded in the library (no files needed).
    pub fn embedded() -> Result<Self> {
        Self::from_json_bytes(EMBEDDED_TOKENIZER_JSON, "embedded GPT-2 tokenizer.json")
    }

    /// Load a Hugging Face `tokenizer.json` (for example a bundle's `policy/tokenizer.json`).
    pub fn from_tokenizer_json(path: &Path) -> Result<Self> {
        let text = crate::io::read_text(path)?;
        Self::from_json_bytes(text.as_bytes(), &path.display().to_string())
    }

    /// Parse `tokenizer.json` bytes; `origin` names them in errors.
    pub fn from_json_bytes(bytes: &[u8], origin: &str) -> Result<Self> {
        // The tokenizers crate panics (an `expect`) on some malformed parts of a tokenizer.json
        // (found by the `tokenizers` fuzz target) instead of returning an error: the JSON syntax
        // is checked here first, and any remaining panic becomes a TOKENIZER error.
        serde_json::from_slice::<serde::de::IgnoredAny>(bytes).map_err(|e| Error::Tokenizer(format!("parsing {origin}: {e}")))?;
        let parsed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| Tokenizer::from_bytes(bytes)));
        let inner = match parsed {
            Ok(r) => r.map_err(|e| tok_err(&format!("parsing {origin}"), e))?,
            Err(panic) => {
                let why = panic.downcast_ref::<String>().cloned().or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string())).unwrap_or_default();
                return Err(Error::Tokenizer(format!("parsing {origin}: not a tokenizer.json the tokenizers library can read ({why})")));
            }
        };
        Self::checked(inner, origin)
    }

    /// Build the tokenizer from a GPT-2 `vocab.json` (OpenAI's `encoder.json`) and `merges.txt`
    /// (OpenAI's `vocab.bpe`), configured as transformers' `GPT2TokenizerFast`.
    pub fn from_vocab_merges(vocab: &Path, merges: &Path) -> Result<Self> {
        for p in [vocab, merges] {
            if !p.is_file() {
                return Err(Error::Tokenizer(format!("tokenizer file not found: {}", p.display())));
            }
        }
        let vocab_s = vocab.to_str().ok_or(Error::InvalidUtf8 { what: "vocab path" })?;
        let merges_s = merges.to_str().ok_or(Error::InvalidUtf8 { what: "merges path" })?;
        let bpe = BPE::from_file(vocab_s, merges_s)
            .continuing_subword_prefix(String::new())
            .end_of_word_suffix(String::new())
            .build()
            .map_err(|e| tok_err(&format!("reading {} and {}", vocab.display(), merges.display()), e))?;
        let mut inner = Tokenizer::new(bpe);
        inner
            .with_pre_tokenizer(Some(ByteLevel::new(false, true, true)))
            .with_post_processor(Some(ByteLevel::new(false, false, true)))
            .with_decoder(Some(ByteLevel::default()));
        inner
            .add_special_tokens([AddedToken::from(EOS_TOKEN, true).normalized(false)])
            .map_err(|e| tok_err("adding <|endoftext|>", e))?;
        Self::checked(inner, &format!("{} + {}", vocab.display(), merges.display()))
    }

    fn checked(inner: Tokenizer, origin: &str) -> Result<Self> {
        let eos_id = inner
            .token_to_id(EOS_TOKEN)
            .ok_or_else(|| Error::Tokenizer(format!("{origin} has no {EOS_TOKEN} token")))?;
        let size = inner.get_vocab_size(true);
        if size < 257 {
            return Err(Error::Tokenizer(format!(
                "{origin} has only {size} tokens; a byte-level BPE vocabulary has at least 257"
            )));
        }
        Ok(Self { inner, eos_id })
    }

    /// Token ids of `text`: no BOS, no prefix space; `<|endoftext|>` inside the text is the special id.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let enc = self.inner.encode(text, false).map_err(|e| tok_err("encode", e))?;
        Ok(enc.get_ids().to_vec())
    }

    /// Text of `ids`, special tokens included (transformers' `decode` with
    /// `clean_up_tokenization_spaces=False`). An id outside the vocabulary is an error.
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        self.decode_impl(ids, false)
    }

    /// Text of `ids` with special tokens (`<|endoftext|>`) dropped.
    pub fn decode_skip_special(&self, ids: &[u32]) -> Result<String> {
        self.decode_impl(ids, true)
    }

    fn decode_impl(&self, ids: &[u32], skip_special: bool) -> Result<String> {
        let n = self.vocab_size() as u32;
        if let Some(bad) = ids.iter().find(|&&id| id >= n) {
            return Err(Error::Tokenizer(format!(
                "token id {bad} is outside the vocabulary of {n}"
            )));
        }
        self.inner.decode(ids, skip_special).map_err(|e| tok_err("decode", e))
    }

    /// The `<|endoftext|>` id.
    pub fn eos_id(&self) -> u32 {
        self.eos_id
    }

    /// Number of tokens, added tokens included (50257 for GPT-2).
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// The id of a token string, if it is in the vocabulary.
    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// Serialise as a `tokenizer.json` (compact), as written into bundles.
    pub fn to_json(&self) -> Result<String> {
        self.inner
            .to_string(false)
            .map_err(|e| tok_err("serialise tokenizer.json", e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    /// The real GPT-2 vocabulary shipped in the repository.
    fn gpt2_dir() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/data/gpt2")
    }

    fn from_vocabulary_files() -> Gpt2Tokenizer {
        let d = gpt2_dir();
        Gpt2Tokenizer::from_vocab_merges(&d.join("encoder.json"), &d.join("vocab.bpe")).unwrap()
    }

    #[test]
    #[ignore = "writes src/text/data/gpt2-tokenizer.json; run on purpose to regenerate it"]
    fn regenerate_embedded_tokenizer_json() {
        let json = from_vocabulary_files().to_json().unwrap();
        let out = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/text/data/gpt2-tokenizer.json");
        std::fs::write(&out, json + "\n").unwrap();
        eprintln!("wrote {}", out.display());
    }

    #[test]
    fn embedded_json_matches_the_vocabulary() {
        let fresh = from_vocabulary_files().to_json().unwrap() + "\n";
        assert!(
            fresh.as_bytes() == EMBEDDED_TOKENIZER_JSON,
            "src/text/data/gpt2-tokenizer.json is stale; regenerate it (see the module doc)"
        );
    }

    #[test]
    fn embedded_basics() {
        let t = Gpt2Tokenizer::embedded().unwrap();
        assert_eq!(t.vocab_size(), VOCAB_SIZE);
        assert_eq!(t.eos_id(), EOS_ID);
        // Facts of the GPT-2 vocabulary: "hello" = 31373, " world" = 995, " " = 220.
        assert_eq!(t.encode("hello world").unwrap(), vec![31373, 995]);
        assert_eq!(t.encode("a<|endoftext|>b").unwrap(), vec![64, EOS_ID, 65]);
        assert_eq!(t.decode(&[31373, 995, EOS_ID]).unwrap(), "hello world<|endoftext|>");
        assert_eq!(t.decode_skip_special(&[31373, 995, EOS_ID]).unwrap(), "hello world");
        assert!(t.encode("").unwrap().is_empty());
        assert_eq!(t.decode(&[99999]).unwrap_err().code(), crate::Code::Tokenizer);
    }

    #[test]
    fn round_trip_arbitrary_text() {
        let t = Gpt2Tokenizer::embedded().unwrap();
        for s in [
            "  two  spaces\t\ttabs\n\nnewlines ",
            "日本語のテキスト 🤖🎨",
            "café ñ Ω ∑ \u{200b}",
        ] {
            assert_eq!(t.decode(&t.encode(s).unwrap()).unwrap(), s);
        }
    }

    #[test]
    fn bad_inputs_are_errors() {
        let e = Gpt2Tokenizer::from_json_bytes(b"{not json", "test").unwrap_err();
        assert_eq!(e.code(), crate::Code::Tokenizer);
        let e = Gpt2Tokenizer::from_vocab_merges(Path::new("/nonexistent/v.json"), Path::new("/nonexistent/m.txt"))
            .unwrap_err();
        assert!(e.to_string().contains("/nonexistent/v.json"));
    }

    /// Found by the `tokenizers` fuzz target: the tokenizers crate panicked on a malformed
    /// decoder; both a syntax error there and a well-formed but unknown decoder are errors now.
    #[test]
    fn malformed_parts_are_errors_not_panics() {
        let text = std::str::from_utf8(EMBEDDED_TOKENIZER_JSON).unwrap();
        let at = text.find("\"decoder\"").expect("the embedded tokenizer has a decoder");
        let broken_syntax = format!("{}\"decoder\": {{\"type\": \"ByteLevel\" \"x\"", &text[..at]);
        let e = Gpt2Tokenizer::from_json_bytes(broken_syntax.as_bytes(), "t").map(|_| ()).unwrap_err();
        assert_eq!(e.code(), crate::Code::Tokenizer, "{e}");
        let mut v: serde_json::Value = serde_json::from_str(text).unwrap();
        v["decoder"] = serde_json::json!({"type": 7});
        let e = Gpt2Tokenizer::from_json_bytes(v.to_string().as_bytes(), "t").map(|_| ()).unwrap_err();
        assert_eq!(e.code(), crate::Code::Tokenizer, "{e}");
    }
}
