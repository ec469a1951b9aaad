//! Sending an upload's bytes as one object: a single PUT for a small backup, a multipart upload
//! with a bounded number of parts in flight for a large one (or one of unknown size), a
//! streamed PUT for WebDAV. Memory stays near `part_size * (max_concurrency + 1)` whatever the
//! backup's size, and progress counts the bytes the store has acknowledged.

use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use object_store::{MultipartUpload, ObjectStoreExt, PutPayload};
use tokio::task::JoinSet;

use super::error::StoreError;
use super::source::{Reader, Source};
use super::throttle;
use super::{Kind, Progress, StoreAgent};
use crate::archive::CancelToken;

const MAX_PARTS: u64 = 10_000;

fn report(progress: &Option<Progress>, done: u64, total: u64) {
    if let Some(progress) = progress {
        progress(done, total);
    }
}

/// What a source read: its bytes and their sha256.
pub type Sent = (u64, String);
/// Checks what was read before the object is made visible.
pub type Verify<'a> = &'a (dyn Fn(&Sent) -> Result<(), StoreError> + Sync);

/// One object being sent.
pub struct Send<'a> {
    pub agent: &'a StoreAgent,
    pub tar: &'a str,
    /// The size known or announced; `None` for a stream of unknown length.
    pub size: Option<u64>,
    pub progress: &'a Option<Progress>,
    pub cancel: &'a CancelToken,
    pub verify: Verify<'a>,
}

