//! The SecureTar header in front of an encrypted inner archive.

use std::io::Read;

pub const MAGIC: &[u8; 9] = b"SecureTar";
pub const V2_HEADER_LEN: usize = 48;
pub const V3_HEADER_LEN: usize = 136;
pub const V3_CIPHER_INIT_LEN: usize = 104;
/// Offset of the big-endian plaintext size, patched once the stream has ended.
pub const PLAINTEXT_SIZE_AT: usize = 16;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Header {
    /// Magic-less legacy format: a 16-byte salt and nothing else.
    V1 {
        salt: [u8; 16],
    },
    V2 {
        plaintext_size: u64,
        salt: [u8; 16],
    },
    V3 {
        plaintext_size: u64,
        init: V3Init,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V3Init {
    pub root_salt: [u8; 16],
    pub validation_salt: [u8; 16],
    pub validation_key: [u8; 32],
    pub derivation_salt: [u8; 16],
    pub stream_header: [u8; 24],
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HeaderError {
    #[error("the encrypted archive is shorter than its SecureTar header")]
    Truncated,
    #[error("unsupported SecureTar version {0}")]
    Version(u8),
    #[error("the SecureTar header's reserved bytes are not zero")]
    Reserved,
}

fn take<const N: usize>(bytes: &[u8], at: usize) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(&bytes[at..at + N]);
    out
}

impl Header {
    pub fn version(&self) -> u8 {
        match self {
            Header::V1 { .. } => 1,
            Header::V2 { .. } => 2,
            Header::V3 { .. } => 3,
        }
    }

    pub fn plaintext_size(&self) -> Option<u64> {
        match self {
            Header::V1 { .. } => None,
            Header::V2 { plaintext_size, .. } | Header::V3 { plaintext_size, .. } => {
                Some(*plaintext_size)
            }
        }
    }

    /// Reads the header from the start of the inner member.
    pub fn read(source: &mut impl Read) -> Result<Header, HeaderError> {
        let mut id = [0u8; 16];
        source
            .read_exact(&mut id)
            .map_err(|_| HeaderError::Truncated)?;
        if &id[..9] != MAGIC {
            return Ok(Header::V1 { salt: id });
        }
        let version = id[9];
        if id[10..16] != [0u8; 6] {
            return Err(HeaderError::Reserved);
        }
        let rest_len = match version {
            2 => V2_HEADER_LEN - 16,
            3 => V3_HEADER_LEN - 16,
            v => return Err(HeaderError::Version(v)),
        };
        let mut rest = vec![0u8; rest_len];
        source
            .read_exact(&mut rest)
            .map_err(|_| HeaderError::Truncated)?;
        let plaintext_size = u64::from_be_bytes(take::<8>(&rest, 0));
        if version == 2 {
            return Ok(Header::V2 {
                plaintext_size,
                salt: take::<16>(&rest, 16),
            });
        }
        Ok(Header::V3 {
            plaintext_size,
            init: V3Init {
                root_salt: take::<16>(&rest, 16),
                validation_salt: take::<16>(&rest, 32),
                validation_key: take::<32>(&rest, 48),
                derivation_salt: take::<16>(&rest, 80),
                stream_header: take::<24>(&rest, 96),
            },
        })
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(V3_HEADER_LEN);
        match self {
            Header::V1 { salt } => out.extend_from_slice(salt),
            Header::V2 {
                plaintext_size,
                salt,
            } => {
                out.extend_from_slice(MAGIC);
                out.push(2);
                out.extend_from_slice(&[0u8; 6]);
                out.extend_from_slice(&plaintext_size.to_be_bytes());
                out.extend_from_slice(&[0u8; 8]);
                out.extend_from_slice(salt);
            }
            Header::V3 {
                plaintext_size,
                init,
            } => {
                out.extend_from_slice(MAGIC);
                out.push(3);
                out.extend_from_slice(&[0u8; 6]);
                out.extend_from_slice(&plaintext_size.to_be_bytes());
                out.extend_from_slice(&[0u8; 8]);
                out.extend_from_slice(&init.root_salt);
                out.extend_from_slice(&init.validation_salt);
                out.extend_from_slice(&init.validation_key);
                out.extend_from_slice(&init.derivation_salt);
                out.extend_from_slice(&init.stream_header);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_sizes() {
        let v3 = Header::V3 {
            plaintext_size: 0x0102_0304,
            init: V3Init {
                root_salt: [1; 16],
                validation_salt: [2; 16],
                validation_key: [3; 32],
                derivation_salt: [4; 16],
                stream_header: [5; 24],
            },
        };
        let bytes = v3.to_bytes();
        assert_eq!(bytes.len(), V3_HEADER_LEN);
        assert_eq!(
            &bytes[PLAINTEXT_SIZE_AT..PLAINTEXT_SIZE_AT + 8],
            &0x0102_0304u64.to_be_bytes()
        );
        assert_eq!(Header::read(&mut &bytes[..]).unwrap(), v3);
        let v2 = Header::V2 {
            plaintext_size: 7,
            salt: [9; 16],
        };
        assert_eq!(v2.to_bytes().len(), V2_HEADER_LEN);
        assert_eq!(Header::read(&mut &v2.to_bytes()[..]).unwrap(), v2);
        assert_eq!(
            Header::read(&mut &[7u8; 16][..]).unwrap(),
            Header::V1 { salt: [7; 16] }
        );
        assert_eq!(
            Header::read(&mut &bytes[..100]),
            Err(HeaderError::Truncated)
        );
        let mut bad = bytes.clone();
        bad[9] = 4;
        assert_eq!(Header::read(&mut &bad[..]), Err(HeaderError::Version(4)));
    }
}
