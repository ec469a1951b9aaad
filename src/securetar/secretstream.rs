//! libsodium's `crypto_secretstream_xchacha20poly1305`, built on the RustCrypto ChaCha20 and
//! Poly1305 primitives and checked against libsodium's output (see the tests).

use chacha20::cipher::{KeyIvInit, StreamCipher, StreamCipherSeek};
use chacha20::ChaCha20;
use poly1305::universal_hash::{KeyInit, UniversalHash};
use poly1305::Poly1305;
use subtle::ConstantTimeEq;

pub const KEYBYTES: usize = 32;
pub const HEADERBYTES: usize = 24;
/// Bytes a chunk grows by: the encrypted tag byte and the 16-byte MAC.
pub const ABYTES: usize = 17;
pub const TAG_MESSAGE: u8 = 0;
pub const TAG_FINAL: u8 = 3;
const TAG_REKEY: u8 = 2;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum StreamError {
    #[error("a chunk is shorter than its authentication overhead")]
    Truncated,
    #[error("a chunk failed authentication (wrong key, or the data was altered)")]
    Forged,
}

pub struct State {
    key: [u8; 32],
    /// 4-byte little-endian counter followed by the 8-byte inner nonce, as libsodium lays it out.
    nonce: [u8; 12],
}

fn hchacha20(key: &[u8; 32], input: &[u8; 16]) -> [u8; 32] {
    let out = chacha20::hchacha::<chacha20::cipher::consts::U10>(key.into(), input.into());
    out.into()
}

impl State {
    /// The state for both directions; the header is random for a new stream, read for an old one.
    pub fn new(key: &[u8; KEYBYTES], header: &[u8; HEADERBYTES]) -> Self {
        let mut sub_input = [0u8; 16];
        sub_input.copy_from_slice(&header[..16]);
        let mut nonce = [0u8; 12];
        nonce[0] = 1;
        nonce[4..].copy_from_slice(&header[16..]);
        State {
            key: hchacha20(key, &sub_input),
            nonce,
        }
    }

    fn cipher(&self, block_counter: u64) -> ChaCha20 {
        let mut cipher = ChaCha20::new((&self.key).into(), (&self.nonce).into());
        cipher.seek(block_counter * 64);
        cipher
    }

    fn mac(&self, first_block: &[u8; 64], ciphertext: &[u8]) -> [u8; 16] {
        let mut poly_key = [0u8; 32];
        self.cipher(0).apply_keystream(&mut poly_key);
        let mut poly = Poly1305::new((&poly_key).into());
        // The aligned prefix goes straight in; only the short tail is copied.
        let whole = ciphertext.len() / 16 * 16;
        poly.update_padded(first_block);
        poly.update_padded(&ciphertext[..whole]);
        // libsodium pads the message by `mlen % 16` bytes (not to the next multiple of 16): a quirk
        // the format keeps for compatibility.
        let rest = &ciphertext[whole..];
        let mut tail = [0u8; 48];
        tail[..rest.len()].copy_from_slice(rest);
        let mut at = 2 * rest.len();
        tail[at..at + 8].copy_from_slice(&0u64.to_le_bytes());
        at += 8;
        tail[at..at + 8].copy_from_slice(&(64 + ciphertext.len() as u64).to_le_bytes());
        at += 8;
        poly.compute_unpadded(&tail[..at]).into()
    }

    fn advance(&mut self, mac: &[u8; 16], tag: u8) {
        for (n, m) in self.nonce[4..].iter_mut().zip(mac) {
            *n ^= m;
        }
        let counter =
            u32::from_le_bytes([self.nonce[0], self.nonce[1], self.nonce[2], self.nonce[3]])
                .wrapping_add(1);
        self.nonce[..4].copy_from_slice(&counter.to_le_bytes());
        if tag & TAG_REKEY != 0 || counter == 0 {
            self.rekey();
        }
    }

    fn rekey(&mut self) {
        let mut material = [0u8; 40];
        material[..32].copy_from_slice(&self.key);
        material[32..].copy_from_slice(&self.nonce[4..]);
        self.cipher(0).apply_keystream(&mut material);
        self.key.copy_from_slice(&material[..32]);
        self.nonce[4..].copy_from_slice(&material[32..]);
        self.nonce[..4].copy_from_slice(&1u32.to_le_bytes());
    }

