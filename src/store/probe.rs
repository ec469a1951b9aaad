//! The probe: before a store is trusted with backups, a small object is written under the
//! prefix, found in a listing, read back and deleted, and whatever fails is sorted into the few
//! problems a person can act on (wrong address, wrong credentials, missing bucket, no right to
//! write, server down). Home Assistant's config flow shows them as form errors.

use std::error::Error as StdError;

use bytes::Bytes;
use object_store::{ObjectStoreExt, PutPayload};
use thiserror::Error;

use super::error::{chain, is_unreachable, remote_fs, StoreError};
use super::remote::RemoteFsError;
use super::StoreAgent;
use crate::common::redact::redact_urls;
use crate::common::text::without_os_error;

/// Why a store failed its probe; each message names the URL and step, never a credential.
#[derive(Debug, Error)]
pub enum ProbeError {
    /// Nothing answered: connection refused, DNS, timeout, a proxy or server that is down.
    #[error("{0}")]
    CannotConnect(String),
    /// The server does not accept the credentials (unknown key, wrong secret or password).
    #[error("{0}")]
    InvalidAuth(String),
    /// The bucket or container does not exist.
    #[error("{0}")]
    BucketNotFound(String),
    /// The credentials are accepted but may not write, read or delete here.
    #[error("{0}")]
    PermissionDenied(String),
    /// The address is not one this kind of store can use (not a WebDAV server, wrong region).
    #[error("{0}")]
    InvalidUrl(String),
    /// The SSH server's host key is not pinned (the message names the key it presents) or does
    /// not match the pinned one.
    #[error("{0}")]
    HostKey(String),
    /// Anything else; the message says what.
    #[error("{0}")]
    Failed(String),
}

impl ProbeError {
    /// The problem as a stable code (Home Assistant's form error keys).
    pub fn code(&self) -> &'static str {
        match self {
            ProbeError::CannotConnect(_) => "cannot_connect",
            ProbeError::InvalidAuth(_) => "invalid_auth",
            ProbeError::BucketNotFound(_) => "bucket_not_found",
            ProbeError::PermissionDenied(_) => "permission_denied",
            ProbeError::InvalidUrl(_) => "invalid_url",
            ProbeError::HostKey(_) => "host_key",
            ProbeError::Failed(_) => "failed",
        }
    }
}

/// The steps, named in messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Write,
    List,
    Read,
    Delete,
}

impl Step {
    fn verb(self) -> &'static str {
        match self {
            Step::Write => "writing",
            Step::List => "listing",
            Step::Read => "reading back",
            Step::Delete => "deleting",
        }
    }
}

/// Error codes servers put in their bodies for credentials they do not accept (S3, GCS's XML
/// API, Azure), as opposed to valid credentials without the right.
const AUTH_CODES: &[&str] = &[
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "InvalidToken",
    "ExpiredToken",
    "TokenRefreshRequired",
    "InvalidSecurity",
    "AuthenticationFailed",
    "InvalidAuthenticationInfo",
    "NoAuthenticationInformation",
    "AuthorizationFailure",
];
/// Body codes for a bucket or container that is not there.
const BUCKET_CODES: &[&str] = &["NoSuchBucket", "ContainerNotFound", "ContainerBeingDeleted"];

/// The `<Code>...</Code>` of an XML error body quoted in `text`, if any.
fn body_code(text: &str) -> Option<&str> {
    let start = text.find("<Code>")? + "<Code>".len();
    let len = text[start..].find("</Code>")?;
    Some(&text[start..start + len])
}

/// Whether a local file operation failed for want of a right (or on a read-only disk).
fn io_denied(err: &(dyn StdError + 'static)) -> bool {
    let mut current = Some(err);
    while let Some(e) = current {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            if matches!(
                io.kind(),
                std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem
            ) {
                return true;
            }
        }
        current = e.source();
    }
    false
}

/// The SFTP and SMB stores' own verdicts (their messages say it all).
fn from_remote_fs(step: Step, what: &str, remote: &RemoteFsError) -> ProbeError {
    let message = without_os_error(&redact_urls(&format!(
        "{} {what} failed: {remote}",
        step.verb()
    )));
    match remote {
        RemoteFsError::Unreachable(_) => ProbeError::CannotConnect(message),
        RemoteFsError::Auth(_) => ProbeError::InvalidAuth(message),
        RemoteFsError::Denied(_) => ProbeError::PermissionDenied(message),
        RemoteFsError::HostKey(_) => ProbeError::HostKey(message),
        // A share that does not exist (writes create missing folders).
        RemoteFsError::NotFound(_) if step == Step::Write => ProbeError::BucketNotFound(message),
        RemoteFsError::NotFound(_) | RemoteFsError::Config(_) | RemoteFsError::Failed(_) => {
            ProbeError::Failed(message)
        }
    }
}

