//! Full verification: decrypt, decompress and walk every byte of a backup.

use std::io::{self, Read};
use std::path::Path;

use flate2::read::GzDecoder;

use super::read::{open_inner, securetar_version};
use super::{ArchiveError, CancelFlag};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifyReport {
    pub members: u64,
    /// Bytes of file data in the inner archive.
    pub bytes: u64,
    pub protected: bool,
    pub securetar_version: Option<u8>,
}

/// Checks everything a restore would rely on: the SecureTar MACs and FINAL tag (or the AES
/// padding), the gzip CRC and length, and the tar structure. Writes nothing.
pub fn verify_archive(
    path: &Path,
    password: Option<&str>,
    cancel: &CancelFlag,
) -> Result<VerifyReport, ArchiveError> {
    let version = securetar_version(path)?;
    let (info, inner, raw) = open_inner(path, password)?;
    let bad =
        |e: io::Error| ArchiveError::invalid(path, format!("corrupt Home Assistant archive: {e}"));
    let mut stream: Box<dyn Read> = if inner.gzipped {
        Box::new(GzDecoder::new(raw))
    } else {
        Box::new(raw)
    };
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
    // What follows the tar's end marker still has to pass the gzip CRC and the secretstream's
    // FINAL check.
    io::copy(&mut stream, &mut io::sink()).map_err(bad)?;
    Ok(report)
}
