//! Downloads. `open_download` streams a stored backup's bytes as they arrive, checked on the way
//! against the sidecar's size and sha256 (a mismatch is the stream's last item, an error, so a
//! consumer never takes a short or altered copy for the backup). `download` writes that stream
//! into a temp file beside the destination and renames it into place once its backup.json
//! checks out: whatever goes wrong, nothing is left at the destination, not even a directory
//! made for it.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::{Stream, StreamExt};
use object_store::ObjectStoreExt;
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use super::error::StoreError;
use super::throttle::{self, Throttle};
use super::{check_slug, Progress, StoreAgent};
use crate::archive::{self, BackupInfo, CancelToken, IoContext};
use crate::common::atomic::{CreatedDirs, TempFile};
use crate::common::digest::hex;

/// What the sidecar (or, without one, the object itself) promises about a stored .tar.
#[derive(Debug, Clone)]
struct Expected {
    size: u64,
    sha256: Option<String>,
}

/// A stored backup's bytes, checked as they pass.
pub struct Download {
    /// The size promised; the stream fails rather than yield more or end with less.
    pub size: u64,
    /// The sha256 promised, when the sidecar has one.
    pub sha256: Option<String>,
    stream: BoxStream<'static, Result<Bytes, StoreError>>,
}

impl Stream for Download {
    type Item = Result<Bytes, StoreError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.stream.as_mut().poll_next(cx)
    }
}

/// Counts and hashes `inner`; past the promised size, or at its end when the size or digest
/// differs, it yields an error instead.
fn verified(
    inner: BoxStream<'static, object_store::Result<Bytes>>,
    expected: Expected,
    what: String,
    limit: Option<Arc<Throttle>>,
) -> BoxStream<'static, Result<Bytes, StoreError>> {
    struct State {
        inner: BoxStream<'static, object_store::Result<Bytes>>,
        hasher: Option<Sha256>,
        done: u64,
    }
    let state = State {
        inner,
        hasher: Some(Sha256::new()),
        done: 0,
    };
    futures_util::stream::unfold(state, move |mut state| {
        let expected = expected.clone();
        let what = what.clone();
        let limit = limit.clone();
        async move {
            let hasher = state.hasher.as_mut()?;
            match state.inner.next().await {
                Some(Ok(chunk)) => {
                    throttle::take(limit.as_deref(), chunk.len()).await;
                    state.done += chunk.len() as u64;
                    if state.done > expected.size {
                        state.hasher = None;
                        let reason = format!("more data than the {} bytes expected", expected.size);
                        return Some((Err(StoreError::failed(&what, reason)), state));
                    }
                    hasher.update(&chunk);
                    Some((Ok(chunk), state))
                }
                Some(Err(err)) => {
                    state.hasher = None;
                    Some((Err(StoreError::from_remote(&what, &err)), state))
                }
                None => {
                    let digest = hex(&state.hasher.take()?.finalize());
                    let failure = if state.done != expected.size {
                        Some(format!(
                            "got {} bytes, expected {}",
                            state.done, expected.size
                        ))
                    } else if expected.sha256.as_ref().is_some_and(|sha| *sha != digest) {
                        Some("the data does not match its sha256".to_string())
                    } else {
                        None
                    };
                    let reason = failure?;
                    Some((Err(StoreError::failed(&what, reason)), state))
                }
            }
        }
    })
    .boxed()
}

impl StoreAgent {
    async fn expected(&self, slug: &str) -> Result<Expected, StoreError> {
        match self.read_sidecar(slug).await {
            Ok(Some(sidecar)) => {
                let size = sidecar.get("size").and_then(Value::as_u64);
                let sha256 = sidecar
                    .get("sha256")
                    .and_then(Value::as_str)
                    .map(str::to_ascii_lowercase);
                if let Some(size) = size {
                    return Ok(Expected { size, sha256 });
                }
                let what = self.describe(&Self::sidecar_name(slug));
                log::warn!(target: "habackup.agent", "{what}: no 'size'; checking the backup itself");
            }
            Ok(None) => {}
            Err(err @ StoreError::Failed(_)) => {
                // The listing described this backup from its backup.json; so does the download.
                log::warn!(target: "habackup.agent", "{err}; checking the backup itself");
            }
            Err(err) => return Err(err),
        }
        let tar = Self::tar_name(slug);
        match self.store().head(&self.key(&tar)).await {
            Ok(meta) => Ok(Expected {
                size: meta.size,
                sha256: None,
            }),
            Err(object_store::Error::NotFound { .. }) => Err(StoreError::NotFound(format!(
                "backup {slug} not found at {}",
                self.display_url()
            ))),
            Err(err) => Err(StoreError::from_remote(&self.describe(&tar), &err)),
        }
    }