impl Send<'_> {
    fn what(&self) -> String {
        self.agent.describe(self.tar)
    }

    fn total(&self) -> u64 {
        self.size.unwrap_or(0)
    }

    /// Under the agent's upload limit: waits until `bytes` more may go, and reports the limited
    /// feed (`fed` so far) as progress. Acknowledgements come in bursts of whole parts, or only
    /// at the end of a single PUT; the limited feed is the steady measure.
    async fn limited(&self, bytes: usize, fed: &mut u64) -> Result<(), StoreError> {
        let Some(limit) = self.agent.upload_throttle.as_deref() else {
            return Ok(());
        };
        self.cancel.run(limit.take(bytes)).await?;
        *fed += bytes as u64;
        report(self.progress, *fed, self.total().max(*fed));
        Ok(())
    }

    fn open(&self, source: &mut Source) -> Result<Reader, StoreError> {
        source.open(self.size, self.cancel).ok_or_else(|| {
            StoreError::Failed(format!(
                "{}: the upload's stream was already read",
                self.what()
            ))
        })
    }

    /// Sends the source's bytes; returns how many there were and their sha256.
    pub async fn run(&self, source: &mut Source) -> Result<Sent, StoreError> {
        match (self.agent.kind(), self.size) {
            (Kind::WebDav, _) => self.webdav(source).await,
            (_, Some(size)) if size <= self.agent.tuning().multipart_threshold => {
                let reader = self.open(source)?;
                self.single(reader).await
            }
            _ => {
                let reader = self.open(source)?;
                self.multipart(reader).await
            }
        }
    }

    /// Small backups: one request, the whole backup in memory (at most the threshold).
    async fn single(&self, mut reader: Reader) -> Result<Sent, StoreError> {
        let mut parts = Vec::new();
        let mut fed = 0u64;
        while let Some(chunk) = self.cancel.run(reader.chunks.recv()).await? {
            self.limited(chunk.len(), &mut fed).await?;
            parts.push(chunk);
        }
        let verdict = reader.finish().await?;
        (self.verify)(&verdict)?;
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
        report(self.progress, verdict.0, verdict.0);
        Ok(verdict)
    }

    async fn multipart(&self, mut reader: Reader) -> Result<Sent, StoreError> {
        let key = self.agent.key(self.tar);
        // Awaited, not raced: an upload id created after a cancel would never be aborted.
        let mut upload = self
            .agent
            .store()
            .put_multipart(&key)
            .await
            .map_err(|e| StoreError::from_remote(&self.what(), &e))?;
        let sent = self.send_parts(upload.as_mut(), &mut reader).await;
        let verdict = reader.finish().await;
        let outcome = match (sent, verdict) {
            (Err(err), _) | (Ok(()), Err(err)) => Err(err),
            (Ok(()), Ok(verdict)) => (self.verify)(&verdict).map(|()| verdict),
        };
        match outcome {
            Ok(verdict) => {
                // Completing is quick and must not be torn in half; cancellation waits for it.
                upload
                    .complete()
                    .await
                    .map_err(|e| StoreError::from_remote(&self.what(), &e))?;
                Ok(verdict)
            }
            Err(err) => {
                if let Err(abort) = upload.abort().await {
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

    /// Cuts the chunks into parts of one size (R2 wants them equal; S3 and GCS at least 5 MiB)
    /// and keeps at most `max_concurrency` of them in flight.
    async fn send_parts(
        &self,
        upload: &mut dyn MultipartUpload,
        reader: &mut Reader,
    ) -> Result<(), StoreError> {
        // S3 and GCS allow 10,000 parts: past ~78 GiB the parts grow instead of failing.
        let part_size = self
            .agent
            .tuning()
            .part_size
            .max(self.total().div_ceil(MAX_PARTS) as usize);
        let mut in_flight = InFlight {
            parts: JoinSet::new(),
            acked: 0,
            limit: self.agent.tuning().max_concurrency,
            send: self,
        };
        let buffers = PartBuffers::new(part_size, in_flight.limit + 1);
        let mut part = buffers.take();
        let mut sent_any = false;
        let mut fed = 0u64;
        loop {
            // Parts acknowledged while the source is slow (a throttled download being copied,
            // Home Assistant still writing its stream) count at once, not when the next part
            // needs their slot or at the end.
            let chunk = tokio::select! {
                biased;
                () = self.cancel.cancelled() => return Err(StoreError::Cancelled),
                joined = in_flight.parts.join_next(), if !in_flight.parts.is_empty() => {
                    in_flight.settle(joined)?;
                    continue;
                }
                chunk = reader.chunks.recv() => match chunk {
                    Some(chunk) => chunk,
                    None => break,
                },
            };
            self.limited(chunk.len(), &mut fed).await?;
            let mut rest = &chunk[..];
            while !rest.is_empty() {
                let take = (part_size - part.len()).min(rest.len());
                part.extend_from_slice(&rest[..take]);
                rest = &rest[take..];
                if part.len() == part_size {
                    // The next buffer is taken once a slot is free: at most `limit + 1` parts
                    // are ever held.
                    let full = std::mem::take(&mut part);
                    in_flight.start(upload, buffers.payload(full)).await?;
                    part = buffers.take();
                    sent_any = true;
                }
            }
            // The chunk is freed here, not when its part is acknowledged.
        }
        if !part.is_empty() || !sent_any {
            in_flight.start(upload, buffers.payload(part)).await?;
        }
        in_flight.drain().await
    }

    /// One streamed PUT, retried from the start of a file on a transient failure (a stream
    /// cannot be read twice: its caller retries with a new one).
    async fn webdav(&self, source: &mut Source) -> Result<Sent, StoreError> {
        let Some(webdav) = &self.agent.config.webdav else {
            return Err(StoreError::Failed("WebDAV client missing".into()));
        };
        let Some(size) = self.size else {
            return Err(StoreError::Failed(format!(
                "{}: WebDAV needs the size of an upload before it starts",
                self.what()
            )));
        };
        let retry = &self.agent.tuning().retry;
        self.cancel.run(webdav.ensure_collections()).await??;
        let mut attempt = 0;
        let mut backoff = retry.backoff.init_backoff;
        loop {
            let mut reader = self.open(source)?;
            let progress = self.progress.clone();
            let limit = self.agent.upload_throttle.clone();
            let chunks = std::mem::replace(&mut reader.chunks, tokio::sync::mpsc::channel(1).1);
            let body = futures_util::stream::unfold((chunks, 0u64), move |(mut rx, sent)| {
                let progress = progress.clone();
                let limit = limit.clone();
                async move {
                    let chunk = rx.recv().await?;
                    throttle::take(limit.as_deref(), chunk.len()).await;
                    let sent = sent + chunk.len() as u64;
                    report(&progress, sent, size);
                    Some((Ok::<_, std::io::Error>(chunk), (rx, sent)))
                }
            });
            let put = webdav.put_stream(self.tar, body, size);
            let sent = self.cancel.run(put).await;
            // The request is over; a client that still holds the body must not block the reader.
            let read = reader.finish().await;
            let err = match (sent, read) {
                (Err(cancelled), _) => {
                    webdav.delete_quietly(self.tar).await;
                    return Err(cancelled.into());
                }
                (Ok(Ok(())), Ok(verdict)) => {
                    if let Err(err) = (self.verify)(&verdict) {
                        webdav.delete_quietly(self.tar).await;
                        return Err(err);
                    }
                    return Ok(verdict);
                }
                // The source explains more than the broken request.
                (_, Err(source_err @ (StoreError::Archive(_) | StoreError::Failed(_)))) => {
                    webdav.delete_quietly(self.tar).await;
                    return Err(source_err);
                }
                (Ok(Ok(())), Err(err)) | (Ok(Err(err)), _) => err,
            };
            webdav.delete_quietly(self.tar).await;
            let transient = matches!(err, StoreError::Unreachable(_));
            if !transient || attempt >= retry.max_retries || !source.replayable() {
                return Err(err);
            }
            attempt += 1;
            log::info!(target: "habackup.agent", "retrying upload of {} ({err})", self.what());
            self.cancel.run(tokio::time::sleep(backoff)).await?;
            backoff = (backoff.mul_f64(retry.backoff.base)).min(retry.backoff.max_backoff);
        }
    }
}

/// A part's task, ended: its length and what the store said.
type Joined = Result<(usize, object_store::Result<()>), tokio::task::JoinError>;

/// The parts of a multipart upload on their way, and the bytes the store has acknowledged.
struct InFlight<'a, 'b> {
    parts: JoinSet<(usize, object_store::Result<()>)>,
    acked: u64,
    limit: usize,
    send: &'a Send<'b>,
}

impl InFlight<'_, '_> {
    async fn start(
        &mut self,
        upload: &mut dyn MultipartUpload,
        part: Bytes,
    ) -> Result<(), StoreError> {
        while self.parts.len() >= self.limit {
            self.settle_one().await?;
        }
        let len = part.len();
        let request = upload.put_part(part.into());
        self.parts.spawn(async move { (len, request.await) });
        Ok(())
    }

    async fn settle_one(&mut self) -> Result<(), StoreError> {
        let joined = self.send.cancel.run(self.parts.join_next()).await?;
        self.settle(joined)
    }

    /// Counts a part the store is done with, or fails with its error.
    fn settle(&mut self, joined: Option<Joined>) -> Result<(), StoreError> {
        let Some(joined) = joined else {
            return Ok(());
        };
        let (len, result) =
            joined.map_err(|e| StoreError::Failed(format!("upload task failed: {e}")))?;
        result.map_err(|e| StoreError::from_remote(&self.send.what(), &e))?;
        self.acked += len as u64;
        // Under a limit the throttled feed reports progress; acknowledgements, which come in
        // bursts of whole parts and lag behind it, would make the figures jump back and forth.
        if self.send.agent.upload_throttle.is_none() {
            report(
                self.send.progress,
                self.acked,
                self.send.total().max(self.acked),
            );
        }
        Ok(())
    }

    async fn drain(mut self) -> Result<(), StoreError> {
        while !self.parts.is_empty() {
            self.settle_one().await?;
        }
        Ok(())
    }
}

/// The buffers parts are gathered in, reused: a part copied into one of `keep` buffers of
/// `part_size` leaves the allocator nothing to fragment, where parts made of the 1 MiB chunks
/// they arrived in kept every chunk until the store acknowledged the part, and left the heap
/// with holes of every size (tens of MiB of RSS above the bound on a 1 GiB upload).
struct PartBuffers {
    free: Arc<Mutex<Vec<Vec<u8>>>>,
    part_size: usize,
    keep: usize,
}

/// A part's bytes, handed back to its `PartBuffers` once the store is done with them.
struct PooledPart {
    bytes: Vec<u8>,
    free: Arc<Mutex<Vec<Vec<u8>>>>,
    keep: usize,
}

impl PartBuffers {
    fn new(part_size: usize, keep: usize) -> Self {
        PartBuffers {
            free: Arc::new(Mutex::new(Vec::with_capacity(keep))),
            part_size,
            keep,
        }
    }

    /// An empty buffer with room for a whole part.
    fn take(&self) -> Vec<u8> {
        let reused = self
            .free
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        reused.unwrap_or_else(|| Vec::with_capacity(self.part_size))
    }

    fn payload(&self, bytes: Vec<u8>) -> Bytes {
        Bytes::from_owner(PooledPart {
            bytes,
            free: Arc::clone(&self.free),
            keep: self.keep,
        })
    }
}

impl AsRef<[u8]> for PooledPart {
    fn as_ref(&self) -> &[u8] {
        &self.bytes
    }
}

impl Drop for PooledPart {
    fn drop(&mut self) {
        let mut bytes = std::mem::take(&mut self.bytes);
        bytes.clear();
        let mut free = self.free.lock().unwrap_or_else(PoisonError::into_inner);
        if free.len() < self.keep {
            free.push(bytes);
        }
    }
}
