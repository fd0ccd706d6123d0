//! Streaming sha256 of bundle files (the `sha2` crate), read in 1 MiB chunks.

use std::io::Read;
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// Lower-case hex sha256 and size in bytes of the file at `path`.
pub fn sha256_file(path: &Path) -> Result<(String, u64)> {
    let mut f = std::fs::File::open(path).map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = f
            .read(&mut buf)
            .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    Ok((hex::encode(hasher.finalize()), size))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_digests() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, b"abc").unwrap();
        let (h, n) = sha256_file(&p).unwrap();
        assert_eq!(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert_eq!(n, 3);
        // Crosses the 1 MiB chunk boundary.
        std::fs::write(&p, vec![b'a'; (1 << 20) + 5]).unwrap();
        let (h2, n2) = sha256_file(&p).unwrap();
        assert_eq!(n2, (1 << 20) + 5);
        assert_eq!(h2, hex::encode(Sha256::digest(vec![b'a'; (1 << 20) + 5])));
        assert_eq!(
            sha256_file(&dir.path().join("missing")).unwrap_err().code(),
            crate::Code::Io
        );
    }
}