    /// The stored bytes of backup `slug`, verified as they stream.
    pub async fn open_download(&self, slug: &str) -> Result<Download, StoreError> {
        check_slug(slug)?;
        let expected = self.expected(slug).await?;
        let tar = Self::tar_name(slug);
        let what = self.describe(&tar);
        let got = self
            .store()
            .get(&self.key(&tar))
            .await
            .map_err(|e| StoreError::from_remote(&what, &e))?;
        Ok(Download {
            size: expected.size,
            sha256: expected.sha256.clone(),
            stream: verified(
                got.into_stream(),
                expected,
                what,
                self.download_throttle.clone(),
            ),
        })
    }

    /// Downloads backup `slug` to `dest` (a file path, its directory created if missing),
    /// verified before it appears there. Returns the backup as its backup.json describes it,
    /// with the sha256 it was checked against, when the store had one.
    pub async fn download(
        &self,
        slug: &str,
        dest: &Path,
        progress: Option<Progress>,
        cancel: &CancelToken,
    ) -> Result<BackupInfo, StoreError> {
        let mut download = cancel.run(self.open_download(slug)).await??;
        let total = download.size;
        let (tx, writer) = start_writer(dest.to_path_buf());
        let streamed = async {
            let mut done = 0u64;
            if let Some(progress) = &progress {
                progress(0, total);
            }
            while let Some(chunk) = download.next().await {
                let chunk = chunk?;
                done += chunk.len() as u64;
                if tx.send(chunk).await.is_err() {
                    // The writer failed; its own error says why.
                    break;
                }
                if let Some(progress) = &progress {
                    progress(done, total);
                }
            }
            Ok::<(), StoreError>(())
        };
        let streamed = cancel.run(streamed).await;
        drop(tx);
        let written = writer
            .await
            .map_err(|e| StoreError::Failed(format!("file writer failed: {e}")))?;
        // Dropping the TempFile on any error below removes the partial file, then the
        // directories made for it go.
        let (temp, dirs) = match (streamed, written) {
            (Err(cancelled), _) => return Err(cancelled.into()),
            (Ok(Err(err)), _) | (Ok(Ok(())), Err(err)) => return Err(err),
            (Ok(Ok(())), Ok(written)) => written,
        };
        let checked_sha256 = download.sha256.clone();
        let dest = dest.to_path_buf();
        let expected = archive::Expected {
            slug: slug.to_string(),
            // Size and digest were checked on the way.
            size: None,
            sha256: None,
        };
        let shown = PathBuf::from(self.describe(&Self::tar_name(slug)));
        let cancel = cancel.clone();
        tokio::task::spawn_blocking(move || -> Result<BackupInfo, StoreError> {
            // Locals drop in reverse: on an error the temp file goes before its directories.
            let dirs = dirs;
            let temp = temp;
            let mut info = archive::check_backup_file(temp.path(), &shown, &expected, &cancel)
                .map_err(|e| match e {
                    archive::ArchiveError::Cancelled => StoreError::Cancelled,
                    // The stored object is at fault, not a local file: the agent's error.
                    other => StoreError::Failed(crate::common::redact::redact_urls(&format!(
                        "{other}; nothing was kept"
                    ))),
                })?;
            // Last chance: a download cancelled by now must not appear at `dest`.
            cancel.check()?;
            temp.commit(&dest).at(&dest)?;
            dirs.keep();
            info.path = Some(dest);
            info.sha256 = checked_sha256;
            Ok(info)
        })
        .await
        .map_err(|e| StoreError::Failed(format!("file task failed: {e}")))?
    }
}

/// The temp file a download was written to, and the directories made for it.
type Written = Result<(TempFile, CreatedDirs), StoreError>;

/// Writes the chunks it is sent into a temp file beside `dest`, on the blocking pool.
fn start_writer(dest: PathBuf) -> (mpsc::Sender<Bytes>, tokio::task::JoinHandle<Written>) {
    let (tx, mut rx) = mpsc::channel::<Bytes>(4);
    let writer = tokio::task::spawn_blocking(move || {
        let dirs = match dest.parent().filter(|d| !d.as_os_str().is_empty()) {
            Some(dir) => CreatedDirs::create(dir).at(dir)?,
            None => CreatedDirs::default(),
        };
        let mut temp = TempFile::create_beside(&dest).at(&dest)?;
        while let Some(chunk) = rx.blocking_recv() {
            temp.file().write_all(&chunk).at(&dest)?;
        }
        // The temp file goes before the directories on an error: fields drop in order.
        Ok((temp, dirs))
    });
    (tx, writer)
}
