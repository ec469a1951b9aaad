//! Where a new backup goes. An existing directory gets `<slug>.tar`; a path ending in `/` names
//! a directory, created for the backup (with any missing parents) and removed again if the
//! backup fails; anything else is the file to write. An existing file is never replaced.

use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::ArchiveError;
use crate::common::atomic::{parent_of, CreatedDirs};
use crate::common::text::io_text;

/// The place a backup is being written to; directories it created go again when it is dropped
/// before [`Destination::keep`].
#[derive(Debug)]
pub struct Destination {
    /// The directory that gets `<slug>.tar`, or None when `file` is the path.
    dir: Option<PathBuf>,
    file: PathBuf,
    created: CreatedDirs,
}

fn names_a_directory(path: &Path) -> bool {
    path.as_os_str().as_bytes().ends_with(b"/")
}

/// `path` as the user typed it, without the trailing `/` that made it a directory.
fn shown(path: &Path) -> PathBuf {
    let bytes = path.as_os_str().as_bytes();
    let trimmed = bytes.strip_suffix(b"/").unwrap_or(bytes);
    if trimmed.is_empty() {
        path.to_path_buf()
    } else {
        PathBuf::from(std::ffi::OsStr::from_bytes(trimmed))
    }
}

impl Destination {
    /// Checks `path` and creates the directory it names, if it does: done before the backup is
    /// written, so a destination that cannot work fails before the long part.
    pub fn prepare(path: &Path) -> Result<Destination, ArchiveError> {
        let in_dir = |dir: PathBuf, created: CreatedDirs| Destination {
            dir: Some(dir),
            file: PathBuf::new(),
            created,
        };
        // "file/" fails to stat with "Not a directory": look at what the name itself is.
        let looked_up = if names_a_directory(path) {
            shown(path)
        } else {
            path.to_path_buf()
        };
        match fs::metadata(&looked_up) {
            Ok(meta) if meta.is_dir() => {
                return Ok(in_dir(path.to_path_buf(), CreatedDirs::default()))
            }
            Ok(_) if names_a_directory(path) => {
                return Err(ArchiveError::failed(
                    shown(path),
                    "is a file, not a directory for the backup",
                ))
            }
            Ok(_) => {
                return Err(ArchiveError::failed(
                    path,
                    "already exists; a backup never replaces a file (choose another name, or \
                     a directory)",
                ))
            }
            // Missing, or below a file: creating it says which.
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
                ) => {}
            Err(e) => return Err(ArchiveError::io(path, e)),
        }
        if names_a_directory(path) {
            let dir = shown(path);
            let created = CreatedDirs::create(&dir).map_err(|e| {
                ArchiveError::failed(
                    &dir,
                    format!("cannot create this directory: {}", io_text(&e)),
                )
            })?;
            return Ok(in_dir(dir, created));
        }
        let parent = parent_of(path);
        if !parent.is_dir() {
            return Err(ArchiveError::failed(
                path,
                format!(
                    "{} is not a directory (end the path with / to have it created)",
                    parent.display()
                ),
            ));
        }
        Ok(Destination {
            dir: None,
            file: path.to_path_buf(),
            created: CreatedDirs::default(),
        })
    }

    /// The backup file's path, once its slug is known.
    pub fn file(&self, slug: &str) -> PathBuf {
        match &self.dir {
            Some(dir) => dir.join(format!("{slug}.tar")),
            None => self.file.clone(),
        }
    }

    /// The backup is complete: the directories it created stay.
    pub fn keep(self) {
        self.created.keep();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trailing_slash_creates_directories_that_a_failure_removes() {
        let root = tempfile::tempdir().unwrap();
        let wanted = root.path().join("a/b/");
        let wanted = PathBuf::from(format!("{}/", wanted.display()));
        let made = Destination::prepare(&wanted).unwrap();
        assert!(root.path().join("a/b").is_dir());
        assert_eq!(made.file("x"), root.path().join("a/b/x.tar"));
        drop(made);
        assert!(
            !root.path().join("a").exists(),
            "a failed backup leaves no directory"
        );

        let kept = Destination::prepare(&wanted).unwrap();
        kept.keep();
        assert!(root.path().join("a/b").is_dir());
    }

    #[test]
    fn existing_files_are_never_targets() {
        let root = tempfile::tempdir().unwrap();
        let file = root.path().join("f.tar");
        fs::write(&file, b"mine").unwrap();
        let err = Destination::prepare(&file).unwrap_err().to_string();
        assert!(err.contains("already exists"), "{err}");
        let as_dir = PathBuf::from(format!("{}/", file.display()));
        let err = Destination::prepare(&as_dir).unwrap_err().to_string();
        assert!(err.contains("is a file"), "{err}");
        assert!(!err.contains("f.tar/"), "{err}");
        let below = PathBuf::from(format!("{}/sub/", file.display()));
        let err = Destination::prepare(&below).unwrap_err().to_string();
        assert!(err.contains("cannot create this directory"), "{err}");
        assert_eq!(fs::read(&file).unwrap(), b"mine");

        let err = Destination::prepare(&root.path().join("none/x.tar"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("is not a directory"), "{err}");
    }
}