    /// Encrypts one chunk, appending `message.len() + ABYTES` bytes to `out`.
    pub fn push(&mut self, message: &[u8], tag: u8, out: &mut Vec<u8>) {
        let mut block = [0u8; 64];
        block[0] = tag;
        self.cipher(1).apply_keystream(&mut block);
        let start = out.len();
        out.push(block[0]);
        out.extend_from_slice(message);
        self.cipher(2).apply_keystream(&mut out[start + 1..]);
        let mac = self.mac(&block, &out[start + 1..]);
        out.extend_from_slice(&mac);
        self.advance(&mac, tag);
    }

    /// Decrypts one chunk in place (the result is `chunk[1..len - 16]`) and returns its tag.
    pub fn pull(&mut self, chunk: &mut [u8]) -> Result<u8, StreamError> {
        if chunk.len() < ABYTES {
            return Err(StreamError::Truncated);
        }
        let mut block = [0u8; 64];
        block[0] = chunk[0];
        self.cipher(1).apply_keystream(&mut block);
        let tag = block[0];
        block[0] = chunk[0];
        let body_end = chunk.len() - 16;
        let mut stored = [0u8; 16];
        stored.copy_from_slice(&chunk[body_end..]);
        let mac = self.mac(&block, &chunk[1..body_end]);
        if !bool::from(mac.ct_eq(&stored)) {
            return Err(StreamError::Forged);
        }
        self.cipher(2).apply_keystream(&mut chunk[1..body_end]);
        self.advance(&mac, tag);
        Ok(tag)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn fixture() -> ([u8; 32], [u8; 24]) {
        let mut key = [0u8; 32];
        let mut header = [0u8; 24];
        key.iter_mut().enumerate().for_each(|(i, b)| *b = i as u8);
        header
            .iter_mut()
            .enumerate()
            .for_each(|(i, b)| *b = 100 + i as u8);
        (key, header)
    }

    // Known answers from libsodium (PyNaCl 1.6): init_pull(header = 100..124, key = 0..32), then
    // push "hello" MESSAGE, "" MESSAGE, bytes(range(200)) FINAL.
    const C1: &str = "5f347fda2a012fa7ba45a05145cb4da4f081ec364c50";
    const C2: &str = "457313090a25c41d047228929c9adfdead";
    const C3_PREFIX: &str = "e1520464d3ad0893207031819f8338bc4d94577c33ac0a866a5bc173749a9eda";
    const C3_SUFFIX: &str = "9e15ee9d31491bdad8298ec6a9aabcd211cbaf9ccb41687e19e025fe8353f3220d4379e9244787f1556da3c3983e470256706b84c9d956785ee4b95e0c54f1d4409cf7bf989ac51a1301a594a53f3936d24912cfe39c62ef4061ee26a680a31e7faa1932071d25c7";

    #[test]
    fn push_matches_libsodium() {
        let (key, header) = fixture();
        let mut state = State::new(&key, &header);
        let mut out = Vec::new();
        state.push(b"hello", TAG_MESSAGE, &mut out);
        assert_eq!(out, unhex(C1));
        out.clear();
        state.push(b"", TAG_MESSAGE, &mut out);
        assert_eq!(out, unhex(C2));
        out.clear();
        let long: Vec<u8> = (0..200u8).collect();
        state.push(&long, TAG_FINAL, &mut out);
        assert_eq!(out.len(), 200 + ABYTES);
        assert!(out.starts_with(&unhex(C3_PREFIX)));
        assert!(out.ends_with(&unhex(C3_SUFFIX)));
    }

    #[test]
    fn pull_reverses_push_and_detects_tampering() {
        let (key, header) = fixture();
        let mut pull = State::new(&key, &header);
        let mut c1 = unhex(C1);
        assert_eq!(pull.pull(&mut c1), Ok(TAG_MESSAGE));
        assert_eq!(&c1[1..c1.len() - 16], b"hello");
        let mut c2 = unhex(C2);
        c2[3] ^= 1;
        assert_eq!(pull.pull(&mut c2), Err(StreamError::Forged));
        assert_eq!(pull.pull(&mut [0u8; 5]), Err(StreamError::Truncated));
    }

    #[test]
    fn rekey_keeps_both_sides_in_step() {
        let (key, header) = fixture();
        let mut push = State::new(&key, &header);
        let mut pull = State::new(&key, &header);
        for i in 0..3u8 {
            let mut out = Vec::new();
            push.push(&[i; 33], TAG_REKEY, &mut out);
            assert_eq!(pull.pull(&mut out), Ok(TAG_REKEY));
            assert_eq!(&out[1..out.len() - 16], &[i; 33]);
        }
    }
}
