//! Uploads: the file is read in chunks on the blocking pool (hashing as it goes) and streamed
//! to the store; above the threshold as a multipart upload with a bounded number of parts in
//! flight, so memory stays near `part_size * (max_concurrency + 1)` whatever the backup's size.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use bytes::{Bytes, BytesMut};
use object_store::{ObjectStoreExt, PutPayload, WriteMultipart};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;
use tokio::task::JoinHandle;

use super::error::StoreError;
use super::{Kind, Metadata, Progress, StoreAgent};
use crate::archive::{self, is_valid_slug, sync_metadata, ArchiveError, CancelToken, IoContext};
use crate::common::digest::hex;

const READ_CHUNK: usize = 1024 * 1024;
const MAX_PARTS: u64 = 10_000;
/// Chunks read ahead of the network; bounds the reader's share of memory.
const READ_AHEAD: usize = 4;

/// The file's chunks, and the reader's verdict (bytes read, sha256) once they are all sent.
struct Reader {
    chunks: mpsc::Receiver<Bytes>,
    done: JoinHandle<Result<(u64, String), StoreError>>,
    /// Set by the consumer when it stops reading but may still hold the receiver (an HTTP
    /// client that got its answer early): the reader must not wait on a full channel forever.
    stop: Arc<AtomicBool>,
}

impl Reader {
    fn start(path: PathBuf, size: u64, cancel: CancelToken) -> Reader {
        let (tx, chunks) = mpsc::channel(READ_AHEAD);
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let done = tokio::task::spawn_blocking(move || {
            let mut file = File::open(&path).at(&path)?;
            let mut hasher = Sha256::new();
            let mut total = 0u64;
            loop {
                cancel.check()?;
                let mut buf = BytesMut::zeroed(READ_CHUNK);
                let mut filled = 0;
                while filled < READ_CHUNK {
                    let n = file.read(&mut buf[filled..]).at(&path)?;
                    if n == 0 {
                        break;
                    }
                    filled += n;
                }
                if filled == 0 {
                    break;
                }
                buf.truncate(filled);
                hasher.update(&buf);
                total += filled as u64;
                if total > size {
                    break;
                }
                let mut chunk = buf.freeze();
                loop {
                    match tx.try_send(chunk) {
                        Ok(()) => break,
                        Err(TrySendError::Full(back)) => {
                            if stopped.load(Ordering::Relaxed) || cancel.is_cancelled() {
                                return Err(StoreError::Cancelled);
                            }
                            chunk = back;
                            std::thread::sleep(Duration::from_millis(2));
                        }
                        // The uploader stopped (failure or cancel) and says why itself.
                        Err(TrySendError::Closed(_)) => return Err(StoreError::Cancelled),
                    }
                }
            }
            if total != size {
                return Err(ArchiveError::invalid(
                    &path,
                    format!("the file changed size while it was uploaded ({size} bytes expected)"),
                )
                .into());
            }
            Ok((total, hex(&hasher.finalize())))
        });
        Reader { chunks, done, stop }
    }

    async fn finish(self) -> Result<(u64, String), StoreError> {
        drop(self.chunks);
        self.done
            .await
            .map_err(|e| StoreError::Failed(format!("file reader failed: {e}")))?
    }
}

/// The metadata to store, checked against the file (or read from it when not given).
fn prepare(path: &Path, metadata: Option<Metadata>) -> Result<(Metadata, u64), StoreError> {
    let size = std::fs::metadata(path).at(path)?.len();
    let mut metadata = match metadata {
        Some(given) => given,
        None => sync_metadata(&archive::read_backup(path)?),
    };
    match metadata.get("slug") {
        Some(Value::String(slug)) if is_valid_slug(slug) => {}
        other => {
            return Err(StoreError::Failed(format!(
                "metadata needs a 'slug' of letters, digits, '-' or '_', not {other:?}"
            )))
        }
    }
    match metadata.get("size") {
        None | Some(Value::Null) => {}
        Some(value) if value.as_u64() == Some(size) => {}
        Some(value) => {
            return Err(ArchiveError::invalid(
                path,
                format!("metadata says {value} bytes but the file has {size}"),
            )
            .into())
        }
    }
    metadata.insert("size".into(), Value::from(size));
    Ok((metadata, size))
}

async fn local_sha256(path: &Path, cancel: &CancelToken) -> Result<String, StoreError> {
    let path = path.to_path_buf();
    let cancel = cancel.clone();
    tokio::task::spawn_blocking(move || {
        let file = std::fs::File::open(&path).at(&path)?;
        Ok(crate::common::digest::sha256_hex(file, &cancel).at(&path)?)
    })
    .await
    .map_err(|e| StoreError::Failed(format!("file task failed: {e}")))?
}

fn report(progress: &Option<Progress>, done: u64, total: u64) {
    if let Some(progress) = progress {
        progress(done, total);
    }
}

