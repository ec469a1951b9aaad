use std::io;
use std::path::{Path, PathBuf};

use crate::common::text::{io_text, without_os_error};
use crate::common::Cancelled;

/// Everything that can go wrong while writing, reading or extracting a backup. Reasons often quote
/// an I/O error; every variant is shown without Rust's ` (os error N)` tails.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// I/O on a named file failed (unreadable source file, full disk, ...). Shown as
    /// `path: Permission denied`, without Rust's ` (os error 13)`.
    #[error("{path}: {}", io_text(source))]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The file is not a backup we can trust: corrupt, truncated or unsafe to extract.
    #[error("{path}: {}", without_os_error(reason))]
    InvalidBackup { path: PathBuf, reason: String },
    /// The password is missing or does not open the protected backup.
    #[error("{path}: {}", without_os_error(reason))]
    IncorrectPassword { path: PathBuf, reason: String },
    /// A well-formed backup that uses something this version does not handle.
    #[error("{path}: {}", without_os_error(reason))]
    Unsupported { path: PathBuf, reason: String },
    /// An operation on `path` (a config dir, a destination) could not be completed; `reason`
    /// says what happened and what is left where.
    #[error("{path}: {}", without_os_error(reason))]
    Failed { path: PathBuf, reason: String },
    /// The caller asked for something impossible (bad exclude pattern, non-empty destination, ...).
    #[error("{}", without_os_error(.0))]
    InvalidArgument(String),
    #[error("operation cancelled")]
    Cancelled,
}

impl ArchiveError {
    /// An I/O error on `path`; one that carries a cancellation is the cancellation.
    pub fn io(path: impl AsRef<Path>, source: io::Error) -> Self {
        if Cancelled::is(&source) {
            return ArchiveError::Cancelled;
        }
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

    pub fn failed(path: impl AsRef<Path>, reason: impl Into<String>) -> Self {
        ArchiveError::Failed {
            path: path.as_ref().to_path_buf(),
            reason: reason.into(),
        }
    }

    /// The same error about `shown` instead: a check made on a temp file is reported under the
    /// name the user knows.
    pub fn about(self, shown: &Path) -> Self {
        let shown = shown.to_path_buf();
        match self {
            ArchiveError::Io { source, .. } => ArchiveError::Io {
                path: shown,
                source,
            },
            ArchiveError::InvalidBackup { reason, .. } => ArchiveError::InvalidBackup {
                path: shown,
                reason,
            },
            ArchiveError::IncorrectPassword { reason, .. } => ArchiveError::IncorrectPassword {
                path: shown,
                reason,
            },
            ArchiveError::Unsupported { reason, .. } => ArchiveError::Unsupported {
                path: shown,
                reason,
            },
            ArchiveError::Failed { reason, .. } => ArchiveError::Failed {
                path: shown,
                reason,
            },
            other => other,
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

impl From<Cancelled> for ArchiveError {
    fn from(_: Cancelled) -> Self {
        ArchiveError::Cancelled
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_carry_no_os_error_numbers() {
        let denied = io::Error::from_raw_os_error(libc::EACCES);
        let err = ArchiveError::io("/config/x.yaml", denied);
        assert_eq!(err.to_string(), "/config/x.yaml: Permission denied");
        let full = io::Error::from_raw_os_error(libc::ENOSPC);
        let err = ArchiveError::failed("/out", format!("cannot write: {full}"));
        assert_eq!(
            err.to_string(),
            "/out: cannot write: No space left on device"
        );
    }
}
