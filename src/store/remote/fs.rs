//! Object-store semantics on a file tree reached over the network (SFTP, SMB), so uploads,
//! downloads, listings and deletes in `src/store` run unchanged on a NAS.
//!
//! A file system is not an object store in three ways, handled here once for every protocol:
//! - Writes are not atomic: every put (whole or multipart) goes to a hidden temp name beside the
//!   object, `.<name>.<random>.habackup-partial`, and is renamed over the object only once
//!   complete, so a listed object is always whole. An aborted upload deletes its temp file.
//! - A killed process leaves its temp file behind: each new put sweeps its folder for temp
//!   files that are not this process's and have not been written to for an hour
//!   (`STALE_AFTER`), and listings never show temp files.
//! - Folders must exist before files do: they are created on demand.
//!
//! Connections drop: every call that can be repeated (connect, stat, list, open, rename, delete)
//! is retried with backoff after a connection-level failure, on a new connection.

use std::collections::HashSet;
use std::fmt::{self, Debug, Display};
use std::ops::Range;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures_util::stream::{self, BoxStream, StreamExt};
use object_store::path::Path as ObjectPath;
use object_store::{
    CopyOptions, GetOptions, GetResult, GetResultPayload, ListResult, MultipartUpload, ObjectMeta,
    ObjectStore, PutMode, PutMultipartOptions, PutOptions, PutPayload, PutResult, RenameOptions,
    RenameTargetMode, RetryConfig,
};
use thiserror::Error;

/// What went wrong on a remote file system, sorted the way `StoreError` sorts it.
#[derive(Debug, Error, Clone)]
pub enum RemoteFsError {
    /// Refused, timed out or dropped: worth retrying on a new connection.
    #[error("{0}")]
    Unreachable(String),
    #[error("{0}")]
    NotFound(String),
    /// Something only the user's options can fix: a host key that is not pinned or does not
    /// match, a private key that cannot be read.
    #[error("{0}")]
    Config(String),
    /// The server refused the credentials.
    #[error("{0}")]
    Auth(String),
    #[error("{0}")]
    Failed(String),
}

impl RemoteFsError {
    fn is_transient(&self) -> bool {
        matches!(self, RemoteFsError::Unreachable(_))
    }
}

pub type RemoteResult<T> = Result<T, RemoteFsError>;

/// A file or folder in a listing.
#[derive(Debug, Clone)]
pub struct Entry {
    pub name: String,
    pub size: u64,
    pub modified: DateTime<Utc>,
    pub is_dir: bool,
}

pub type ByteStream = BoxStream<'static, RemoteResult<Bytes>>;

/// One protocol's file operations, on paths relative to the store's root ('/'-separated).
/// Implementations keep one connection and open a new one after `reset`.
#[async_trait]
pub trait RemoteFs: Send + Sync + Debug + 'static {
    /// "SFTP", "SMB": for object_store's error messages.
    const NAME: &'static str;
    /// Drops the connection; the next call connects again.
    async fn reset(&self);
    /// None when there is nothing at `path`.
    async fn stat(&self, path: &str) -> RemoteResult<Option<Entry>>;
    /// None when the folder does not exist. Without "." and "..".
    async fn list_dir(&self, path: &str) -> RemoteResult<Option<Vec<Entry>>>;
    /// The bytes of `range` (within the file's size), streamed.
    async fn read(&self, path: &str, range: Range<u64>) -> RemoteResult<ByteStream>;
    /// Creates or truncates `path` for writing; NotFound when its folder is missing.
    async fn create(&self, path: &str) -> RemoteResult<Box<dyn RemoteWriter>>;
    /// Creates one folder; an error when it exists is fine to return (it is ignored).
    async fn mkdir(&self, path: &str) -> RemoteResult<()>;
    /// Renames `from` to `to`, replacing what is at `to`.
    async fn rename_over(&self, from: &str, to: &str) -> RemoteResult<()>;
    /// Ok(false) when there was nothing to remove.
    async fn remove(&self, path: &str) -> RemoteResult<bool>;
}

/// A file being written from its start, in order.
#[async_trait]
pub trait RemoteWriter: Send {
    async fn write(&mut self, data: Bytes) -> RemoteResult<()>;
    /// Waits for every write to be acknowledged and closes the file.
    async fn finish(self: Box<Self>) -> RemoteResult<()>;
    /// Closes the file without caring how; the caller deletes it.
    async fn abandon(self: Box<Self>);
}