/// Sorts an error of `step` on `what` (the URL and key) into a probe problem.
fn classify(step: Step, what: &str, err: &(dyn StdError + 'static)) -> ProbeError {
    if let Some(remote) = remote_fs(err) {
        return from_remote_fs(step, what, remote);
    }
    let text = chain(err);
    let message = without_os_error(&redact_urls(&format!(
        "{} {what} failed: {text}",
        step.verb()
    )));
    let code = body_code(&text);
    if is_unreachable(err) {
        return ProbeError::CannotConnect(message);
    }
    if code.is_some_and(|c| AUTH_CODES.contains(&c)) {
        return ProbeError::InvalidAuth(message);
    }
    if code.is_some_and(|c| BUCKET_CODES.contains(&c)) {
        return ProbeError::BucketNotFound(message);
    }
    if text.contains("incorrectly configured region") || code == Some("PermanentRedirect") {
        return ProbeError::InvalidUrl(message);
    }
    match err.downcast_ref::<object_store::Error>() {
        Some(object_store::Error::Unauthenticated { .. }) => ProbeError::InvalidAuth(message),
        Some(object_store::Error::PermissionDenied { .. }) => ProbeError::PermissionDenied(message),
        // Writing to a missing bucket or container: the store answers 404 for the bucket.
        Some(object_store::Error::NotFound { .. }) if step == Step::Write => {
            ProbeError::BucketNotFound(message)
        }
        _ if io_denied(err) => ProbeError::PermissionDenied(message),
        _ => ProbeError::Failed(message),
    }
}

/// Sorts the errors our WebDAV client and the listing code already turned into `StoreError`s.
fn from_store(err: StoreError) -> ProbeError {
    match err {
        StoreError::InvalidConfig(m) => ProbeError::InvalidUrl(m),
        StoreError::Unreachable(m) => ProbeError::CannotConnect(m),
        // Our WebDAV client says so when the server does not speak WebDAV.
        StoreError::Failed(m) if m.contains("not a WebDAV server") => ProbeError::InvalidUrl(m),
        StoreError::Failed(m) if m.contains("401") => ProbeError::InvalidAuth(m),
        StoreError::Failed(m) if m.contains("403") => ProbeError::PermissionDenied(m),
        other => ProbeError::Failed(other.to_string()),
    }
}

/// The probe object's content: enough bytes to tell a real read-back from an empty one.
fn probe_payload(id: &str) -> Bytes {
    Bytes::from(format!("habackup probe {id}\n").repeat(8))
}

impl StoreAgent {
    /// Writes a small object under the prefix, finds it in a listing, reads it back and deletes
    /// it. Nothing else is touched; the object is removed even when a later step fails.
    pub async fn probe(&self) -> Result<(), ProbeError> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        // Not a backup's name (`.tar`, `.metadata.json`): listings never take it for one.
        let name = format!("habackup-probe-{id}.tmp");
        let key = self.key(&name);
        let what = self.describe(&name);
        let payload = probe_payload(&id);
        if let Some(webdav) = &self.config.webdav {
            // Uploads create the collection first; so does the probe.
            webdav.ensure_collections().await.map_err(from_store)?;
        }
        self.store()
            .put(&key, PutPayload::from(payload.clone()))
            .await
            .map_err(|e| classify(Step::Write, &what, &e))?;
        let checked = self.probe_written(&name, &payload).await;
        let deleted = match self.store().delete(&key).await {
            Ok(()) => Ok(()),
            Err(err) => Err(classify(Step::Delete, &what, &err)),
        };
        if checked.is_err() && deleted.is_err() {
            log::warn!(target: "habackup.agent", "probe: {what} could not be removed");
        }
        checked.and(deleted)
    }

    /// The listing and read-back steps of the probe.
    async fn probe_written(&self, name: &str, payload: &Bytes) -> Result<(), ProbeError> {
        let what = self.describe(name);
        let prefix = (!self.config.prefix.as_ref().is_empty()).then_some(&self.config.prefix);
        let listing = self
            .config
            .listing
            .list_with_delimiter(prefix)
            .await
            .map_err(|e| classify(Step::List, self.display_url(), &e))?;
        if !listing
            .objects
            .iter()
            .any(|o| o.location.filename() == Some(name))
        {
            return Err(ProbeError::Failed(format!(
                "{what} was written but the listing of {} does not show it",
                self.display_url()
            )));
        }
        let key = self.key(name);
        let got = self
            .store()
            .get(&key)
            .await
            .map_err(|e| classify(Step::Read, &what, &e))?;
        let bytes = got
            .bytes()
            .await
            .map_err(|e| classify(Step::Read, &what, &e))?;
        if bytes != *payload {
            return Err(ProbeError::Failed(format!(
                "{what} reads back {} bytes that differ from the {} written",
                bytes.len(),
                payload.len()
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "habackup-probe-{name}-{}",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn body_codes_are_found() {
        let text = "Server returned non-2xx status code: 403 Forbidden: <Error><Code>\
                    SignatureDoesNotMatch</Code><Message>x</Message></Error>";
        assert_eq!(body_code(text), Some("SignatureDoesNotMatch"));
        assert_eq!(body_code("no body"), None);
    }

    #[test]
    fn codes_are_stable() {
        assert_eq!(
            ProbeError::CannotConnect(String::new()).code(),
            "cannot_connect"
        );
        assert_eq!(
            ProbeError::InvalidAuth(String::new()).code(),
            "invalid_auth"
        );
        assert_eq!(
            ProbeError::BucketNotFound(String::new()).code(),
            "bucket_not_found"
        );
        assert_eq!(
            ProbeError::PermissionDenied(String::new()).code(),
            "permission_denied"
        );
        assert_eq!(ProbeError::InvalidUrl(String::new()).code(), "invalid_url");
        assert_eq!(ProbeError::HostKey(String::new()).code(), "host_key");
        assert_eq!(ProbeError::Failed(String::new()).code(), "failed");
    }

    #[test]
    fn store_errors_are_sorted() {
        let sorted = |e| from_store(e).code();
        assert_eq!(
            sorted(StoreError::Unreachable("x".into())),
            "cannot_connect"
        );
        assert_eq!(sorted(StoreError::InvalidConfig("x".into())), "invalid_url");
        let not_dav = "http://h/: the server answered PROPFIND with 405: it is not a WebDAV server";
        assert_eq!(sorted(StoreError::Failed(not_dav.into())), "invalid_url");
        let denied = "http://h/: MKCOL /a/ answered 403 Forbidden";
        assert_eq!(
            sorted(StoreError::Failed(denied.into())),
            "permission_denied"
        );
    }

    #[tokio::test]
    async fn a_folder_passes_and_keeps_nothing() {
        let dir = temp_dir("ok");
        let agent = StoreAgent::new(&format!("file://{}/sub", dir.display()), &[]).unwrap();
        agent.probe().await.unwrap();
        assert_eq!(std::fs::read_dir(dir.join("sub")).unwrap().count(), 0);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test]
    async fn memory_passes() {
        let agent = StoreAgent::new("memory://probe", &[]).unwrap();
        agent.probe().await.unwrap();
        assert!(agent.list().await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_file_where_the_folder_should_be_fails() {
        let dir = temp_dir("file");
        std::fs::write(dir.join("plain"), b"x").unwrap();
        let url = format!("file://{}/plain/sub", dir.display());
        let err = StoreAgent::new(&url, &[])
            .unwrap()
            .probe()
            .await
            .unwrap_err();
        assert_eq!(err.code(), "failed", "{err}");
        assert!(err.to_string().starts_with("writing file://"), "{err}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test]
    async fn a_stopped_server_cannot_be_reached() {
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let options = [
            ("aws_endpoint", format!("http://127.0.0.1:{port}")),
            ("aws_allow_http", "true".into()),
            ("aws_access_key_id", "k".into()),
            ("aws_secret_access_key", "s3cr3t-value".into()),
            ("aws_region", "us-east-1".into()),
            ("max_retries", "0".into()),
        ]
        .map(|(k, v)| (k.to_string(), v));
        let agent = StoreAgent::new("s3://bucket/p", &options).unwrap();
        let err = agent.probe().await.unwrap_err();
        assert_eq!(err.code(), "cannot_connect", "{err}");
        assert!(!err.to_string().contains("s3cr3t-value"), "{err}");
    }
}
