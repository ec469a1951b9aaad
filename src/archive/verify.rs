//! Full verification: decrypt, decompress and walk every byte of a backup, from a local file or
//! from a stream of its bytes (a stored object, never written to disk).

use std::io::{self, Read};
use std::path::Path;

use super::extract::InnerStream;
use super::read::{
    decrypt, is_metadata, metadata_of_entry, normalized, open_inner, securetar_version,
};
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
    verify_inner(path, info.protected, inner.gzipped, version, raw, cancel)
}

/// [`verify_archive`] for a backup read front to back from `reader` (`shown` names it in
/// errors): the outer tar is walked as it streams, the inner archive decoded as it passes.
pub fn verify_stream<R: Read>(
    reader: R,
    shown: &Path,
    password: Option<&str>,
    cancel: &CancelToken,
) -> Result<VerifyReport, ArchiveError> {
    let bad = |e: io::Error| ArchiveError::invalid(shown, format!("corrupt tar archive: {e}"));
    let mut archive = tar::Archive::new(reader);
    let mut info = None;
    let mut report = None;
    for entry in archive.entries().map_err(bad)? {
        cancel.check()?;
        let mut entry = entry.map_err(bad)?;
        let name = entry.path_bytes().into_owned();
        let name = normalized(&name);
        if info.is_none() && is_metadata(name) {
            info = Some(metadata_of_entry(&mut entry, shown)?);
        } else if report.is_none()
            && (name == b"homeassistant.tar.gz" || name == b"homeassistant.tar")
        {
            let protected = info
                .as_ref()
                .ok_or_else(|| {
                    ArchiveError::invalid(shown, "backup.json does not come before the archive")
                })?
                .protected;
            let gzipped = name.ends_with(b".gz");
            report = Some(if protected {
                let decryptor = decrypt(&mut entry, password, shown)?;
                let version = Some(decryptor.header().version());
                verify_inner(shown, true, gzipped, version, decryptor, cancel)?
            } else {
                verify_inner(shown, false, gzipped, None, &mut entry, cancel)?
            });
        }
    }
    if info.is_none() {
        return Err(ArchiveError::invalid(
            shown,
            "no backup.json in the archive",
        ));
    }
    report.ok_or_else(|| ArchiveError::invalid(shown, "no homeassistant.tar.gz in the backup"))
}

/// Decodes the inner archive `raw` (decrypted already when protected) to its very end.
fn verify_inner<R: Read>(
    path: &Path,
    protected: bool,
    gzipped: bool,
    securetar_version: Option<u8>,
    raw: R,
    cancel: &CancelToken,
) -> Result<VerifyReport, ArchiveError> {
    let bad =
        |e: io::Error| ArchiveError::invalid(path, format!("corrupt Home Assistant archive: {e}"));
    let mut stream = InnerStream::new(raw, gzipped);
    let mut report = VerifyReport {
        members: 0,
        bytes: 0,
        protected,
        securetar_version,
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
    if securetar_version != Some(1) {
        // What follows the tar's end marker still has to pass the gzip CRC, then the
        // secretstream's FINAL check and its size.
        io::copy(&mut stream, &mut io::sink()).map_err(bad)?;
        stream.finish().map_err(bad)?;
    }
    Ok(report)
}
