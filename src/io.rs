//! Bounded reads of the small text files of bundles and checkpoints (configs, tokenizers, merges,
//! scheduler configs): a file larger than any real one is an error before it is read, never an
//! allocation sized from a hostile file (docs/bundle-format.md, "Opening and validation").

use std::io::Read;
use std::path::Path;

use crate::{Error, Result};

/// Largest text file read: a real `tokenizer.json` is about 2 MB, configs a few kB.
pub const MAX_TEXT_FILE_BYTES: u64 = 64 << 20;

/// Read `path` as UTF-8 text of at most [`MAX_TEXT_FILE_BYTES`]: MODEL_FORMAT when larger or not
/// UTF-8, IO when it cannot be read.
pub fn read_text(path: &Path) -> Result<String> {
    let f = std::fs::File::open(path).map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
    let mut bytes = Vec::new();
    f.take(MAX_TEXT_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
    if bytes.len() as u64 > MAX_TEXT_FILE_BYTES {
        return Err(Error::ModelFormat(format!(
            "{}: larger than any text file of a model may be ({MAX_TEXT_FILE_BYTES} bytes)",
            path.display()
        )));
    }
    String::from_utf8(bytes).map_err(|e| Error::ModelFormat(format!("{}: not UTF-8 text ({e})", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_size_and_needs_utf8() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f.json");
        std::fs::write(&p, "{\"a\": 1}").unwrap();
        assert_eq!(read_text(&p).unwrap(), "{\"a\": 1}");
        std::fs::write(&p, b"\xff\xfe").unwrap();
        assert_eq!(read_text(&p).unwrap_err().code(), crate::Code::ModelFormat);
        let f = std::fs::File::create(&p).unwrap();
        f.set_len(MAX_TEXT_FILE_BYTES + 1).unwrap();
        let e = read_text(&p).unwrap_err();
        assert!(e.to_string().contains("larger than any text file"), "{e}");
        assert_eq!(read_text(&d.path().join("none")).unwrap_err().code(), crate::Code::Io);
    }
}