const TEMP_SUFFIX: &str = ".habackup-partial";
/// A temp file nobody has written to for this long belongs to an upload that died.
const STALE_AFTER: Duration = Duration::from_secs(3600);

fn is_temp(name: &str) -> bool {
    name.starts_with('.') && name.ends_with(TEMP_SUFFIX)
}

fn split_parent(path: &str) -> (&str, &str) {
    match path.rsplit_once('/') {
        Some((parent, name)) => (parent, name),
        None => ("", path),
    }
}

fn temp_name_for(path: &str) -> String {
    let (parent, name) = split_parent(path);
    let random = uuid::Uuid::new_v4().simple().to_string();
    let temp = format!(".{name}.{}{TEMP_SUFFIX}", &random[..12]);
    if parent.is_empty() {
        temp
    } else {
        format!("{parent}/{temp}")
    }
}

/// An [`ObjectStore`] over a [`RemoteFs`].
pub struct FsStore<F: RemoteFs> {
    inner: Arc<Inner<F>>,
}

pub(super) struct Inner<F> {
    pub(super) fs: F,
    retry: RetryConfig,
    /// Temp files of this process's uploads in progress: never swept as stale.
    pub(super) writing: Mutex<HashSet<String>>,
}

impl<F: RemoteFs> FsStore<F> {
    pub fn new(fs: F, retry: RetryConfig) -> Self {
        FsStore {
            inner: Arc::new(Inner {
                fs,
                retry,
                writing: Mutex::new(HashSet::new()),
            }),
        }
    }
}

impl<F: RemoteFs> Debug for FsStore<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FsStore({:?})", self.inner.fs)
    }
}

impl<F: RemoteFs> Display for FsStore<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", F::NAME)
    }
}

pub(super) fn to_object_error<F: RemoteFs>(err: RemoteFsError, path: &str) -> object_store::Error {
    match err {
        RemoteFsError::NotFound(_) => object_store::Error::NotFound {
            path: path.to_string(),
            source: Box::new(err),
        },
        _ => object_store::Error::Generic {
            store: F::NAME,
            source: Box::new(err),
        },
    }
}

impl<F: RemoteFs> Inner<F> {
    /// Runs `op` again on a new connection after a connection-level failure, with backoff,
    /// until `max_retries` or `retry_timeout` is reached.
    pub(super) async fn retry<T, Fut>(&self, mut op: impl FnMut() -> Fut) -> RemoteResult<T>
    where
        Fut: std::future::Future<Output = RemoteResult<T>>,
    {
        let started = tokio::time::Instant::now();
        let mut backoff = self.retry.backoff.init_backoff;
        let mut attempt = 0;
        loop {
            match op().await {
                Err(err)
                    if err.is_transient()
                        && attempt < self.retry.max_retries
                        && started.elapsed() < self.retry.retry_timeout =>
                {
                    attempt += 1;
                    log::info!(target: "habackup.agent", "{} retry {attempt} after: {err}", F::NAME);
                    self.fs.reset().await;
                    tokio::time::sleep(backoff).await;
                    backoff = backoff
                        .mul_f64(self.retry.backoff.base)
                        .min(self.retry.backoff.max_backoff);
                }
                other => return other,
            }
        }
    }

    /// Creates `path` for writing, making its folders first when they are missing.
    async fn create(&self, path: &str) -> RemoteResult<Box<dyn RemoteWriter>> {
        match self.fs.create(path).await {
            Err(RemoteFsError::NotFound(_)) => {
                let mut folder = String::new();
                let (parent, _) = split_parent(path);
                for part in parent.split('/').filter(|p| !p.is_empty()) {
                    if !folder.is_empty() {
                        folder.push('/');
                    }
                    folder.push_str(part);
                    // "Already exists" and "not allowed here" look alike on SFTP; the create
                    // below says which it was.
                    let _ = self.fs.mkdir(&folder).await;
                }
                self.fs.create(path).await
            }
            other => other,
        }
    }

