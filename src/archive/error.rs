use std::io;
use std::path::{Path, PathBuf};

/// Everything that can go wrong while writing, reading or extracting a backup.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// I/O on a named file failed (unreadable source file, full disk, ...).
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The file is not a backup we can trust: corrupt, truncated or unsafe to extract.
    #[error("{path}: {reason}")]
    InvalidBackup { path: PathBuf, reason: String },
    /// The password is missing or does not open the protected backup.
    #[error("{path}: {reason}")]
    IncorrectPassword { path: PathBuf, reason: String },
    /// A well-formed backup that uses something this version does not handle.
    #[error("{path}: {reason}")]
    Unsupported { path: PathBuf, reason: String },
    /// The caller asked for something impossible (bad exclude pattern, non-empty destination, ...).
    #[error("{0}")]
    InvalidArgument(String),
    #[error("operation cancelled")]
    Cancelled,
}

impl ArchiveError {
    pub fn io(path: impl AsRef<Path>, source: io::Error) -> Self {
        ArchiveError::Io {
            path: path.as_ref().to_path_buf(),
            source,
        }
    }

    pub fn invalid(path: impl AsRef<Path>, reason: impl Into<String>) -> Self {
        ArchiveError::InvalidBackup {
            path: path.as_ref().to_path_buf(),
            reason: reason.into(),
        }
    }

    pub fn unsupported(path: impl AsRef<Path>, reason: impl Into<String>) -> Self {
        ArchiveError::Unsupported {
            path: path.as_ref().to_path_buf(),
            reason: reason.into(),
        }
    }
}

/// Attaches a path to a bare `io::Error`.
pub trait IoContext<T> {
    fn at(self, path: impl AsRef<Path>) -> Result<T, ArchiveError>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn at(self, path: impl AsRef<Path>) -> Result<T, ArchiveError> {
        self.map_err(|e| ArchiveError::io(path, e))
    }
}
