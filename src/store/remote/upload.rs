//! Multipart uploads on a remote file system: parts are written in order into the temp file
//! `remote_fs.rs` opened, which is renamed over the object on completion and removed on abort
//! (or when the upload is dropped half way).

use std::fmt::{self, Debug};
use std::sync::Arc;

use async_trait::async_trait;
use object_store::{MultipartUpload, PutPayload, PutResult, UploadPart};
use tokio::sync::{mpsc, oneshot};

use super::fs::{to_object_error, Inner, RemoteFs, RemoteFsError, RemoteResult, RemoteWriter};

/// Starts the writer task for `temp` and returns the upload that feeds it.
pub(super) fn start<F: RemoteFs>(
    inner: Arc<Inner<F>>,
    path: String,
    temp: String,
    writer: Box<dyn RemoteWriter>,
) -> Box<dyn MultipartUpload> {
    let (parts, receiver) = mpsc::unbounded_channel();
    let task = tokio::spawn(write_parts(inner.clone(), writer, temp.clone(), receiver));
    Box::new(Upload {
        inner,
        path,
        temp,
        parts: Some(parts),
        task: Some(task),
    })
}

enum Part {
    Data(PutPayload, oneshot::Sender<RemoteResult<()>>),
    Finish(oneshot::Sender<RemoteResult<()>>),
    Abort(oneshot::Sender<()>),
}

/// The writer's side of a multipart upload: parts arrive in the order `put_part` was called
/// (object_store may poll their futures in any order) and are written one after the other.
/// `WriteMultipart` keeps at most `max_concurrency` parts in flight, which bounds the queue.
async fn write_parts<F: RemoteFs>(
    inner: Arc<Inner<F>>,
    mut writer: Box<dyn RemoteWriter>,
    temp: String,
    mut parts: mpsc::UnboundedReceiver<Part>,
) {
    let mut failed: Option<RemoteFsError> = None;
    while let Some(part) = parts.recv().await {
        match part {
            Part::Data(payload, done) => {
                if failed.is_none() {
                    for chunk in payload.iter() {
                        if let Err(err) = writer.write(chunk.clone()).await {
                            failed = Some(err);
                            break;
                        }
                    }
                }
                let _ = done.send(failed.clone().map_or(Ok(()), Err));
            }
            Part::Finish(done) => {
                let result = match failed {
                    Some(err) => {
                        writer.abandon().await;
                        Err(err)
                    }
                    None => writer.finish().await,
                };
                let _ = done.send(result);
                return;
            }
            Part::Abort(done) => {
                writer.abandon().await;
                let _ = inner.fs.remove(&temp).await;
                let _ = done.send(());
                return;
            }
        }
    }
    // The upload was dropped without complete or abort: clean up as abort would.
    writer.abandon().await;
    let _ = inner.fs.remove(&temp).await;
    forget(&inner, &temp);
}

fn forget<F>(inner: &Inner<F>, temp: &str) {
    if let Ok(mut writing) = inner.writing.lock() {
        writing.remove(temp);
    }
}

struct Upload<F: RemoteFs> {
    inner: Arc<Inner<F>>,
    path: String,
    temp: String,
    parts: Option<mpsc::UnboundedSender<Part>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl<F: RemoteFs> Debug for Upload<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Upload({} via {})", self.path, self.temp)
    }
}

impl<F: RemoteFs> Upload<F> {
    fn gone(&self) -> object_store::Error {
        to_object_error::<F>(
            RemoteFsError::Failed("the upload was already completed or aborted".into()),
            &self.path,
        )
    }

    async fn join(&mut self) {
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

#[async_trait]
impl<F: RemoteFs> MultipartUpload for Upload<F> {
    fn put_part(&mut self, data: PutPayload) -> UploadPart {
        let (done, answer) = oneshot::channel();
        let sent = self
            .parts
            .as_ref()
            .is_some_and(|parts| parts.send(Part::Data(data, done)).is_ok());
        let path = self.path.clone();
        Box::pin(async move {
            let failure = |reason: &str| {
                to_object_error::<F>(RemoteFsError::Failed(reason.to_string()), &path)
            };
            if !sent {
                return Err(failure("the upload is over"));
            }
            match answer.await {
                Ok(result) => result.map_err(|e| to_object_error::<F>(e, &path)),
                Err(_) => Err(failure("the upload's writer stopped")),
            }
        })
    }

    async fn complete(&mut self) -> object_store::Result<PutResult> {
        let parts = self.parts.take().ok_or_else(|| self.gone())?;
        let (done, answer) = oneshot::channel();
        let finished = if parts.send(Part::Finish(done)).is_ok() {
            answer.await.unwrap_or_else(|_| {
                Err(RemoteFsError::Failed("the upload's writer stopped".into()))
            })
        } else {
            Err(RemoteFsError::Failed("the upload's writer stopped".into()))
        };
        self.join().await;
        let inner = self.inner.clone();
        let result = match finished {
            Ok(()) => {
                inner
                    .retry(|| inner.fs.rename_over(&self.temp, &self.path))
                    .await
            }
            Err(err) => Err(err),
        };
        if result.is_err() {
            let _ = inner.fs.remove(&self.temp).await;
        }
        forget(&inner, &self.temp);
        result.map_err(|e| to_object_error::<F>(e, &self.path))?;
        Ok(PutResult {
            e_tag: None,
            version: None,
            extensions: Default::default(),
        })
    }

    async fn abort(&mut self) -> object_store::Result<()> {
        let parts = self.parts.take().ok_or_else(|| self.gone())?;
        let (done, answer) = oneshot::channel();
        if parts.send(Part::Abort(done)).is_ok() {
            let _ = answer.await;
        }
        self.join().await;
        forget(&self.inner, &self.temp);
        Ok(())
    }
}