    /// Writes `payload` to a temp file and renames it over `path`.
    async fn put_whole(&self, path: &str, payload: &PutPayload) -> RemoteResult<()> {
        let temp = temp_name_for(path);
        let written = async {
            let mut writer = self.create(&temp).await?;
            for chunk in payload.iter() {
                if let Err(err) = writer.write(chunk.clone()).await {
                    writer.abandon().await;
                    return Err(err);
                }
            }
            writer.finish().await?;
            self.fs.rename_over(&temp, path).await
        }
        .await;
        if written.is_err() {
            let _ = self.fs.remove(&temp).await;
        }
        written
    }

    /// Removes temp files in `folder` left by uploads that died (see `STALE_AFTER`).
    async fn sweep(&self, folder: &str) {
        let Ok(Some(entries)) = self.fs.list_dir(folder).await else {
            return;
        };
        let now = Utc::now();
        for entry in entries {
            if entry.is_dir || !is_temp(&entry.name) {
                continue;
            }
            let path = if folder.is_empty() {
                entry.name.clone()
            } else {
                format!("{folder}/{}", entry.name)
            };
            let idle = (now - entry.modified).to_std().unwrap_or_default();
            let ours = self
                .writing
                .lock()
                .map(|w| w.contains(&path))
                .unwrap_or(true);
            if ours || idle < STALE_AFTER {
                continue;
            }
            match self.fs.remove(&path).await {
                Ok(_) => log::info!(
                    target: "habackup.agent",
                    "removed {path}, left by an upload that did not finish ({} bytes)",
                    entry.size
                ),
                Err(err) => log::warn!(target: "habackup.agent", "could not remove {path}: {err}"),
            }
        }
    }

    fn meta(&self, location: &ObjectPath, entry: &Entry) -> ObjectMeta {
        ObjectMeta {
            location: location.clone(),
            last_modified: entry.modified,
            size: entry.size,
            e_tag: Some(format!(
                "{:x}-{:x}",
                entry.modified.timestamp_micros(),
                entry.size
            )),
            version: None,
        }
    }
}

#[async_trait]
impl<F: RemoteFs> ObjectStore for FsStore<F> {
    async fn put_opts(
        &self,
        location: &ObjectPath,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        if !matches!(opts.mode, PutMode::Overwrite) {
            return Err(not_supported::<F>("conditional put"));
        }
        let path = location.as_ref();
        let inner = &self.inner;
        inner.sweep(split_parent(path).0).await;
        inner
            .retry(|| inner.put_whole(path, &payload))
            .await
            .map_err(|e| to_object_error::<F>(e, path))?;
        Ok(PutResult {
            e_tag: None,
            version: None,
            extensions: Default::default(),
        })
    }

    async fn put_multipart_opts(
        &self,
        location: &ObjectPath,
        _opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        let path = location.as_ref().to_string();
        let temp = temp_name_for(&path);
        let inner = self.inner.clone();
        inner.sweep(split_parent(&path).0).await;
        let writer = inner
            .retry(|| inner.create(&temp))
            .await
            .map_err(|e| to_object_error::<F>(e, &path))?;
        if let Ok(mut writing) = inner.writing.lock() {
            writing.insert(temp.clone());
        }
        Ok(super::upload::start(inner, path, temp, writer))
    }