impl StoreAgent {
    /// Uploads the backup at `path` and then its sidecar; returns the metadata stored.
    pub async fn upload(
        &self,
        path: &Path,
        metadata: Option<Metadata>,
        progress: Option<Progress>,
        cancel: &CancelToken,
    ) -> Result<Metadata, StoreError> {
        let owned = path.to_path_buf();
        let (mut metadata, size) = tokio::task::spawn_blocking(move || prepare(&owned, metadata))
            .await
            .map_err(|e| StoreError::Failed(format!("file task failed: {e}")))??;
        let slug = metadata
            .get("slug")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let mut expected_sha = metadata
            .get("sha256")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_ascii_lowercase);
        let tar = Self::tar_name(&slug);
        let sidecar_name = Self::sidecar_name(&slug);
        report(&progress, 0, size);
        let started = std::time::Instant::now();
        // A copy with these very bytes is already there (a repeated sync): nothing to send, and
        // nothing of it may be removed if this attempt fails. A copy with other bytes loses its
        // sidecar first, so no sidecar ever describes a .tar that is being replaced.
        let stored = match cancel.run(self.read_sidecar(&slug)).await? {
            // An unreadable sidecar describes nothing: it is replaced like any other.
            Err(StoreError::Failed(_)) => Some(Metadata::new()),
            other => other?,
        };
        let stored_sha = stored
            .as_ref()
            .and_then(|m| m.get("sha256"))
            .and_then(Value::as_str)
            .map(str::to_ascii_lowercase);
        let stored_size = stored
            .as_ref()
            .and_then(|m| m.get("size"))
            .and_then(Value::as_u64);
        if expected_sha.is_none() && stored_sha.is_some() && stored_size == Some(size) {
            // A file uploaded without its digest may still be the stored copy: hashing it here
            // (a local read) is far cheaper than sending it again.
            expected_sha = Some(local_sha256(path, cancel).await?);
        }
        let already = match (&stored_sha, &expected_sha) {
            (Some(have), Some(want)) if have == want => cancel.run(self.exists(&tar)).await??,
            _ => false,
        };
        if stored.is_some() && !already {
            self.delete_object(&sidecar_name).await?;
        }
        let sha = if already {
            log::info!(target: "habackup.agent", "{} is already stored", self.describe(&tar));
            stored_sha.unwrap_or_default()
        } else {
            let upload = UploadJob {
                agent: self,
                path,
                tar: &tar,
                size,
                expected_sha: expected_sha.as_deref(),
                progress: &progress,
                cancel,
            };
            match self.kind() {
                Kind::WebDav => upload.webdav().await?,
                _ if size <= self.tuning().multipart_threshold => upload.single().await?,
                _ => upload.multipart().await?,
            }
        };
        metadata.insert("sha256".into(), Value::from(sha));
        let sidecar = serde_json::to_vec_pretty(&Value::Object(metadata.clone()))
            .map_err(|e| StoreError::failed(&self.describe(&tar), e))?;
        let sidecar_key = self.key(&sidecar_name);
        // Not raced against cancellation: a dropped PUT may still land (a local write finishes
        // on its own thread), so it is awaited and undone instead.
        let put = self
            .store()
            .put(&sidecar_key, PutPayload::from(sidecar))
            .await;
        let failure = match put {
            Err(err) => Some(StoreError::from_remote(&self.describe(&sidecar_name), &err)),
            Ok(_) if cancel.is_cancelled() => {
                self.delete_object(&sidecar_name).await.ok();
                Some(StoreError::Cancelled)
            }
            Ok(_) => None,
        };
        if let Some(err) = failure {
            if !already {
                self.remove_quietly(&tar).await;
            }
            return Err(err);
        }
        report(&progress, size, size);
        log::info!(
            target: "habackup.agent",
            "uploaded {} ({size} bytes) in {:.1} s",
            self.describe(&tar),
            started.elapsed().as_secs_f64()
        );
        Ok(metadata)
    }
}

struct UploadJob<'a> {
    agent: &'a StoreAgent,
    path: &'a Path,
    tar: &'a str,
    size: u64,
    expected_sha: Option<&'a str>,
    progress: &'a Option<Progress>,
    cancel: &'a CancelToken,
}

