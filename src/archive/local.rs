//! Backups in a local folder (the manager's backup dir, `habackup list DIR`), and the check a
//! downloaded file passes before it takes its place there.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

use super::{read_backup, ArchiveError, BackupInfo, CancelToken, IoContext};
use crate::common::atomic::is_temp_name;
use crate::common::digest::sha256_hex;

/// A folder's readable backups, oldest first, and the `*.tar` files that are not backups.
#[derive(Debug, Default)]
pub struct LocalListing {
    pub backups: Vec<BackupInfo>,
    pub skipped: Vec<ArchiveError>,
}

/// The folder's `*.tar` backups (habackup's own temp files left out). A missing folder is an
/// `Io` error with `NotFound`: the caller knows whether that means "none yet" or a typo.
pub fn list_local(dir: &Path) -> Result<LocalListing, ArchiveError> {
    let meta = fs::metadata(dir).at(dir)?;
    if !meta.is_dir() {
        return Err(ArchiveError::io(
            dir,
            io::Error::new(io::ErrorKind::NotADirectory, "not a directory"),
        ));
    }
    let mut listing = LocalListing::default();
    let mut paths: Vec<PathBuf> = Vec::new();
    for entry in fs::read_dir(dir).at(dir)? {
        let entry = entry.at(dir)?;
        let name = entry.file_name();
        let is_tar = name.to_str().is_some_and(|n| n.ends_with(".tar"));
        if !is_tar || is_temp_name(&name) || name.to_string_lossy().starts_with('.') {
            continue;
        }
        if entry
            .file_type()
            .is_ok_and(|t| t.is_file() || t.is_symlink())
        {
            paths.push(entry.path());
        }
    }
    paths.sort();
    for path in paths {
        if !path.is_file() {
            continue;
        }
        match read_backup(&path) {
            Ok(info) => listing.backups.push(info),
            Err(err) => listing.skipped.push(err),
        }
    }
    listing.backups.sort_by(|a, b| a.date.cmp(&b.date));
    Ok(listing)
}

/// The backup with `slug` in `dir`: `<slug>.tar` when it is that backup, else whichever file
/// holds it. A missing folder holds none.
pub fn find_local(dir: &Path, slug: &str) -> Result<Option<BackupInfo>, ArchiveError> {
    let named = dir.join(format!("{slug}.tar"));
    if let Ok(info) = read_backup(&named) {
        if info.slug == slug {
            return Ok(Some(info));
        }
    }
    match list_local(dir) {
        Ok(listing) => Ok(listing.backups.into_iter().find(|b| b.slug == slug)),
        Err(ArchiveError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
            Ok(None)
        }
        Err(err) => Err(err),
    }
}

/// What a transfer promised about a backup file.
#[derive(Debug, Clone, Default)]
pub struct Expected {
    pub slug: String,
    pub size: Option<u64>,
    /// Lowercase hex; `None` when nobody knows it (or it was already checked on the way).
    pub sha256: Option<String>,
}

/// Checks the file at `temp` against `expected` (size, sha256, the slug in its backup.json);
/// errors name `shown`, the file the user asked for, never the temp file.
pub fn check_backup_file(
    temp: &Path,
    shown: &Path,
    expected: &Expected,
    cancel: &CancelToken,
) -> Result<BackupInfo, ArchiveError> {
    let size = fs::metadata(temp).at(shown)?.len();
    if let Some(want) = expected.size {
        if size != want {
            return Err(ArchiveError::invalid(
                shown,
                format!("the download has {size} bytes, expected {want}; nothing was kept"),
            ));
        }
    }
    let mut info = read_backup(temp).map_err(|e| e.about(shown))?;
    if info.slug != expected.slug {
        return Err(ArchiveError::invalid(
            shown,
            format!(
                "the download holds backup {}, expected {}; nothing was kept",
                info.slug, expected.slug
            ),
        ));
    }
    if let Some(want) = &expected.sha256 {
        let actual = sha256_hex(File::open(temp).at(shown)?, cancel).at(shown)?;
        if !actual.eq_ignore_ascii_case(want) {
            return Err(ArchiveError::invalid(
                shown,
                "the download does not match its sha256; nothing was kept",
            ));
        }
        info.sha256 = Some(actual);
    }
    Ok(info)
}