    async fn get_opts(
        &self,
        location: &ObjectPath,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        let path = location.as_ref();
        let inner = &self.inner;
        let entry = match inner.retry(|| inner.fs.stat(path)).await {
            Ok(Some(entry)) if !entry.is_dir => entry,
            Ok(_) => {
                return Err(to_object_error::<F>(
                    RemoteFsError::NotFound(format!("{path} does not exist")),
                    path,
                ))
            }
            Err(err) => return Err(to_object_error::<F>(err, path)),
        };
        let meta = inner.meta(location, &entry);
        options.check_preconditions(&meta)?;
        let range = match &options.range {
            Some(range) => range
                .as_range(entry.size)
                .map_err(|e| to_object_error::<F>(RemoteFsError::Failed(e.to_string()), path))?,
            None => 0..entry.size,
        };
        let stream = if options.head || range.is_empty() {
            stream::empty().boxed()
        } else {
            let opened = inner
                .retry(|| inner.fs.read(path, range.clone()))
                .await
                .map_err(|e| to_object_error::<F>(e, path))?;
            let owned = path.to_string();
            opened
                .map(move |chunk| chunk.map_err(|e| to_object_error::<F>(e, &owned)))
                .boxed()
        };
        Ok(GetResult {
            payload: GetResultPayload::Stream(stream),
            meta,
            range,
            attributes: Default::default(),
            extensions: Default::default(),
        })
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<ObjectPath>>,
    ) -> BoxStream<'static, object_store::Result<ObjectPath>> {
        let inner = self.inner.clone();
        locations
            .then(move |location| {
                let inner = inner.clone();
                async move {
                    let location = location?;
                    let path = location.as_ref();
                    match inner.retry(|| inner.fs.remove(path)).await {
                        Ok(_) => Ok(location),
                        Err(err) => Err(to_object_error::<F>(err, path)),
                    }
                }
            })
            .boxed()
    }

    fn list(
        &self,
        prefix: Option<&ObjectPath>,
    ) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        // Depth first, one folder listed at a time.
        let inner = self.inner.clone();
        let start = prefix.cloned().unwrap_or_default();
        stream::try_unfold(
            (vec![start], Vec::<ObjectMeta>::new()),
            move |(mut folders, mut ready)| {
                let inner = inner.clone();
                async move {
                    loop {
                        if let Some(meta) = ready.pop() {
                            return Ok(Some((meta, (folders, ready))));
                        }
                        let Some(folder) = folders.pop() else {
                            return Ok(None);
                        };
                        let path = folder.as_ref();
                        let entries = inner
                            .retry(|| inner.fs.list_dir(path))
                            .await
                            .map_err(|e| to_object_error::<F>(e, path))?
                            .unwrap_or_default();
                        for entry in entries.iter().filter(|e| !is_temp(&e.name)) {
                            let child = folder.clone().join(entry.name.as_str());
                            if entry.is_dir {
                                folders.push(child);
                            } else {
                                ready.push(inner.meta(&child, entry));
                            }
                        }
                    }
                }
            },
        )
        .boxed()
    }

    async fn list_with_delimiter(
        &self,
        prefix: Option<&ObjectPath>,
    ) -> object_store::Result<ListResult> {
        let folder = prefix.cloned().unwrap_or_default();
        let path = folder.as_ref();
        let inner = &self.inner;
        let entries = inner
            .retry(|| inner.fs.list_dir(path))
            .await
            .map_err(|e| to_object_error::<F>(e, path))?
            .unwrap_or_default();
        let mut listed = ListResult {
            common_prefixes: Vec::new(),
            objects: Vec::new(),
            extensions: Default::default(),
        };
        for entry in entries.iter().filter(|e| !is_temp(&e.name)) {
            let child = folder.clone().join(entry.name.as_str());
            if entry.is_dir {
                listed.common_prefixes.push(child);
            } else {
                listed.objects.push(inner.meta(&child, entry));
            }
        }
        Ok(listed)
    }

    async fn copy_opts(
        &self,
        _from: &ObjectPath,
        _to: &ObjectPath,
        _options: CopyOptions,
    ) -> object_store::Result<()> {
        Err(not_supported::<F>("copy"))
    }

    async fn rename_opts(
        &self,
        from: &ObjectPath,
        to: &ObjectPath,
        options: RenameOptions,
    ) -> object_store::Result<()> {
        if !matches!(options.target_mode, RenameTargetMode::Overwrite) {
            return Err(not_supported::<F>("rename without overwrite"));
        }
        let inner = &self.inner;
        inner
            .retry(|| inner.fs.rename_over(from.as_ref(), to.as_ref()))
            .await
            .map_err(|e| to_object_error::<F>(e, from.as_ref()))
    }
}

fn not_supported<F: RemoteFs>(what: &str) -> object_store::Error {
    object_store::Error::NotSupported {
        source: format!("{what} is not supported on {}", F::NAME).into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_names_are_hidden_beside_the_object() {
        let temp = temp_name_for("a/b/x.tar");
        assert!(temp.starts_with("a/b/.x.tar."), "{temp}");
        assert!(is_temp(split_parent(&temp).1));
        assert!(is_temp(&temp_name_for("x.tar")));
        assert!(!is_temp("x.tar"));
        assert!(!is_temp(".hidden"));
        assert_eq!(split_parent("x"), ("", "x"));
    }
}
