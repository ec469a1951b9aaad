//! Key derivation for SecureTar: Argon2id + keyed BLAKE2b (v3), iterated SHA-256 (v1/v2).

use argon2::{Algorithm, Argon2, Params, Version};
use blake2::digest::consts::U32;
use blake2::digest::Mac;
use blake2::Blake2bMac;
use sha2::{Digest, Sha256};

const ARGON2_OPSLIMIT: u32 = 8;
const ARGON2_MEMLIMIT_KIB: u32 = 16 * 1024;
const PERSONAL: &[u8] = b"SecureTarv3";

/// The v3 root key: libsodium's `crypto_pwhash` Argon2id (v1.3, t=8, m=16 MiB, p=1, 32 bytes).
/// Deliberately slow (~50 ms): callers run it off the event loop.
pub fn v3_root_key(password: &str, root_salt: &[u8; 16]) -> [u8; 32] {
    let params = match Params::new(ARGON2_MEMLIMIT_KIB, ARGON2_OPSLIMIT, 1, Some(32)) {
        Ok(p) => p,
        Err(_) => unreachable!("constant Argon2 parameters are valid"),
    };
    let mut out = [0u8; 32];
    // Only the output length or the parameters can make this fail, and both are constants.
    let _ = Argon2::new(Algorithm::Argon2id, Version::V0x13, params).hash_password_into(
        password.as_bytes(),
        root_salt,
        &mut out,
    );
    out
}

/// Keyed BLAKE2b-256 of the empty message with `salt` and the personalisation "SecureTarv3", as
/// libsodium's `crypto_generichash_blake2b_salt_personal`.
pub fn v3_subkey(root_key: &[u8; 32], salt: &[u8; 16]) -> [u8; 32] {
    let mac = match Blake2bMac::<U32>::new_with_salt_and_personal(root_key, salt, PERSONAL) {
        Ok(m) => m,
        Err(_) => unreachable!("a 32-byte key, 16-byte salt and 11-byte personal are valid"),
    };
    mac.finalize().into_bytes().into()
}

fn sha256_100(seed: &[u8]) -> [u8; 32] {
    let mut value: [u8; 32] = Sha256::digest(seed).into();
    for _ in 1..100 {
        value = Sha256::digest(value).into();
    }
    value
}

/// v1/v2 AES-128 key: 100 rounds of SHA-256 over the password.
pub fn v2_key(password: &str) -> [u8; 16] {
    let mut key = [0u8; 16];
    key.copy_from_slice(&sha256_100(password.as_bytes())[..16]);
    key
}

/// v1/v2 IV: 100 rounds of SHA-256 over key || salt.
pub fn v2_iv(key: &[u8; 16], salt: &[u8; 16]) -> [u8; 16] {
    let mut seed = [0u8; 32];
    seed[..16].copy_from_slice(key);
    seed[16..].copy_from_slice(salt);
    let mut iv = [0u8; 16];
    iv.copy_from_slice(&sha256_100(&seed)[..16]);
    iv
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn counting<const N: usize>(start: u8) -> [u8; N] {
        let mut a = [0u8; N];
        a.iter_mut()
            .enumerate()
            .for_each(|(i, b)| *b = start + i as u8);
        a
    }

    // Known answers from libsodium via PyNaCl 1.6: argon2id.kdf(32, b"hunter2", bytes(range(16)),
    // opslimit=8, memlimit=16 MiB) and blake2b(b"", key=root, salt=bytes(range(16, 32)),
    // person=b"SecureTarv3").
    #[test]
    fn v3_derivation_matches_libsodium() {
        let root = v3_root_key("hunter2", &counting::<16>(0));
        assert_eq!(
            hex(&root),
            "6a3545d502c9df2134c1f8b608516cb64f4dd620ae2e2ba37c5530c044b6ec02"
        );
        assert_eq!(
            hex(&v3_subkey(&root, &counting::<16>(16))),
            "aa299548c0ad4438ddb9d8a570e46e227515a136a0e13a1445fe788070f6a422"
        );
    }

    #[test]
    fn v2_key_is_iterated_sha256() {
        let mut expected: [u8; 32] = Sha256::digest(b"pw").into();
        for _ in 1..100 {
            expected = Sha256::digest(expected).into();
        }
        assert_eq!(v2_key("pw"), expected[..16]);
    }
}
