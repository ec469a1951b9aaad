//! WebDAV uploads that stream. object_store's HTTP store reads, lists and deletes fine, but its
//! put collects the whole payload in memory first; a backup is gigabytes.

use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION, CONTENT_LENGTH};
use reqwest::{Method, StatusCode};
use url::Url;

use super::error::StoreError;
use super::tuning::Tuning;

#[derive(Debug)]
pub struct WebDav {
    client: reqwest::Client,
    /// The collection backups live in, with a trailing slash and without credentials.
    base: Url,
    auth: Option<HeaderValue>,
    display_url: String,
}

impl WebDav {
    pub fn new(url: &Url, display_url: &str, tuning: &Tuning) -> Result<WebDav, StoreError> {
        let auth = if url.username().is_empty() {
            None
        } else {
            let user = percent_decode(url.username());
            let password = percent_decode(url.password().unwrap_or(""));
            let token =
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
            let mut value = HeaderValue::from_str(&format!("Basic {token}")).map_err(|_| {
                StoreError::InvalidConfig(format!("{display_url}: bad credentials"))
            })?;
            value.set_sensitive(true);
            Some(value)
        };
        let mut base = url.clone();
        let _ = base.set_username("");
        let _ = base.set_password(None);
        base.set_query(None);
        base.set_fragment(None);
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        let client = reqwest::Client::builder()
            .connect_timeout(tuning.connect_timeout)
            // No overall timeout: an upload takes as long as the link needs; a stalled one is
            // caught by the read timeout.
            .read_timeout(tuning.timeout)
            .build()
            .map_err(|e| StoreError::InvalidConfig(format!("{display_url}: {e}")))?;
        Ok(WebDav {
            client,
            base,
            auth,
            display_url: display_url.to_string(),
        })
    }

    pub fn base_url(&self) -> &Url {
        &self.base
    }

    /// Headers for object_store's HTTP client, so reads and listings authenticate too.
    pub fn auth_headers(&self) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let Some(auth) = &self.auth {
            headers.insert(AUTHORIZATION, auth.clone());
        }
        headers
    }

    fn request(&self, method: Method, url: Url) -> reqwest::RequestBuilder {
        let request = self.client.request(method, url);
        match &self.auth {
            Some(auth) => request.header(AUTHORIZATION, auth.clone()),
            None => request,
        }
    }

    fn object_url(&self, name: &str) -> Result<Url, StoreError> {
        self.base
            .join(name)
            .map_err(|e| StoreError::failed(&self.display_url, e))
    }

    /// The status a `PROPFIND` (depth 0) of `url` gets.
    async fn propfind(&self, url: &Url) -> Result<StatusCode, StoreError> {
        let method =
            Method::from_bytes(b"PROPFIND").map_err(|e| StoreError::failed("PROPFIND", e))?;
        let response = self
            .request(method, url.clone())
            .header("Depth", "0")
            .send()
            .await
            .map_err(|e| StoreError::from_remote(&self.display_url, &e))?;
        let status = response.status();
        // A server that does not know PROPFIND is no WebDAV server (a plain web server, or one
        // with WebDAV off): saying so beats quoting its HTML error page.
        if matches!(
            status,
            StatusCode::METHOD_NOT_ALLOWED | StatusCode::NOT_IMPLEMENTED
        ) {
            return Err(StoreError::Failed(format!(
                "{}: the server answered PROPFIND with {status}: it is not a WebDAV server \
                 (or WebDAV is not enabled at this URL)",
                self.display_url
            )));
        }
        Ok(status)
    }

    /// Explains a listing that failed: the error when the server does not speak WebDAV at all.
    pub async fn check_server(&self) -> Result<(), StoreError> {
        self.propfind(&self.base).await.map(|_| ())
    }

    /// Whether the collection at `url` exists. Only a 404 says no: a 401/403 on an ancestor
    /// outside the user's scope (Nextcloud, a reverse proxy) is a collection we cannot see.
    async fn collection_exists(&self, url: &Url) -> Result<bool, StoreError> {
        Ok(self.propfind(url).await? != StatusCode::NOT_FOUND)
    }

    /// Creates the base collection and whichever of its parents are missing.
    pub async fn ensure_collections(&self) -> Result<(), StoreError> {
        let mut missing = Vec::new();
        let mut url = self.base.clone();
        loop {
            if self.collection_exists(&url).await? {
                break;
            }
            missing.push(url.clone());
            let Ok(parent) = url.join("..") else { break };
            if parent == url {
                break;
            }
            url = parent;
        }
        for url in missing.iter().rev() {
            let method =
                Method::from_bytes(b"MKCOL").map_err(|e| StoreError::failed("MKCOL", e))?;
            let response = self
                .request(method, url.clone())
                .send()
                .await
                .map_err(|e| StoreError::from_remote(&self.display_url, &e))?;
            let status = response.status();
            // 405: it exists after all (created concurrently).
            if !(status.is_success() || status == StatusCode::METHOD_NOT_ALLOWED) {
                return Err(self.status_error(&format!("MKCOL {}", url.path()), status));
            }
        }
        Ok(())
    }

    fn status_error(&self, what: &str, status: StatusCode) -> StoreError {
        let message = format!("{}: {what} answered {status}", self.display_url);
        // Only writes come here: a 404 on a write is a server refusing it, not a missing backup.
        match status {
            StatusCode::BAD_GATEWAY
            | StatusCode::SERVICE_UNAVAILABLE
            | StatusCode::GATEWAY_TIMEOUT => StoreError::Unreachable(message),
            _ => StoreError::Failed(message),
        }
    }

    /// PUTs `size` bytes from `chunks` as one streamed request body.
    pub async fn put_stream<S>(&self, name: &str, chunks: S, size: u64) -> Result<(), StoreError>
    where
        S: futures_util::Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static,
    {
        let url = self.object_url(name)?;
        let response = self
            .request(Method::PUT, url)
            .header(CONTENT_LENGTH, size)
            .body(reqwest::Body::wrap_stream(chunks))
            .send()
            .await
            .map_err(|e| StoreError::from_remote(&format!("{}/{name}", self.display_url), &e))?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(self.status_error(&format!("PUT {name}"), status))
        }
    }

    /// Removes what a failed upload may have left; best effort.
    pub async fn delete_quietly(&self, name: &str) {
        if let Ok(url) = self.object_url(name) {
            let sent = self.request(Method::DELETE, url).send();
            let _ = tokio::time::timeout(Duration::from_secs(30), sent).await;
        }
    }
}

pub(crate) fn percent_decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8_lossy()
        .into_owned()
}
