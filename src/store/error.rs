//! What can go wrong talking to a store, sorted the way callers act on it: retry later
//! (unreachable), nothing there (not found), or look at the message (failed).

use std::error::Error as StdError;

use object_store::client::{HttpError, HttpErrorKind};
use thiserror::Error;

use super::remote_fs::RemoteFsError;
use crate::archive::ArchiveError;
use crate::redact::redact_urls;

#[derive(Debug, Error)]
pub enum StoreError {
    /// A malformed URL or option: raised at construction, before any request.
    #[error("{0}")]
    InvalidConfig(String),
    /// Connection refused, DNS failure or timeout, after the retries.
    #[error("{0}")]
    Unreachable(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Failed(String),
    /// A local file (the backup being uploaded, or the download's temp file).
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    #[error("operation cancelled")]
    Cancelled,
}

/// Whether an error chain bottoms out in a connection-level failure rather than an answer.
fn is_unreachable(err: &(dyn StdError + 'static)) -> bool {
    let mut current = Some(err);
    while let Some(e) = current {
        if let Some(http) = e.downcast_ref::<HttpError>() {
            if matches!(http.kind(), HttpErrorKind::Connect | HttpErrorKind::Timeout) {
                return true;
            }
        }
        if let Some(req) = e.downcast_ref::<reqwest::Error>() {
            if req.is_connect() || req.is_timeout() {
                return true;
            }
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            if matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionRefused
                    | std::io::ErrorKind::TimedOut
                    | std::io::ErrorKind::HostUnreachable
                    | std::io::ErrorKind::NetworkUnreachable
            ) {
                return true;
            }
        }
        current = e.source();
    }
    false
}

/// The full chain of messages, so "error sending request" comes with its reason.
fn chain(err: &(dyn StdError + 'static)) -> String {
    let mut text = err.to_string();
    let mut current = err.source();
    while let Some(e) = current {
        let part = e.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        current = e.source();
    }
    text
}

/// The SFTP/SMB stores' own verdict, when the chain has one.
fn remote_fs<'a>(err: &'a (dyn StdError + 'static)) -> Option<&'a RemoteFsError> {
    let mut current = Some(err);
    while let Some(e) = current {
        if let Some(found) = e.downcast_ref::<RemoteFsError>() {
            return Some(found);
        }
        current = e.source();
    }
    None
}

impl StoreError {
    /// Sorts an error from `object_store` or our WebDAV client; `what` names the URL and key.
    pub fn from_remote(what: &str, err: &(dyn StdError + 'static)) -> StoreError {
        if let Some(remote) = remote_fs(err) {
            // Its message says it all; object_store's "Generic SFTP error" wrapping adds nothing.
            let message = redact_urls(&format!("{what}: {remote}"));
            return match remote {
                RemoteFsError::Unreachable(_) => StoreError::Unreachable(message),
                RemoteFsError::NotFound(_) => StoreError::NotFound(message),
                RemoteFsError::Config(_) => StoreError::InvalidConfig(message),
                RemoteFsError::Auth(_) | RemoteFsError::Failed(_) => StoreError::Failed(message),
            };
        }
        let message = redact_urls(&format!("{what}: {}", chain(err)));
        if let Some(object_store::Error::NotFound { .. }) =
            err.downcast_ref::<object_store::Error>()
        {
            return StoreError::NotFound(message);
        }
        if is_unreachable(err) {
            StoreError::Unreachable(message)
        } else {
            StoreError::Failed(message)
        }
    }

    pub fn failed(what: &str, reason: impl std::fmt::Display) -> StoreError {
        StoreError::Failed(redact_urls(&format!("{what}: {reason}")))
    }
}
