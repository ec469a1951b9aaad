//! Streaming encryption and decryption of an inner archive, securetar-compatible.

use std::io::{self, Read, Write};

use aes::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use subtle::ConstantTimeEq;

use super::header::{Header, HeaderError, V3Init};
use super::kdf;
use super::secretstream::{self, State, ABYTES, TAG_FINAL, TAG_MESSAGE};

/// securetar's v3 plaintext chunk.
pub const V3_CHUNK: usize = 1024 * 1024;
const AES_BLOCK: usize = 16;

type AesCbcEnc = cbc::Encryptor<aes::Aes128>;
type AesCbcDec = cbc::Decryptor<aes::Aes128>;

#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("the password is incorrect")]
    IncorrectPassword,
    #[error("{0}")]
    Header(#[from] HeaderError),
    #[error("{0}")]
    Corrupt(String),
}

fn corrupt(message: impl Into<String>) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        CryptoError::Corrupt(message.into()),
    )
}

fn random<const N: usize>() -> io::Result<[u8; N]> {
    let mut out = [0u8; N];
    getrandom::fill(&mut out).map_err(|e| io::Error::other(format!("no randomness: {e}")))?;
    Ok(out)
}

enum EncryptState {
    V2(Box<AesCbcEnc>),
    V3(Box<State>),
}

/// Encrypts everything written to it; `finish` returns the final header (with the plaintext size
/// filled in) for the caller to write over the placeholder at the start.
pub struct Encryptor<W: Write> {
    inner: W,
    state: EncryptState,
    header: Header,
    pending: Vec<u8>,
    out: Vec<u8>,
    plaintext: u64,
}

impl<W: Write> Encryptor<W> {
    /// Derives the keys (Argon2id for v3: run this off the event loop) and writes the header with
    /// a zero plaintext size.
    pub fn new(mut inner: W, password: &str, version: u8) -> io::Result<Self> {
        let (state, header) = match version {
            2 => {
                let salt = random::<16>()?;
                let key = kdf::v2_key(password);
                let iv = kdf::v2_iv(&key, &salt);
                (
                    EncryptState::V2(Box::new(AesCbcEnc::new(&key.into(), &iv.into()))),
                    Header::V2 {
                        plaintext_size: 0,
                        salt,
                    },
                )
            }
            3 => {
                let root_salt = random::<16>()?;
                let validation_salt = random::<16>()?;
                let derivation_salt = random::<16>()?;
                let stream_header = random::<24>()?;
                let root_key = kdf::v3_root_key(password, &root_salt);
                let file_key = kdf::v3_subkey(&root_key, &derivation_salt);
                let init = V3Init {
                    root_salt,
                    validation_salt,
                    validation_key: kdf::v3_subkey(&root_key, &validation_salt),
                    derivation_salt,
                    stream_header,
                };
                let state = State::new(&file_key, &stream_header);
                (
                    EncryptState::V3(Box::new(state)),
                    Header::V3 {
                        plaintext_size: 0,
                        init,
                    },
                )
            }
            v => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("securetar_version must be 2 or 3, not {v}"),
                ))
            }
        };
        inner.write_all(&header.to_bytes())?;
        Ok(Encryptor {
            inner,
            state,
            header,
            pending: Vec::new(),
            out: Vec::new(),
            plaintext: 0,
        })
    }

    fn drain(&mut self, last: bool) -> io::Result<()> {
        self.out.clear();
        match &mut self.state {
            EncryptState::V3(state) => {
                // Like securetar: full chunks while more than one chunk is buffered, so the FINAL
                // chunk is never empty unless the whole stream is.
                let mut start = 0;
                while self.pending.len() - start > V3_CHUNK {
                    state.push(
                        &self.pending[start..start + V3_CHUNK],
                        TAG_MESSAGE,
                        &mut self.out,
                    );
                    start += V3_CHUNK;
                }
                if last {
                    state.push(&self.pending[start..], TAG_FINAL, &mut self.out);
                    start = self.pending.len();
                }
                self.pending.drain(..start);
            }
            EncryptState::V2(cipher) => {
                if last {
                    // One PKCS7 pad at the very end.
                    let pad = AES_BLOCK - self.pending.len() % AES_BLOCK;
                    self.pending.resize(self.pending.len() + pad, pad as u8);
                }
                let whole = self.pending.len() / AES_BLOCK * AES_BLOCK;
                for block in self.pending[..whole].chunks_exact_mut(AES_BLOCK) {
                    cipher.encrypt_block_mut(block.into());
                }
                self.out.extend_from_slice(&self.pending[..whole]);
                self.pending.drain(..whole);
            }
        }
        self.inner.write_all(&self.out)
    }

    /// Ends the stream; returns the inner writer and the header to patch in.
    pub fn finish(mut self) -> io::Result<(W, Vec<u8>)> {
        self.drain(true)?;
        match &mut self.header {
            Header::V2 { plaintext_size, .. } | Header::V3 { plaintext_size, .. } => {
                *plaintext_size = self.plaintext
            }
            Header::V1 { .. } => {}
        }
        Ok((self.inner, self.header.to_bytes()))
    }
}

