//! Lists what goes into a backup: the config dir, depth first, names sorted, excludes applied.

use std::ffi::OsStr;
use std::fs;
use std::io;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

use super::{ArchiveError, Excludes};
use crate::common::atomic::is_temp_name;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    Directory,
    File,
    Symlink,
}

#[derive(Debug, Clone)]
pub struct WalkEntry {
    /// `/`-separated path inside the config dir; empty for the config dir itself.
    pub relative: String,
    pub full: PathBuf,
    pub kind: EntryKind,
}

#[derive(Debug, Default)]
pub struct WalkResult {
    pub entries: Vec<WalkEntry>,
    /// Sum of regular file sizes when listed: the progress total.
    pub file_bytes: u64,
}

pub fn walk(config_dir: &Path, excludes: &Excludes) -> Result<WalkResult, ArchiveError> {
    let meta = fs::metadata(config_dir).map_err(|e| ArchiveError::io(config_dir, e))?;
    if !meta.is_dir() {
        return Err(ArchiveError::InvalidArgument(format!(
            "config dir {} is not a directory",
            config_dir.display()
        )));
    }
    let mut result = WalkResult::default();
    result.entries.push(WalkEntry {
        relative: String::new(),
        full: config_dir.to_path_buf(),
        kind: EntryKind::Directory,
    });
    walk_dir(config_dir, "", excludes, &mut result)?;
    Ok(result)
}

fn walk_dir(
    dir: &Path,
    relative: &str,
    excludes: &Excludes,
    out: &mut WalkResult,
) -> Result<(), ArchiveError> {
    let reader = match fs::read_dir(dir) {
        Ok(r) => r,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            log::warn!(target: "habackup.archive", "{} vanished while it was backed up; skipped", dir.display());
            return Ok(());
        }
        Err(e) => return Err(ArchiveError::io(dir, e)),
    };
    let mut children = Vec::new();
    for item in reader {
        let item = item.map_err(|e| ArchiveError::io(dir, e))?;
        children.push(item.file_name());
    }
    children.sort();
    for name in children {
        let full = dir.join(&name);
        let Some(name) = name.to_str() else {
            log::warn!(target: "habackup.archive", "{} has a name that is not UTF-8; skipped", full.display());
            continue;
        };
        let child = if relative.is_empty() {
            name.to_string()
        } else {
            format!("{relative}/{name}")
        };
        // habackup's own temp entries (a restore's staging dir, a backup being written) are
        // never part of a backup, whatever the excludes say.
        if excludes.is_excluded(&child) || is_temp_name(OsStr::new(name)) {
            continue;
        }
        let meta = match fs::symlink_metadata(&full) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                log::warn!(target: "habackup.archive", "{} vanished while it was backed up; skipped", full.display());
                continue;
            }
            Err(e) => return Err(ArchiveError::io(&full, e)),
        };
        let ft = meta.file_type();
        let kind = if ft.is_dir() {
            EntryKind::Directory
        } else if ft.is_symlink() {
            EntryKind::Symlink
        } else if ft.is_file() {
            out.file_bytes += meta.len();
            EntryKind::File
        } else {
            let what = if ft.is_fifo() {
                "FIFO"
            } else if ft.is_socket() {
                "socket"
            } else {
                "device node"
            };
            log::warn!(target: "habackup.archive", "{} is a {what}; not backed up", full.display());
            continue;
        };
        out.entries.push(WalkEntry {
            relative: child.clone(),
            full: full.clone(),
            kind,
        });
        if kind == EntryKind::Directory {
            walk_dir(&full, &child, excludes, out)?;
        }
    }
    Ok(())
}
