//! Extraction of a backup's config dir into a directory.
//!
//! What may be extracted is decided by `policy` (shared with verify); this module carries it out
//! on disk. The tree is built in a temp dir beside `dest` and renamed into place when complete.
//! A failed write is the destination's error, named by the user's path (`dest/<member>`), never
//! the temp dir's, and never blamed on the backup.

use std::ffi::OsStr;
use std::fs::{self, DirBuilder, File, FileTimes, OpenOptions};
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::include::{Filtered, Include};
use super::policy::{ExtractSummary, MemberBytes, Rel, Sink};
use super::tar_reader::Member;
use super::unpack::unpack;
use super::{ArchiveError, CancelToken, IoContext};
use crate::common::atomic::TempDir;
use crate::common::text;

const COPY_BUFFER: usize = 256 * 1024;

/// Extracts the config dir stored in the backup at `path` into `dest` (absent or empty).
pub fn extract_archive(
    path: &Path,
    dest: &Path,
    cancel: &CancelToken,
) -> Result<ExtractSummary, ArchiveError> {
    extract_protected_archive(path, dest, None, cancel)
}

/// `extract_archive` for a backup that may be password-protected.
pub fn extract_protected_archive(
    path: &Path,
    dest: &Path,
    password: Option<&str>,
    cancel: &CancelToken,
) -> Result<ExtractSummary, ArchiveError> {
    extract_shown_as(path, dest, dest, password, cancel)
}

/// `extract_protected_archive` into a staging dir (`dest`) that the user knows as `shown_as`:
/// errors name the files under `shown_as` (a restore's config dir), not the staging dir.
pub fn extract_shown_as(
    path: &Path,
    dest: &Path,
    shown_as: &Path,
    password: Option<&str>,
    cancel: &CancelToken,
) -> Result<ExtractSummary, ArchiveError> {
    into_new_dir(dest, shown_as, cancel, |root| {
        unpack_into(path, root, shown_as, password, cancel)
    })
}

