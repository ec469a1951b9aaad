//! What can go wrong talking to a store, sorted the way callers act on it: retry later
//! (unreachable), nothing there (not found), or look at the message (failed).

use std::error::Error as StdError;

use object_store::client::{HttpError, HttpErrorKind};
use thiserror::Error;

use super::remote::RemoteFsError;
use crate::archive::ArchiveError;
use crate::common::redact::redact_urls;
use crate::common::text::without_os_error;
use crate::common::Cancelled;

/// The messages quote errors of object_store, reqwest and the OS; they are shown without Rust's
/// ` (os error N)` tails.
#[derive(Debug, Error)]
pub enum StoreError {
    /// A malformed URL or option: raised at construction, before any request.
    #[error("{}", without_os_error(.0))]
    InvalidConfig(String),
    /// Connection refused, DNS failure or timeout, after the retries.
    #[error("{}", without_os_error(.0))]
    Unreachable(String),
    #[error("{}", without_os_error(.0))]
    NotFound(String),
    #[error("{}", without_os_error(.0))]
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

/// A message without the HTML page a server sent with its error status: object_store quotes a
/// response's body whole ("...status code: 501 Not Implemented: <!DOCTYPE HTML>..."). Other
/// bodies stay: S3's and Azure's XML carries the error's code and reason.
fn without_html(message: String) -> String {
    let lower = message.to_ascii_lowercase();
    let start = ["<!doctype html", "<html"]
        .iter()
        .filter_map(|tag| lower.find(tag))
        .min();
    match start {
        Some(at) => {
            let kept = message[..at].trim_end().trim_end_matches(':');
            format!("{kept} (an HTML page)")
        }
        None => message,
    }
}

/// The full chain of messages, so "error sending request" comes with its reason.
fn chain(err: &(dyn StdError + 'static)) -> String {
    without_html(chain_text(err))
}

fn chain_text(err: &(dyn StdError + 'static)) -> String {
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

impl From<Cancelled> for StoreError {
    fn from(_: Cancelled) -> Self {
        StoreError::Cancelled
    }
}

#[cfg(test)]
mod tests {
    use super::without_html;

    #[test]
    fn html_error_pages_are_left_out() {
        let message = "PROPFIND http://h/dav/ - Server returned non-2xx status code: 501 Not \
                       Implemented: <!DOCTYPE HTML>\n<html lang=\"en\"><body>x</body></html>";
        assert_eq!(
            without_html(message.into()),
            "PROPFIND http://h/dav/ - Server returned non-2xx status code: 501 Not Implemented \
             (an HTML page)"
        );
        let xml = "Server returned non-2xx status code: 403 Forbidden: <Error><Code>AccessDenied";
        assert_eq!(without_html(xml.into()), xml);
    }
}
