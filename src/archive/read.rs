//! Finds `backup.json` and the inner Home Assistant archive in a backup's outer tar.

use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use super::metadata::{parse_backup_json, BackupInfo};
use super::tar_reader::{TarError, TarReader};
use super::{ArchiveError, IoContext};
use crate::common::text::io_text;
use crate::securetar::{CryptoError, Decryptor};

const METADATA_NAMES: &[&str] = &["backup.json", "snapshot.json"];
/// The largest backup.json read; real ones are a few hundred bytes.
pub const MAX_METADATA: u64 = 4 * 1024 * 1024;
/// Members that may precede backup.json (PAX headers, a leading directory entry) before a
/// reader of the first bytes gives up looking for it.
const MEMBERS_BEFORE_METADATA: usize = 4;

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

pub(crate) fn normalized(name: &[u8]) -> &[u8] {
    name.strip_prefix(b"./").unwrap_or(name)
}

pub(crate) fn is_metadata(name: &[u8]) -> bool {
    METADATA_NAMES.iter().any(|m| name == m.as_bytes())
}

/// Marks an error from reading the backup file itself (a bad disk, a vanished mount): an I/O
/// failure to report as such, never as a corrupt backup.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct SourceReadError(io::Error);

/// The backup file, with its read errors marked as `SourceReadError`.
struct SourceFile(File);

impl Read for SourceFile {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf).map_err(|e| match e.kind() {
            io::ErrorKind::Interrupted => e,
            kind => io::Error::new(kind, SourceReadError(e)),
        })
    }
}

impl Seek for SourceFile {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.0.seek(pos)
    }
}

/// Opens the backup file; a directory or other non-file is said to be one.
fn open_backup(path: &Path) -> Result<(SourceFile, u64), ArchiveError> {
    let file = File::open(path).at(path)?;
    let meta = file.metadata().at(path)?;
    if !meta.is_file() {
        let what = if meta.is_dir() {
            "a directory"
        } else {
            "not a regular file"
        };
        return Err(ArchiveError::io(
            path,
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("is {what}, not a backup file"),
            ),
        ));
    }
    Ok((SourceFile(file), meta.len()))
}

/// What a failed read of the backup's (decrypted, decompressed) stream means: the backup file
/// could not be read, or its content is corrupt or cut short.
pub fn stream_error(path: &Path, e: io::Error) -> ArchiveError {
    if e.get_ref()
        .is_some_and(|inner| inner.is::<SourceReadError>())
    {
        return ArchiveError::io(path, e);
    }
    ArchiveError::invalid(
        path,
        format!(
            "corrupt or truncated Home Assistant archive: {}",
            io_text(&e)
        ),
    )
}

/// A tar reader's failure on the backup at `path`.
pub fn tar_error(path: &Path, e: TarError) -> ArchiveError {
    match e {
        TarError::Read(e) => stream_error(path, e),
        TarError::Invalid(reason) => ArchiveError::invalid(
            path,
            format!("corrupt or truncated Home Assistant archive: {reason}"),
        ),
    }
}

