//! Temp files and dirs beside their destination that vanish unless committed.

use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};

use super::{ArchiveError, IoContext};

fn temp_name(dest: &Path, suffix: &str) -> Result<PathBuf, ArchiveError> {
    let parent = parent_of(dest);
    let file_name = dest.file_name().and_then(|n| n.to_str()).ok_or_else(|| {
        ArchiveError::InvalidArgument(format!("{} has no file name", dest.display()))
    })?;
    let token = uuid::Uuid::new_v4().simple().to_string();
    Ok(parent.join(format!(".{file_name}.{}{suffix}", &token[..12])))
}

pub fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// A file written under a temporary name in the destination's directory.
pub struct TempFile {
    path: PathBuf,
    file: File,
    committed: bool,
}

impl TempFile {
    /// The `.tar` suffix keeps the temp file under Home Assistant's `backups/*.tar` exclude, so a
    /// concurrent backup of the same config dir never picks it up. Errors name `dest`: the temp
    /// name means nothing to the user.
    pub fn create_beside(dest: &Path) -> Result<Self, ArchiveError> {
        let path = temp_name(dest, ".partial.tar")?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| ArchiveError::write_failed(dest, e, None))?;
        Ok(TempFile {
            path,
            file,
            committed: false,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn file(&mut self) -> &mut File {
        &mut self.file
    }

    /// fsyncs the data, renames over `dest` and fsyncs the directory.
    pub fn commit(mut self, dest: &Path) -> Result<(), ArchiveError> {
        self.file
            .sync_all()
            .map_err(|e| ArchiveError::write_failed(dest, e, None))?;
        fs::rename(&self.path, dest).at(dest)?;
        self.committed = true;
        // The rename is durable only once the directory entry is on disk.
        if let Ok(dir) = File::open(parent_of(dest)) {
            let _ = dir.sync_all();
        }
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// A directory filled under a temporary name beside its destination.
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub fn create_beside(dest: &Path) -> Result<Self, ArchiveError> {
        let path = temp_name(dest, ".partial")?;
        fs::create_dir(&path).map_err(|e| ArchiveError::write_failed(dest, e, None))?;
        Ok(TempDir { path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Moves the finished tree to `dest`, which must be absent or an empty directory.
    pub fn commit(mut self, dest: &Path) -> Result<(), ArchiveError> {
        if dest.is_dir() {
            fs::remove_dir(dest).at(dest)?;
        }
        fs::rename(&self.path, dest).at(dest)?;
        self.path = PathBuf::new();
        Ok(())
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if !self.path.as_os_str().is_empty() {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}
