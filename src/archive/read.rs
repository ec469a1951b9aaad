//! Finds `backup.json` and the inner Home Assistant archive in a backup's outer tar.

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use super::metadata::{parse_backup_json, BackupInfo};
use super::{ArchiveError, IoContext};

const METADATA_NAMES: &[&str] = &["backup.json", "snapshot.json"];
const MAX_METADATA: u64 = 4 * 1024 * 1024;

/// Where the inner Home Assistant archive sits inside the outer tar.
#[derive(Debug, Clone, Copy)]
pub struct InnerMember {
    pub offset: u64,
    pub size: u64,
    pub gzipped: bool,
}

pub struct OuterListing {
    pub info: BackupInfo,
    pub inner: Option<InnerMember>,
}

fn normalized(name: &[u8]) -> &[u8] {
    name.strip_prefix(b"./").unwrap_or(name)
}

/// Reads the outer tar's headers (seeking over member data) and its backup.json.
pub fn read_outer(path: &Path) -> Result<OuterListing, ArchiveError> {
    let file = File::open(path).at(path)?;
    let size = file.metadata().at(path)?.len();
    let mut archive = tar::Archive::new(BufReader::new(file));
    let entries = archive
        .entries_with_seek()
        .map_err(|e| ArchiveError::invalid(path, format!("not a tar archive: {e}")))?;
    let mut info = None;
    let mut inner = None;
    for entry in entries {
        let mut entry =
            entry.map_err(|e| ArchiveError::invalid(path, format!("corrupt tar archive: {e}")))?;
        let name = entry.path_bytes().into_owned();
        let name = normalized(&name);
        if info.is_none() && METADATA_NAMES.iter().any(|m| name == m.as_bytes()) {
            if entry.size() > MAX_METADATA {
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
            info = Some(parse_backup_json(&bytes, path)?);
        } else if name == b"homeassistant.tar.gz" || name == b"homeassistant.tar" {
            inner = Some(InnerMember {
                offset: entry.raw_file_position(),
                size: entry.size(),
                gzipped: name.ends_with(b".gz"),
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

/// Opens the raw bytes of the inner member (still gzipped or encrypted).
pub fn open_inner(
    path: &Path,
) -> Result<(BackupInfo, InnerMember, impl Read + Send), ArchiveError> {
    let listing = read_outer(path)?;
    let inner = listing
        .inner
        .ok_or_else(|| ArchiveError::invalid(path, "no homeassistant.tar.gz in the backup"))?;
    if listing.info.protected {
        return Err(ArchiveError::unsupported(
            path,
            "the backup is password-protected; this version of habackup cannot decrypt it yet",
        ));
    }
    let mut file = File::open(path).at(path)?;
    file.seek(SeekFrom::Start(inner.offset)).at(path)?;
    Ok((
        listing.info,
        inner,
        BufReader::with_capacity(1024 * 1024, file).take(inner.size),
    ))
}
