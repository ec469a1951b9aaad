//! Temp files and dirs beside their destination that vanish unless committed, and the clean-up
//! of those a killed process left behind.
//!
//! Every temp name habackup makes starts with `.habackup-`, so backups and listings can leave
//! them out whatever the user's excludes. A live owner holds an exclusive `flock` on its temp
//! entry for as long as it exists; the kernel drops the lock when the process dies, so an entry
//! that can be locked (and is not brand new) belongs to nobody and can go.

use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// The prefix of every temp entry habackup creates.
pub const TEMP_PREFIX: &str = ".habackup-";
/// Generic temps (a backup or download being written, an extraction being filled): removable
/// once stale. Restore's own entries (`.habackup-restore-…`) are recovered by the restore, never
/// just removed: they may hold the only copy of a config dir.
const TEMP_KIND: &str = ".habackup-tmp-";
/// A temp entry exists for a moment before its owner locks it; younger ones are never touched.
const STALE_AFTER: Duration = Duration::from_secs(60);

/// Whether `name` is one of habackup's temp entries: today's (`.habackup-…`) or those of
/// earlier versions (`.<name>.<12 hex>.partial[.tar]`), which must not leak into a backup either.
pub fn is_temp_name(name: &OsStr) -> bool {
    let Some(name) = name.to_str() else {
        return false;
    };
    if name.starts_with(TEMP_PREFIX) || name.starts_with("..habackup-") {
        return true;
    }
    let Some(stem) = name
        .strip_suffix(".partial.tar")
        .or_else(|| name.strip_suffix(".partial"))
    else {
        return false;
    };
    name.starts_with('.')
        && stem.rsplit_once('.').is_some_and(|(_, token)| {
            token.len() == 12 && token.bytes().all(|b| b.is_ascii_hexdigit())
        })
}

fn token() -> String {
    let token = uuid::Uuid::new_v4().simple().to_string();
    token[..12].to_string()
}

/// `.habackup-<kind>-<token>` plus `suffix`, in `dir`.
pub fn temp_path(dir: &Path, kind: &str, suffix: &str) -> PathBuf {
    dir.join(format!("{TEMP_PREFIX}{kind}-{}{suffix}", token()))
}

pub fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Takes the owner's lock on an open temp entry; false when somebody else holds it.
pub fn try_lock(file: &File) -> io::Result<bool> {
    // SAFETY: flock on a descriptor this `File` owns for the duration of the call.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc == 0 {
        return Ok(true);
    }
    let err = io::Error::last_os_error();
    if err.kind() == io::ErrorKind::WouldBlock {
        Ok(false)
    } else {
        Err(err)
    }
}

/// Opens a temp entry (file or directory) without following a link, to lock it.
pub fn open_entry(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
}

/// Whether the entry at `path` is old enough and unlocked: its owner is gone. The returned file
/// holds the lock, so nobody can adopt the entry while it is being removed.
pub fn abandoned(path: &Path) -> Option<File> {
    let meta = fs::symlink_metadata(path).ok()?;
    let age = SystemTime::now()
        .duration_since(meta.modified().ok()?)
        .unwrap_or_default();
    if age < STALE_AFTER || meta.file_type().is_symlink() {
        return None;
    }
    let file = open_entry(path).ok()?;
    try_lock(&file).ok()?.then_some(file)
}

/// Removes the generic temp entries in `dir` whose owners are gone. Best effort: a failure here
/// must not fail the operation that called it.
pub fn clean_stale(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        if !name.to_str().is_some_and(|n| n.starts_with(TEMP_KIND)) {
            continue;
        }
        let path = entry.path();
        let Some(_lock) = abandoned(&path) else {
            continue;
        };
        let removed = match entry.file_type() {
            Ok(t) if t.is_dir() => fs::remove_dir_all(&path),
            _ => fs::remove_file(&path),
        };
        match removed {
            Ok(()) => {
                log::info!(target: "habackup", "removed {}, left behind by an interrupted operation", path.display());
            }
            Err(err) => {
                log::debug!(target: "habackup", "cannot remove stale {}: {err}", path.display());
            }
        }
    }
}

