//! Full verification: decrypt, decompress and walk every byte of a backup.

use std::io;
use std::path::Path;

use super::extract::InnerStream;
use super::read::{open_inner, securetar_version};
use super::{ArchiveError, CancelToken};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifyReport {
    pub members: u64,
    /// Bytes of file data in the inner archive.
    pub bytes: u64,
    pub protected: bool,
    pub securetar_version: Option<u8>,
}

/// Checks everything a restore would rely on: the SecureTar MACs, FINAL tag and plaintext size
/// (v3) or length (v2), the gzip CRC and length, and the tar structure. Writes nothing.
pub fn verify_archive(
    path: &Path,
    password: Option<&str>,
    cancel: &CancelToken,
) -> Result<VerifyReport, ArchiveError> {
    let version = securetar_version(path)?;
    let (info, inner, raw) = open_inner(path, password)?;
    let bad =
        |e: io::Error| ArchiveError::invalid(path, format!("corrupt Home Assistant archive: {e}"));
    let mut stream = InnerStream::new(raw, inner.gzipped);
    let mut report = VerifyReport {
        members: 0,
        bytes: 0,
        protected: info.protected,
        securetar_version: version,
    };
    {
        let mut archive = tar::Archive::new(&mut stream);
        for entry in archive.entries().map_err(bad)? {
            cancel.check()?;
            let mut entry = entry.map_err(bad)?;
            report.members += 1;
            report.bytes += io::copy(&mut entry, &mut io::sink()).map_err(bad)?;
        }
    }
    // securetar v1 padded each write, the gzip trailer's included, and Home Assistant never reads
    // it: there the tar structure is the check.
    if inner.securetar_version != Some(1) {
        // What follows the tar's end marker still has to pass the gzip CRC, then the
        // secretstream's FINAL check and its size.
        io::copy(&mut stream, &mut io::sink()).map_err(bad)?;
        stream.finish().map_err(bad)?;
    }
    Ok(report)
}