impl UploadJob<'_> {
    fn what(&self) -> String {
        self.agent.describe(self.tar)
    }

    fn check_sha(&self, sha: &str) -> Result<(), StoreError> {
        match self.expected_sha {
            Some(expected) if expected != sha => Err(ArchiveError::invalid(
                self.path,
                "the file does not match the sha256 in its metadata (changed while uploading?)",
            )
            .into()),
            _ => Ok(()),
        }
    }

    fn reader(&self) -> Reader {
        Reader::start(self.path.to_path_buf(), self.size, self.cancel.clone())
    }

    /// Small backups: one request, the whole file in memory (at most the threshold).
    async fn single(&self) -> Result<String, StoreError> {
        let mut reader = self.reader();
        let mut parts = Vec::new();
        let mut done = 0u64;
        while let Some(chunk) = self.cancel.run(reader.chunks.recv()).await? {
            done += chunk.len() as u64;
            parts.push(chunk);
            report(self.progress, done, self.size);
        }
        let (_, sha) = reader.finish().await?;
        self.check_sha(&sha)?;
        let payload: PutPayload = parts.into_iter().collect();
        let key = self.agent.key(self.tar);
        // Awaited, not raced: a dropped PUT may still land; see the sidecar in `upload`.
        self.agent
            .store()
            .put(&key, payload)
            .await
            .map_err(|e| StoreError::from_remote(&self.what(), &e))?;
        if self.cancel.is_cancelled() {
            self.agent.remove_quietly(self.tar).await;
            return Err(StoreError::Cancelled);
        }
        Ok(sha)
    }

    async fn multipart(&self) -> Result<String, StoreError> {
        let key = self.agent.key(self.tar);
        // Awaited, not raced: an upload id created after a cancel would never be aborted.
        let upload = self
            .agent
            .store()
            .put_multipart(&key)
            .await
            .map_err(|e| StoreError::from_remote(&self.what(), &e))?;
        // S3 and GCS allow 10,000 parts: past ~78 GiB the parts grow instead of failing.
        let part_size = self
            .agent
            .tuning()
            .part_size
            .max(self.size.div_ceil(MAX_PARTS) as usize);
        let mut writer = WriteMultipart::new_with_chunk_size(upload, part_size);
        let mut reader = self.reader();
        let streamed = self.stream_parts(&mut writer, &mut reader).await;
        let read = reader.finish().await;
        let outcome = match (streamed, read) {
            (Err(err), _) | (Ok(()), Err(err)) => Err(err),
            (Ok(()), Ok((_, sha))) => self.check_sha(&sha).map(|()| sha),
        };
        match outcome {
            Ok(sha) => {
                // Completing is quick and must not be torn in half; cancellation waits for it.
                writer
                    .finish()
                    .await
                    .map_err(|e| StoreError::from_remote(&self.what(), &e))?;
                Ok(sha)
            }
            Err(err) => {
                if let Err(abort) = writer.abort().await {
                    log::warn!(
                        target: "habackup.agent",
                        "could not abort the multipart upload of {}: {}",
                        self.what(),
                        crate::common::redact::redact_urls(&abort.to_string())
                    );
                }
                Err(err)
            }
        }
    }

    async fn stream_parts(
        &self,
        writer: &mut WriteMultipart,
        reader: &mut Reader,
    ) -> Result<(), StoreError> {
        let concurrency = self.agent.tuning().max_concurrency;
        let mut done = 0u64;
        while let Some(chunk) = self.cancel.run(reader.chunks.recv()).await? {
            self.cancel
                .run(writer.wait_for_capacity(concurrency))
                .await?
                .map_err(|e| StoreError::from_remote(&self.what(), &e))?;
            done += chunk.len() as u64;
            writer.put(chunk);
            report(self.progress, done, self.size);
        }
        Ok(())
    }

    /// One streamed PUT, retried from the start of the file on a transient failure.
    async fn webdav(&self) -> Result<String, StoreError> {
        let Some(webdav) = &self.agent.config.webdav else {
            return Err(StoreError::Failed("WebDAV client missing".into()));
        };
        let retry = &self.agent.tuning().retry;
        self.cancel.run(webdav.ensure_collections()).await??;
        let mut attempt = 0;
        let mut backoff = retry.backoff.init_backoff;
        loop {
            let Reader { chunks, done, stop } = self.reader();
            let progress = self.progress.clone();
            let size = self.size;
            let body = futures_util::stream::unfold((chunks, 0u64), move |(mut rx, sent)| {
                let progress = progress.clone();
                async move {
                    let chunk = rx.recv().await?;
                    let sent = sent + chunk.len() as u64;
                    report(&progress, sent, size);
                    Some((Ok::<_, std::io::Error>(chunk), (rx, sent)))
                }
            });
            let put = webdav.put_stream(self.tar, body, self.size);
            let sent = self.cancel.run(put).await;
            // The request is over; a client that still holds the body must not block the reader.
            stop.store(true, Ordering::Relaxed);
            let read = done.await;
            match sent {
                Err(cancelled) => {
                    webdav.delete_quietly(self.tar).await;
                    return Err(cancelled.into());
                }
                Ok(Ok(())) => {
                    let (_, sha) =
                        read.map_err(|e| StoreError::Failed(format!("file reader failed: {e}")))??;
                    if let Err(err) = self.check_sha(&sha) {
                        webdav.delete_quietly(self.tar).await;
                        return Err(err);
                    }
                    return Ok(sha);
                }
                Ok(Err(err)) => {
                    webdav.delete_quietly(self.tar).await;
                    // A reader failure (the local file) explains more than the broken request.
                    if let Ok(Err(local @ StoreError::Archive(_))) = read {
                        return Err(local);
                    }
                    let transient = matches!(err, StoreError::Unreachable(_));
                    if !transient || attempt >= retry.max_retries {
                        return Err(err);
                    }
                    attempt += 1;
                    log::info!(target: "habackup.agent", "retrying upload of {} ({err})", self.what());
                    self.cancel.run(tokio::time::sleep(backoff)).await?;
                    backoff = (backoff.mul_f64(retry.backoff.base)).min(retry.backoff.max_backoff);
                }
            }
        }
    }
}