impl<W: Write> Write for Encryptor<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.pending.extend_from_slice(buf);
        self.plaintext += buf.len() as u64;
        if self.pending.len() > V3_CHUNK * 2
            || matches!(self.state, EncryptState::V2(_)) && self.pending.len() >= 64 * 1024
        {
            self.drain(false)?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

enum DecryptState {
    Cbc {
        cipher: Box<AesCbcDec>,
        remaining: Option<u64>,
    },
    Stream {
        state: Box<State>,
        finished: bool,
    },
}

/// Decrypts an inner archive read from `source`, which must end where the encrypted data ends.
pub struct Decryptor<R: Read> {
    source: R,
    /// Plaintext produced so far, checked against the header at the end.
    produced: u64,
    state: DecryptState,
    header: Header,
    ready: Vec<u8>,
    pos: usize,
    eof: bool,
}

fn looks_like_archive(block: &[u8]) -> bool {
    block.starts_with(&[0x1f, 0x8b, 0x08]) || block.get(257..262) == Some(b"ustar")
}

impl<R: Read> Decryptor<R> {
    /// Reads the header and checks the password (the v3 validation key; for v1/v2 that the first
    /// block decrypts to gzip or tar).
    pub fn new(mut source: R, password: &str) -> Result<Self, CryptoError> {
        let header = Header::read(&mut source)?;
        let state = match &header {
            Header::V1 { salt } | Header::V2 { salt, .. } => {
                let key = kdf::v2_key(password);
                let iv = kdf::v2_iv(&key, salt);
                DecryptState::Cbc {
                    cipher: Box::new(AesCbcDec::new(&key.into(), &iv.into())),
                    remaining: header.plaintext_size(),
                }
            }
            Header::V3 { init, .. } => {
                let root_key = kdf::v3_root_key(password, &init.root_salt);
                let validation = kdf::v3_subkey(&root_key, &init.validation_salt);
                if !bool::from(validation.ct_eq(&init.validation_key)) {
                    return Err(CryptoError::IncorrectPassword);
                }
                let file_key = kdf::v3_subkey(&root_key, &init.derivation_salt);
                DecryptState::Stream {
                    state: Box::new(State::new(&file_key, &init.stream_header)),
                    finished: false,
                }
            }
        };
        let mut decryptor = Decryptor {
            source,
            produced: 0,
            state,
            header,
            ready: Vec::new(),
            pos: 0,
            eof: false,
        };
        if matches!(decryptor.state, DecryptState::Cbc { .. }) {
            decryptor
                .fill()
                .map_err(|e| CryptoError::Corrupt(e.to_string()))?;
            if !looks_like_archive(&decryptor.ready) {
                return Err(CryptoError::IncorrectPassword);
            }
        }
        Ok(decryptor)
    }

    pub fn header(&self) -> &Header {
        &self.header
    }

    fn read_up_to(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut filled = 0;
        while filled < buf.len() {
            match self.source.read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(filled)
    }

    fn fill(&mut self) -> io::Result<()> {
        self.ready.clear();
        self.pos = 0;
        match &mut self.state {
            DecryptState::Stream { finished: true, .. } => {
                let mut probe = [0u8; 1];
                if self.source.read(&mut probe)? != 0 {
                    return Err(corrupt(
                        "data follows the FINAL chunk of the encrypted stream",
                    ));
                }
                self.eof = true;
            }
            DecryptState::Stream { .. } => {
                let mut chunk = vec![0u8; V3_CHUNK + ABYTES];
                let n = {
                    let mut filled = 0;
                    while filled < chunk.len() {
                        match self.source.read(&mut chunk[filled..]) {
                            Ok(0) => break,
                            Ok(k) => filled += k,
                            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                            Err(e) => return Err(e),
                        }
                    }
                    filled
                };
                if n == 0 {
                    return Err(corrupt(
                        "the encrypted stream ends without its FINAL chunk (truncated)",
                    ));
                }
                chunk.truncate(n);
                let DecryptState::Stream { state, finished } = &mut self.state else {
                    unreachable!()
                };
                let tag = state.pull(&mut chunk).map_err(|e| match e {
                    secretstream::StreamError::Truncated => {
                        corrupt("the encrypted stream is truncated")
                    }
                    secretstream::StreamError::Forged => {
                        corrupt("an encrypted chunk failed authentication: the data was altered")
                    }
                })?;
                match tag {
                    TAG_FINAL => *finished = true,
                    TAG_MESSAGE if n == V3_CHUNK + ABYTES => {}
                    TAG_MESSAGE => {
                        return Err(corrupt(
                            "the encrypted stream ends without its FINAL chunk (truncated)",
                        ))
                    }
                    other => return Err(corrupt(format!("unexpected secretstream tag {other}"))),
                }
                self.ready.extend_from_slice(&chunk[1..n - 16]);
                self.produced += (n - ABYTES) as u64;
                let expected = self.header.plaintext_size();
                if tag == TAG_FINAL && expected.is_some_and(|size| size != self.produced) {
                    return Err(corrupt(format!(
                        "the encrypted stream holds {} bytes but its header says {}",
                        self.produced,
                        expected.unwrap_or_default()
                    )));
                }
            }
            DecryptState::Cbc { .. } => {
                let mut buf = vec![0u8; 64 * 1024];
                let n = self.read_up_to(&mut buf)?;
                let DecryptState::Cbc { cipher, remaining } = &mut self.state else {
                    unreachable!()
                };
                if n % AES_BLOCK != 0 {
                    return Err(corrupt(
                        "the encrypted data is not a whole number of AES blocks (truncated)",
                    ));
                }
                buf.truncate(n);
                for block in buf.chunks_exact_mut(AES_BLOCK) {
                    cipher.decrypt_block_mut(block.into());
                }
                if let Some(left) = remaining {
                    let keep = (*left).min(buf.len() as u64) as usize;
                    buf.truncate(keep);
                    *left -= keep as u64;
                }
                if n == 0 {
                    if matches!(remaining, Some(left) if *left > 0) {
                        return Err(corrupt(
                            "the encrypted data is shorter than its header says (truncated)",
                        ));
                    }
                    self.eof = true;
                }
                self.ready = buf;
            }
        }
        Ok(())
    }
}

impl<R: Read> Read for Decryptor<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.ready.len() {
            if self.eof {
                return Ok(0);
            }
            self.fill()?;
        }
        let n = buf.len().min(self.ready.len() - self.pos);
        buf[..n].copy_from_slice(&self.ready[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(version: u8, data: &[u8]) {
        let mut enc = Encryptor::new(Vec::new(), "pw", version).unwrap();
        for piece in data.chunks(100_000) {
            enc.write_all(piece).unwrap();
        }
        let (mut out, header) = enc.finish().unwrap();
        out[..header.len()].copy_from_slice(&header);
        let mut dec = Decryptor::new(&out[..], "pw").unwrap();
        assert_eq!(dec.header().plaintext_size(), Some(data.len() as u64));
        let mut back = Vec::new();
        dec.read_to_end(&mut back).unwrap();
        assert_eq!(back, data);
    }

    fn gzip_like(n: usize) -> Vec<u8> {
        let mut data = vec![0x1f, 0x8b, 0x08];
        data.extend((0..n).map(|i| (i * 7 % 251) as u8));
        data
    }

    #[test]
    fn v3_and_v2_round_trip_at_chunk_edges() {
        for n in [0, 1, V3_CHUNK - 3, V3_CHUNK, V3_CHUNK + 1, 2 * V3_CHUNK + 5] {
            round_trip(3, &gzip_like(n)[..n.max(3)]);
            round_trip(2, &gzip_like(n)[..n.max(3)]);
        }
    }

    #[test]
    fn wrong_password_and_tampering_are_caught() {
        let mut enc = Encryptor::new(Vec::new(), "pw", 3).unwrap();
        enc.write_all(&gzip_like(3 * V3_CHUNK)).unwrap();
        let (mut out, header) = enc.finish().unwrap();
        out[..header.len()].copy_from_slice(&header);
        assert!(matches!(
            Decryptor::new(&out[..], "nope"),
            Err(CryptoError::IncorrectPassword)
        ));

        let mut flipped = out.clone();
        flipped[200_000] ^= 1;
        let mut back = Vec::new();
        let err = Decryptor::new(&flipped[..], "pw")
            .unwrap()
            .read_to_end(&mut back)
            .unwrap_err();
        assert!(err.to_string().contains("altered"), "{err}");

        let truncated = &out[..out.len() - (V3_CHUNK / 2)];
        let err = Decryptor::new(truncated, "pw")
            .unwrap()
            .read_to_end(&mut back)
            .unwrap_err();
        assert!(
            err.to_string().contains("truncated") || err.to_string().contains("altered"),
            "{err}"
        );

        let mut extended = out.clone();
        extended.push(0);
        let err = Decryptor::new(&extended[..], "pw")
            .unwrap()
            .read_to_end(&mut back)
            .unwrap_err();
        assert!(
            err.to_string().contains("FINAL") || err.to_string().contains("altered"),
            "{err}"
        );

        let mut enc = Encryptor::new(Vec::new(), "pw", 2).unwrap();
        enc.write_all(&gzip_like(1000)).unwrap();
        let (mut out, header) = enc.finish().unwrap();
        out[..header.len()].copy_from_slice(&header);
        assert!(matches!(
            Decryptor::new(&out[..], "nope"),
            Err(CryptoError::IncorrectPassword)
        ));
    }
}