/// A file written under a temporary name in the destination's directory.
pub struct TempFile {
    path: PathBuf,
    file: File,
    committed: bool,
}

impl TempFile {
    /// The `.tar` suffix keeps the temp file under Home Assistant's `backups/*.tar` exclude too.
    pub fn create_beside(dest: &Path) -> io::Result<Self> {
        let dir = parent_of(dest);
        clean_stale(dir);
        let path = temp_path(dir, "tmp", ".tar");
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .custom_flags(libc::O_CLOEXEC)
            .open(&path)?;
        let temp = TempFile {
            path,
            file,
            committed: false,
        };
        try_lock(&temp.file)?;
        Ok(temp)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn file(&mut self) -> &mut File {
        &mut self.file
    }

    /// fsyncs the data, renames over `dest` and fsyncs the directory. On an error the path in
    /// it is `dest`'s, the user's.
    pub fn commit(mut self, dest: &Path) -> io::Result<()> {
        self.file.sync_all()?;
        fs::rename(&self.path, dest)?;
        self.committed = true;
        // The rename is durable only once the directory entry is on disk.
        if let Ok(dir) = File::open(parent_of(dest)) {
            let _ = dir.sync_all();
        }
        Ok(())
    }
}

impl TempFile {
    /// Like [`TempFile::commit`], but fails with `AlreadyExists` instead of replacing a file
    /// that appeared at `dest` meanwhile.
    pub fn commit_new(mut self, dest: &Path) -> io::Result<()> {
        self.file.sync_all()?;
        rename_no_replace(&self.path, dest)?;
        self.committed = true;
        if let Ok(dir) = File::open(parent_of(dest)) {
            let _ = dir.sync_all();
        }
        Ok(())
    }
}

/// `rename` that never replaces `to` (Linux `RENAME_NOREPLACE`). Filesystems without it (some
/// network ones) get a check first, which leaves only a moment for a race.
fn rename_no_replace(from: &Path, to: &Path) -> io::Result<()> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let c = |p: &Path| {
        CString::new(p.as_os_str().as_bytes())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))
    };
    let (from_c, to_c) = (c(from)?, c(to)?);
    // The system call itself, not glibc's wrapper: that only exists from glibc 2.28, and the
    // manylinux2014 wheel must load on glibc 2.17 (scripts/check_wheel.py catches such imports).
    // SAFETY: two NUL-terminated paths that outlive the call, relative to the cwd.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_renameat2,
            libc::AT_FDCWD,
            from_c.as_ptr(),
            libc::AT_FDCWD,
            to_c.as_ptr(),
            libc::RENAME_NOREPLACE,
        )
    };
    if rc == 0 {
        return Ok(());
    }
    let err = io::Error::last_os_error();
    match err.raw_os_error() {
        Some(libc::EINVAL | libc::ENOSYS | libc::ENOTSUP) => {
            if fs::symlink_metadata(to).is_ok() {
                return Err(io::Error::from(io::ErrorKind::AlreadyExists));
            }
            fs::rename(from, to)
        }
        _ => Err(err),
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// The directories made to hold a result (`create -o NEW/`, a download into a new folder): they
/// go again, innermost first and only while empty, unless [`CreatedDirs::keep`] is called once
/// the result is in place. A failed command leaves no empty directory behind.
#[derive(Debug, Default)]
pub struct CreatedDirs {
    /// Outermost first.
    dirs: Vec<PathBuf>,
}

impl CreatedDirs {
    /// Creates `dir` and whichever of its parents are missing, one by one, noting each.
    pub fn create(dir: &Path) -> io::Result<CreatedDirs> {
        let mut missing = Vec::new();
        let mut at = Some(dir);
        while let Some(path) = at.filter(|p| !p.as_os_str().is_empty()) {
            if path.is_dir() {
                break;
            }
            missing.push(path.to_path_buf());
            at = path.parent();
        }
        // Dropped on an error below, it removes what was already created.
        let mut created = CreatedDirs::default();
        for path in missing.into_iter().rev() {
            match fs::create_dir(&path) {
                Ok(()) => created.dirs.push(path),
                // Made meanwhile by somebody else: theirs, not ours to remove.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && path.is_dir() => {}
                Err(e) => return Err(e),
            }
        }
        Ok(created)
    }

    /// The result is in place: the directories stay.
    pub fn keep(mut self) {
        self.dirs.clear();
    }
}

impl Drop for CreatedDirs {
    fn drop(&mut self) {
        for dir in self.dirs.iter().rev() {
            // Not empty: somebody else put something there; it and its parents stay.
            if fs::remove_dir(dir).is_err() {
                break;
            }
        }
    }
}

/// A directory filled under a temporary name beside its destination.
pub struct TempDir {
    path: PathBuf,
    /// Held open for its lock.
    _lock: File,
}

impl TempDir {
    pub fn create_beside(dest: &Path) -> io::Result<Self> {
        let dir = parent_of(dest);
        clean_stale(dir);
        Self::create(temp_path(dir, "tmp", ""))
    }

    /// A locked, empty directory at exactly `path` (which must not exist).
    pub fn create(path: PathBuf) -> io::Result<Self> {
        fs::create_dir(&path)?;
        let lock = match open_entry(&path).and_then(|f| try_lock(&f).map(|_| f)) {
            Ok(lock) => lock,
            Err(err) => {
                let _ = fs::remove_dir(&path);
                return Err(err);
            }
        };
        Ok(TempDir { path, _lock: lock })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Moves the finished tree to `dest`, which must be absent or an empty directory.
    pub fn commit(mut self, dest: &Path) -> io::Result<()> {
        if dest.is_dir() {
            fs::remove_dir(dest)?;
        }
        fs::rename(&self.path, dest)?;
        self.path = PathBuf::new();
        Ok(())
    }

    /// Keeps the directory (and its contents) where it is: its owner takes it over.
    pub fn keep(mut self) -> PathBuf {
        std::mem::take(&mut self.path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if !self.path.as_os_str().is_empty() {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_names_are_recognised() {
        for name in [
            ".habackup-tmp-0123456789ab.tar",
            ".habackup-restore-0123456789ab",
            "..habackup-restore-342a249706c9.e3cea7abb1b1.partial",
            ".dd3df4e9.tar.2ea70d4757eb.partial.tar",
            ".dest.87c37d4eb1c2.partial",
        ] {
            assert!(is_temp_name(OsStr::new(name)), "{name}");
        }
        for name in [
            "backup.tar",
            ".storage",
            ".partial",
            ".x.notahextoken1.partial",
            "a.partial",
        ] {
            assert!(!is_temp_name(OsStr::new(name)), "{name}");
        }
    }

    #[test]
    fn live_temps_stay_and_abandoned_ones_go() {
        let dir = tempfile::tempdir().unwrap();
        let live = TempFile::create_beside(&dir.path().join("a.tar")).unwrap();
        let stale = temp_path(dir.path(), "tmp", ".tar");
        fs::write(&stale, b"left by a killed process").unwrap();
        let old = SystemTime::now() - Duration::from_secs(3600);
        for path in [live.path(), stale.as_path()] {
            File::options()
                .write(true)
                .open(path)
                .unwrap()
                .set_modified(old)
                .unwrap();
        }
        clean_stale(dir.path());
        assert!(live.path().exists(), "a locked temp file is somebody's");
        assert!(!stale.exists(), "an unlocked old one is nobody's");
        drop(live);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
