//! Lists what goes into a backup: the config dir, depth first, names sorted, excludes applied.

use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
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
    /// `/`-separated path inside the config dir, raw bytes (names need not be UTF-8, as in
    /// Home Assistant's own backups); empty for the config dir itself.
    pub relative: Vec<u8>,
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
        relative: Vec::new(),
        full: config_dir.to_path_buf(),
        kind: EntryKind::Directory,
    });
    walk_dir(config_dir, b"", excludes, &mut result)?;
    Ok(result)
}

fn walk_dir(
    dir: &Path,
    relative: &[u8],
    excludes: &Excludes,
    out: &mut WalkResult,
) -> Result<(), ArchiveError> {
    let reader = match fs::read_dir(dir) {
        Ok(r) => r,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            log::warn!(target: "habackup.archive", "{} vanished while it was backed up; skipped", crate::common::text::path(dir));
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
        let mut child = relative.to_vec();
        if !child.is_empty() {
            child.push(b'/');
        }
        child.extend_from_slice(name.as_bytes());
        // Patterns are text: a name that is not UTF-8 is matched with its bad bytes replaced, so
        // `*.log` still matches it and a literal segment never does. habackup's own temp entries
        // (a restore's staging dir, a backup being written) are never part of a backup, whatever
        // the excludes say.
        if excludes.is_excluded(&String::from_utf8_lossy(&child)) || is_temp_name(&name) {
            continue;
        }
        let meta = match fs::symlink_metadata(&full) {
            Ok(m) => m,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
                ) =>
            {
                log::warn!(target: "habackup.archive", "{} vanished while it was backed up; skipped", crate::common::text::path(&full));
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
            log::warn!(target: "habackup.archive", "{} is a {what}; not backed up", crate::common::text::path(&full));
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
