//! Finds `backup.json` and the inner Home Assistant archive in a backup's outer tar.

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use super::metadata::{parse_backup_json, BackupInfo};
use super::{ArchiveError, IoContext};
use crate::securetar::{CryptoError, Decryptor, Header};

const METADATA_NAMES: &[&str] = &["backup.json", "snapshot.json"];
/// The largest backup.json read; real ones are a few hundred bytes.
pub const MAX_METADATA: u64 = 4 * 1024 * 1024;

/// Where the inner Home Assistant archive sits inside the outer tar.
#[derive(Debug, Clone, Copy)]
pub struct InnerMember {
    pub offset: u64,
    pub size: u64,
    pub gzipped: bool,
    /// Set once a protected member's SecureTar header has been read.
    pub securetar_version: Option<u8>,
}

pub struct OuterListing {
    pub info: BackupInfo,
    pub inner: Option<InnerMember>,
}

/// What is wrong with a damaged outer tar, in words: the tar crate's messages quote the header's
/// raw bytes after a colon ("numeric field did not have utf-8 text: <garbage> when getting cksum
/// for <garbage>"), and call a file cut inside a header "failed to read entire block".
fn tar_damage(err: &std::io::Error) -> String {
    let text = err.to_string();
    if text == "failed to read entire block" {
        return "the file is truncated: it ends inside a tar header".into();
    }
    match text.split_once(": ") {
        Some((what, _)) => format!("corrupt tar archive: {what}"),
        None => format!("corrupt tar archive: {text}"),
    }
}

pub(crate) fn normalized(name: &[u8]) -> &[u8] {
    name.strip_prefix(b"./").unwrap_or(name)
}

/// Reads backup.json out of a member of the outer tar, refusing an implausible or cut one.
pub(crate) fn metadata_of_entry<R: Read>(
    entry: &mut tar::Entry<'_, R>,
    path: &Path,
) -> Result<BackupInfo, ArchiveError> {
    let size = entry.size();
    if size > MAX_METADATA {
        return Err(ArchiveError::invalid(
            path,
            "backup.json is implausibly large",
        ));
    }
    let mut bytes = Vec::new();
    entry
        .by_ref()
        .take(MAX_METADATA)
        .read_to_end(&mut bytes)
        .map_err(|e| ArchiveError::invalid(path, format!("truncated backup.json: {e}")))?;
    if (bytes.len() as u64) < size {
        return Err(ArchiveError::invalid(
            path,
            "the file is truncated: it ends inside backup.json",
        ));
    }
    parse_backup_json(&bytes, path)
}

pub(crate) fn is_metadata(name: &[u8]) -> bool {
    METADATA_NAMES.iter().any(|m| name == m.as_bytes())
}

/// Members that may precede backup.json (PAX headers, a leading directory entry) before we
/// give up looking for it in a stream.
const MEMBERS_BEFORE_METADATA: usize = 4;

/// backup.json from the first bytes of a backup's outer tar: a local file's reader, or the
/// first bytes of a stored object (`path` names it in errors). backup.json is the first member
/// of every Home Assistant and Supervisor backup, so nothing past it is read.
pub fn read_backup_json<R: Read>(reader: R, path: &Path) -> Result<BackupInfo, ArchiveError> {
    let mut archive = tar::Archive::new(reader);
    let entries = archive
        .entries()
        .map_err(|e| ArchiveError::invalid(path, format!("not a tar archive: {e}")))?;
    for entry in entries.take(MEMBERS_BEFORE_METADATA) {
        let mut entry = entry.map_err(|e| ArchiveError::invalid(path, tar_damage(&e)))?;
        let name = entry.path_bytes().into_owned();
        if is_metadata(normalized(&name)) {
            return metadata_of_entry(&mut entry, path);
        }
    }
    Err(ArchiveError::invalid(
        path,
        "no backup.json at the start of the archive",
    ))
}

