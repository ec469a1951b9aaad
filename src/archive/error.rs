//! What can go wrong writing, reading, extracting or restoring a backup, as one error type that
//! names the user's path and reads as a plain sentence.

use std::io;
use std::path::{Path, PathBuf};

use crate::common::text::{self, io_text, without_os_error};
use crate::common::Cancelled;

/// Everything that can go wrong while writing, reading or extracting a backup. Reasons often quote
/// an I/O error; every variant is shown without Rust's ` (os error N)` tails.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// I/O on a named file failed (unreadable source file, full disk, ...). Shown as
    /// `path: Permission denied`, without Rust's ` (os error 13)`.
    #[error("{}: {}", text::path(path), io_text(source))]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The file is not a backup we can trust: corrupt, truncated or unsafe to extract.
    #[error("{}: {}", text::path(path), without_os_error(reason))]
    InvalidBackup { path: PathBuf, reason: String },
    /// The password is missing or does not open the protected backup.
    #[error("{}: {}", text::path(path), without_os_error(reason))]
    IncorrectPassword { path: PathBuf, reason: String },
    /// A well-formed backup that uses something this version does not handle.
    #[error("{}: {}", text::path(path), without_os_error(reason))]
    Unsupported { path: PathBuf, reason: String },
    /// An operation on `path` (a config dir, a destination) could not be completed; `reason`
    /// says what happened and what is left where.
    #[error("{}: {}", text::path(path), without_os_error(reason))]
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

    /// A write to `path` (a destination the user named) failed. A full file system says so,
    /// with what the write still needed when that is known.
    pub fn write_failed(path: impl AsRef<Path>, source: io::Error, needed: Option<u64>) -> Self {
        let source = if is_full(&source) {
            let needed = needed.map_or(String::new(), |n| {
                format!(": at least {} more needed", human(n))
            });
            io::Error::new(
                io::ErrorKind::StorageFull,
                format!("not enough space, the file system is full{needed}"),
            )
        } else {
            source
        };
        ArchiveError::io(path, source)
    }

    /// The same error with `from` in its path replaced by `to` (a staging dir by the directory
    /// the user knows).
    pub fn renamed(self, from: &Path, to: &Path) -> Self {
        match self {
            ArchiveError::Io { path, source } => {
                let path = match path.strip_prefix(from) {
                    Ok(rest) if rest.as_os_str().is_empty() => to.to_path_buf(),
                    Ok(rest) => to.join(rest),
                    Err(_) => path,
                };
                ArchiveError::Io { path, source }
            }
            other => other,
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

/// Whether `e` says the file system (or the user's quota on it) is full.
pub fn is_full(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOSPC | libc::EDQUOT))
        || e.kind() == io::ErrorKind::StorageFull
}

/// Bytes for people: `12.0 MiB (12582912 bytes)`.
pub fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} bytes");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {} ({bytes} bytes)", UNITS[unit])
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
        let e = ArchiveError::write_failed(
            "/dest/f",
            io::Error::from_raw_os_error(libc::ENOSPC),
            Some(3 * 1024 * 1024),
        );
        assert_eq!(
            e.to_string(),
            "/dest/f: not enough space, the file system is full: at least 3.0 MiB (3145728 bytes) \
             more needed"
        );
        let e = ArchiveError::invalid("/b\x1b.tar", "bad");
        assert_eq!(e.to_string(), "/b\\x1b.tar: bad");
        assert_eq!(human(512), "512 bytes");
    }
}