/// Reads the outer tar's headers (seeking over member data) and its backup.json.
pub fn read_outer(path: &Path) -> Result<OuterListing, ArchiveError> {
    let (file, size) = open_backup(path)?;
    if size == 0 {
        return Err(ArchiveError::invalid(
            path,
            "the file is empty, not a backup",
        ));
    }
    let mut reader = TarReader::seekable(BufReader::new(file));
    let mut info = None;
    let mut inner = None;
    let mut members = 0u64;
    loop {
        let member = match reader.next_member() {
            Ok(Some(member)) => member,
            Ok(None) => break,
            Err(TarError::Invalid(reason)) if reason.starts_with("truncated") => {
                return Err(ArchiveError::invalid(
                    path,
                    "the file is truncated: it ends inside a tar header",
                ))
            }
            Err(TarError::Invalid(reason)) if members == 0 => {
                return Err(ArchiveError::invalid(
                    path,
                    format!("not a Home Assistant backup, not even a tar archive: {reason}"),
                ))
            }
            Err(TarError::Invalid(reason)) => {
                return Err(ArchiveError::invalid(
                    path,
                    format!("corrupt tar archive: {reason}"),
                ))
            }
            Err(TarError::Read(e)) => return Err(outer_read_error(path, e)),
        };
        members += 1;
        let name = normalized(&member.name);
        if info.is_none() && is_metadata(name) {
            info = Some(metadata_of_member(&mut reader, member.size, path)?);
        } else if name == b"homeassistant.tar.gz" || name == b"homeassistant.tar" {
            inner = Some(InnerMember {
                offset: member.data_offset,
                size: member.size,
                gzipped: name.ends_with(b".gz"),
                securetar_version: None,
            });
        }
    }
    let mut info =
        info.ok_or_else(|| ArchiveError::invalid(path, "no backup.json in the archive"))?;
    if let Some(inner) = inner {
        if inner
            .offset
            .checked_add(inner.size)
            .is_none_or(|end| end > size)
        {
            return Err(ArchiveError::invalid(
                path,
                "the file is truncated: the Home Assistant archive runs past its end",
            ));
        }
    }
    info.size = size;
    info.path = Some(path.to_path_buf());
    Ok(OuterListing { info, inner })
}

pub(crate) fn outer_read_error(path: &Path, e: io::Error) -> ArchiveError {
    match e.kind() {
        io::ErrorKind::UnexpectedEof => {
            ArchiveError::invalid(path, "the file is truncated: it ends inside a member")
        }
        _ => stream_error(path, e),
    }
}

/// Reads the current member, backup.json, refusing an implausible or cut one.
pub(crate) fn metadata_of_member<R: Read>(
    reader: &mut TarReader<R>,
    size: u64,
    path: &Path,
) -> Result<BackupInfo, ArchiveError> {
    if size > MAX_METADATA {
        return Err(ArchiveError::invalid(
            path,
            "backup.json is implausibly large",
        ));
    }
    let mut bytes = Vec::new();
    reader
        .data()
        .read_to_end(&mut bytes)
        .map_err(|e| match e.kind() {
            io::ErrorKind::UnexpectedEof => {
                ArchiveError::invalid(path, "the file is truncated: it ends inside backup.json")
            }
            _ => outer_read_error(path, e),
        })?;
    parse_backup_json(&bytes, path)
}

/// backup.json from the first bytes of a backup's outer tar: a local file's reader, or the
/// first bytes of a stored object (`path` names it in errors). backup.json is the first member
/// of every Home Assistant and Supervisor backup, so nothing past it is read.
pub fn read_backup_json<R: Read>(reader: R, path: &Path) -> Result<BackupInfo, ArchiveError> {
    let mut reader = TarReader::new(reader);
    for _ in 0..MEMBERS_BEFORE_METADATA {
        let member = match reader.next_member() {
            Ok(Some(member)) => member,
            Ok(None) => break,
            Err(TarError::Invalid(reason)) => {
                return Err(ArchiveError::invalid(
                    path,
                    format!("not a Home Assistant backup: {reason}"),
                ))
            }
            Err(TarError::Read(e)) => return Err(outer_read_error(path, e)),
        };
        if is_metadata(normalized(&member.name)) {
            return metadata_of_member(&mut reader, member.size, path);
        }
    }
    Err(ArchiveError::invalid(
        path,
        "no backup.json at the start of the archive",
    ))
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
    let (mut file, _) = open_backup(path)?;
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

/// Whether `password` opens the backup: cheap, only the key check (an unprotected backup opens
/// with any password).
pub fn validate_password(path: &Path, password: &str) -> Result<bool, ArchiveError> {
    match open_inner(path, Some(password)) {
        Ok(_) => Ok(true),
        Err(ArchiveError::IncorrectPassword { .. }) => Ok(false),
        Err(e) => Err(e),
    }
}