/// Reads the outer tar's headers (seeking over member data) and its backup.json.
pub fn read_outer(path: &Path) -> Result<OuterListing, ArchiveError> {
    let file = File::open(path).at(path)?;
    let meta = file.metadata().at(path)?;
    // Opening a directory succeeds; reading it would fail as a "corrupt tar archive".
    if meta.is_dir() {
        return Err(ArchiveError::failed(
            path,
            "is a directory, not a backup file",
        ));
    }
    let size = meta.len();
    if size == 0 {
        return Err(ArchiveError::invalid(
            path,
            "the file is empty, not a backup",
        ));
    }
    let mut archive = tar::Archive::new(BufReader::new(file));
    let entries = archive
        .entries_with_seek()
        .map_err(|e| ArchiveError::invalid(path, format!("not a tar archive: {e}")))?;
    let mut info = None;
    let mut inner = None;
    for entry in entries {
        let mut entry = entry.map_err(|e| ArchiveError::invalid(path, tar_damage(&e)))?;
        let name = entry.path_bytes().into_owned();
        let name = normalized(&name);
        if info.is_none() && is_metadata(name) {
            info = Some(metadata_of_entry(&mut entry, path)?);
        } else if name == b"homeassistant.tar.gz" || name == b"homeassistant.tar" {
            inner = Some(InnerMember {
                offset: entry.raw_file_position(),
                size: entry.size(),
                gzipped: name.ends_with(b".gz"),
                securetar_version: None,
            });
        }
    }
    let mut info =
        info.ok_or_else(|| ArchiveError::invalid(path, "no backup.json in the archive"))?;
    if let Some(inner) = inner {
        if inner.offset + inner.size > size {
            return Err(ArchiveError::invalid(
                path,
                "truncated: the Home Assistant archive runs past the end of the file",
            ));
        }
    }
    info.size = size;
    info.path = Some(path.to_path_buf());
    Ok(OuterListing { info, inner })
}

pub fn read_backup(path: &Path) -> Result<BackupInfo, ArchiveError> {
    Ok(read_outer(path)?.info)
}

/// A backup's backup.json, where its inner archive is, and that archive's bytes (decrypted).
pub type Opened = (BackupInfo, InnerMember, Box<dyn Read + Send>);

/// Opens the inner member, decrypted when the backup is protected: the stream a gzip (or tar)
/// reader can consume. Checks the password before anything else happens.
pub fn open_inner(path: &Path, password: Option<&str>) -> Result<Opened, ArchiveError> {
    let listing = read_outer(path)?;
    let mut inner = listing
        .inner
        .ok_or_else(|| ArchiveError::invalid(path, "no homeassistant.tar.gz in the backup"))?;
    let mut file = File::open(path).at(path)?;
    file.seek(SeekFrom::Start(inner.offset)).at(path)?;
    let raw = BufReader::with_capacity(1024 * 1024, file).take(inner.size);
    if !listing.info.protected {
        return Ok((listing.info, inner, Box::new(raw)));
    }
    let decryptor = decrypt(raw, password, path)?;
    inner.securetar_version = Some(decryptor.header().version());
    Ok((listing.info, inner, Box::new(decryptor)))
}

/// A protected backup's inner archive, decrypted; the password is checked first.
pub(crate) fn decrypt<R: Read>(
    raw: R,
    password: Option<&str>,
    path: &Path,
) -> Result<Decryptor<R>, ArchiveError> {
    let Some(password) = password else {
        return Err(ArchiveError::IncorrectPassword {
            path: path.to_path_buf(),
            reason: "the backup is password-protected and no password was given".into(),
        });
    };
    Decryptor::new(raw, password).map_err(|e| match e {
        CryptoError::IncorrectPassword => ArchiveError::IncorrectPassword {
            path: path.to_path_buf(),
            reason: "the password is incorrect".into(),
        },
        CryptoError::Header(e) => ArchiveError::invalid(path, e.to_string()),
        CryptoError::Corrupt(e) => ArchiveError::invalid(path, e),
    })
}

/// The SecureTar version of a protected backup's inner archive, read from its header.
pub fn securetar_version(path: &Path) -> Result<Option<u8>, ArchiveError> {
    let listing = read_outer(path)?;
    let Some(inner) = listing.inner.filter(|_| listing.info.protected) else {
        return Ok(None);
    };
    let mut file = File::open(path).at(path)?;
    file.seek(SeekFrom::Start(inner.offset)).at(path)?;
    let header = Header::read(&mut file.take(inner.size))
        .map_err(|e| ArchiveError::invalid(path, e.to_string()))?;
    Ok(Some(header.version()))
}

/// Whether `password` opens the backup: cheap, only the key check (an unprotected backup opens
/// with any password).
pub fn validate_password(path: &Path, password: &str) -> Result<bool, ArchiveError> {
    match open_inner(path, Some(password)) {
        Ok(_) => Ok(true),
        Err(ArchiveError::IncorrectPassword { .. }) => Ok(false),
        Err(e) => Err(e),
    }
}