/// Extracts only the members that `include` patterns (the syntax of excludes) match, or that
/// lie in a directory one matches, into `dest` (absent or empty); the directories above them
/// are made as needed. No match at all is an error (nothing is written); each pattern that
/// matched nothing is logged as a warning.
pub fn extract_included<S: AsRef<str>>(
    path: &Path,
    dest: &Path,
    password: Option<&str>,
    include: &[S],
    cancel: &CancelToken,
) -> Result<ExtractSummary, ArchiveError> {
    let mut include = Include::new(include)?;
    into_new_dir(dest, dest, cancel, |root| {
        let mut summary = ExtractSummary::default();
        let sink = Filtered::new(disk_sink(root, dest), &mut include, &mut summary);
        unpack(path, password, sink, cancel)?;
        if !include.matched_any() {
            return Err(ArchiveError::InvalidArgument(format!(
                "nothing in {} matches {}; nothing was extracted",
                text::path(path),
                include
                    .unmatched()
                    .iter()
                    .map(|p| format!("{p:?}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        for pattern in include.unmatched() {
            log::warn!(target: "habackup.archive", "include pattern {pattern:?} matched nothing");
        }
        Ok(summary)
    })
}

/// Fills a temp dir beside `dest` with `fill` and renames it into place once complete.
fn into_new_dir(
    dest: &Path,
    shown_as: &Path,
    cancel: &CancelToken,
    fill: impl FnOnce(&Path) -> Result<ExtractSummary, ArchiveError> + Send,
) -> Result<ExtractSummary, ArchiveError> {
    // A restore must not stall the event loop either; see `priority`.
    super::priority::run_in_background(|| {
        check_destination(dest, shown_as)?;
        let temp = TempDir::create_beside(dest)
            .map_err(|e| ArchiveError::write_failed(shown_as, e, None))?;
        let summary = fill(temp.path())?;
        cancel.check()?;
        temp.commit(dest)
            .map_err(|e| ArchiveError::write_failed(shown_as, e, None))?;
        Ok(summary)
    })
}

fn disk_sink<'a>(root: &'a Path, shown: &'a Path) -> DiskSink<'a> {
    DiskSink {
        root,
        shown,
        buffer: vec![0u8; COPY_BUFFER],
    }
}

/// Fills the empty directory `root` (which the caller owns: a restore's locked staging dir)
/// with the backup's config dir, on the calling thread; errors name files under `shown_as`. On
/// an error `root` holds a partial tree for the caller to remove.
pub(crate) fn unpack_into(
    path: &Path,
    root: &Path,
    shown_as: &Path,
    password: Option<&str>,
    cancel: &CancelToken,
) -> Result<ExtractSummary, ArchiveError> {
    Ok(unpack(path, password, disk_sink(root, shown_as), cancel)?
        .outcome
        .summary)
}

fn check_destination(dest: &Path, shown_as: &Path) -> Result<(), ArchiveError> {
    match fs::symlink_metadata(dest) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(ArchiveError::io(shown_as, e)),
        Ok(meta) if meta.is_dir() => {
            let mut entries = fs::read_dir(dest).at(shown_as)?;
            if entries.next().is_some() {
                Err(ArchiveError::InvalidArgument(format!(
                    "destination {} is not empty",
                    text::path(shown_as)
                )))
            } else {
                Ok(())
            }
        }
        Ok(_) => Err(ArchiveError::InvalidArgument(format!(
            "destination {} exists and is not a directory",
            text::path(shown_as)
        ))),
    }
}

/// Writes the policy's decisions into `root`, a fresh temp dir: parents always exist and are
/// real directories, and no symlink exists until the end, so nothing here follows one (the
/// flags below only make sure of it).
struct DiskSink<'a> {
    root: &'a Path,
    shown: &'a Path,
    buffer: Vec<u8>,
}

impl DiskSink<'_> {
    fn at(&self, rel: &Rel) -> PathBuf {
        if rel.is_empty() {
            self.root.to_path_buf()
        } else {
            self.root.join(OsStr::from_bytes(rel))
        }
    }

    fn failed(&self, rel: &Rel, e: io::Error, needed: Option<u64>) -> ArchiveError {
        let shown = if rel.is_empty() {
            self.shown.to_path_buf()
        } else {
            self.shown.join(OsStr::from_bytes(rel))
        };
        ArchiveError::write_failed(shown, e, needed)
    }

    fn clear(&self, rel: &Rel, replace: bool) -> Result<(), ArchiveError> {
        if replace {
            fs::remove_file(self.at(rel)).map_err(|e| self.failed(rel, e, None))?;
        }
        Ok(())
    }
}

impl Sink for DiskSink<'_> {
    fn make_dir(&mut self, rel: &Rel) -> Result<(), ArchiveError> {
        DirBuilder::new()
            .mode(0o700)
            .create(self.at(rel))
            .map_err(|e| self.failed(rel, e, None))
    }

    fn write_file(
        &mut self,
        rel: &Rel,
        member: &Member,
        data: &mut MemberBytes<'_>,
        replace: bool,
    ) -> Result<u64, ArchiveError> {
        self.clear(rel, replace)?;
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(self.at(rel))
            .map_err(|e| self.failed(rel, e, Some(member.size)))?;
        let mut buffer = std::mem::take(&mut self.buffer);
        let mut written = 0u64;
        let copied = loop {
            let n = match data.read(&mut buffer) {
                Ok(0) => break Ok(()),
                Ok(n) => n,
                Err(e) => break Err(e),
            };
            if let Err(e) = file.write_all(&buffer[..n]) {
                break Err(self.failed(rel, e, Some(member.size.saturating_sub(written))));
            }
            written += n as u64;
        };
        self.buffer = buffer;
        copied?;
        let times = FileTimes::new().set_modified(system_time(member.mtime));
        file.set_permissions(fs::Permissions::from_mode(member.mode & 0o777))
            .and_then(|()| file.set_times(times))
            .map_err(|e| self.failed(rel, e, None))?;
        Ok(written)
    }

    fn hard_link(&mut self, source: &Rel, rel: &Rel, replace: bool) -> Result<(), ArchiveError> {
        self.clear(rel, replace)?;
        fs::hard_link(self.at(source), self.at(rel)).map_err(|e| self.failed(rel, e, None))
    }

    fn symlink(&mut self, rel: &Rel, target: &[u8], replace: bool) -> Result<(), ArchiveError> {
        self.clear(rel, replace)?;
        std::os::unix::fs::symlink(OsStr::from_bytes(target), self.at(rel))
            .map_err(|e| self.failed(rel, e, None))
    }

    fn finish_dir(&mut self, rel: &Rel, mode: u32, mtime: i64) -> Result<(), ArchiveError> {
        let times = FileTimes::new().set_modified(system_time(mtime));
        OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW)
            .open(self.at(rel))
            .and_then(|dir: File| {
                dir.set_times(times)?;
                dir.set_permissions(fs::Permissions::from_mode((mode & 0o777) | 0o700))
            })
            .map_err(|e| self.failed(rel, e, None))
    }
}

/// An archive's mtime as a time to set: any i64 is representable, and the kernel clamps it to
/// what the file system can store.
fn system_time(seconds: i64) -> SystemTime {
    let offset = Duration::from_secs(seconds.unsigned_abs());
    let time = if seconds >= 0 {
        SystemTime::UNIX_EPOCH.checked_add(offset)
    } else {
        SystemTime::UNIX_EPOCH.checked_sub(offset)
    };
    time.unwrap_or(SystemTime::UNIX_EPOCH)
}
