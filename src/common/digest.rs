//! sha256 of what habackup writes, uploads and downloads, as lowercase hex.

use std::io::{self, Read};

use sha2::{Digest, Sha256};

use super::cancel::{CancelToken, Cancelled};

const CHUNK: usize = 1024 * 1024;

pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut out, b| {
            let _ = write!(out, "{b:02x}");
            out
        })
}

/// The sha256 of everything `reader` yields, checking `cancel` between 1 MiB reads (a
/// cancellation comes back as [`Cancelled::io`]).
pub fn sha256_hex<R: Read>(mut reader: R, cancel: &CancelToken) -> io::Result<String> {
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; CHUNK];
    loop {
        if cancel.is_cancelled() {
            return Err(Cancelled::io());
        }
        let n = match reader.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buffer[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_digest() {
        let digest = sha256_hex(&b"abc"[..], &CancelToken::new()).unwrap();
        assert_eq!(
            digest,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let cancelled = CancelToken::new();
        cancelled.cancel();
        assert!(Cancelled::is(
            &sha256_hex(&b"abc"[..], &cancelled).unwrap_err()
        ));
    }
}
