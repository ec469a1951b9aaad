//! SecureTar, Home Assistant's encryption of the inner archive (v1 and v2: AES-128-CBC; v3:
//! Argon2id, BLAKE2b and libsodium's XChaCha20-Poly1305 secretstream), in pure Rust.

pub mod header;
pub mod kdf;
pub mod secretstream;
pub mod stream;

pub use header::Header;
pub use stream::{CryptoError, Decryptor, Encryptor, V3_CHUNK};
