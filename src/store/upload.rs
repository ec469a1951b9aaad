//! Uploads: a backup file, or a stream of its bytes, goes up as `<slug>.tar` (see `send`), then
//! its sidecar. A copy with the same bytes already there is left alone; one with other bytes
//! loses its sidecar first, so no sidecar ever describes a .tar that is being replaced.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use object_store::{ObjectStoreExt, PutPayload};
use serde_json::Value;
use tokio::sync::mpsc;

use super::error::StoreError;
use super::send::Send;
use super::source::Source;
use super::{Metadata, Progress, StoreAgent};
use crate::archive::{self, is_valid_slug, sync_metadata, ArchiveError, CancelToken, IoContext};
use crate::common::digest::sha256_hex;

fn slug_of(metadata: &Metadata) -> Result<String, StoreError> {
    match metadata.get("slug") {
        Some(Value::String(slug)) if is_valid_slug(slug) => Ok(slug.clone()),
        other => Err(StoreError::Failed(format!(
            "metadata needs a 'slug' of letters, digits, '-' or '_', not {other:?}"
        ))),
    }
}

fn size_of(metadata: &Metadata) -> Option<u64> {
    metadata.get("size").and_then(Value::as_u64)
}

fn sha256_of(metadata: &Metadata) -> Option<String> {
    metadata
        .get("sha256")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_ascii_lowercase)
}

/// The metadata to store, checked against the file (or read from it when not given).
fn prepare(path: &Path, metadata: Option<Metadata>) -> Result<(Metadata, u64), StoreError> {
    let size = std::fs::metadata(path).at(path)?.len();
    let mut metadata = match metadata {
        Some(given) => given,
        None => sync_metadata(&archive::read_backup(path)?),
    };
    slug_of(&metadata)?;
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
        Ok(sha256_hex(file, &cancel).at(&path)?)
    })
    .await
    .map_err(|e| StoreError::Failed(format!("file task failed: {e}")))?
}

/// What an upload sends and how it was announced.
struct Upload {
    source: Source,
    metadata: Metadata,
    slug: String,
    size: Option<u64>,
    /// The digest promised: the file must match it, and an equal stored copy is kept.
    sha256: Option<String>,
    /// The local file, for errors about it.
    path: Option<PathBuf>,
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
        let (metadata, size) = tokio::task::spawn_blocking(move || prepare(&owned, metadata))
            .await
            .map_err(|e| StoreError::Failed(format!("file task failed: {e}")))??;
        let upload = Upload {
            slug: slug_of(&metadata)?,
            sha256: sha256_of(&metadata),
            source: Source::File {
                path: path.to_path_buf(),
                size,
            },
            metadata,
            size: Some(size),
            path: Some(path.to_path_buf()),
        };
        self.store_backup(upload, progress, cancel).await
    }

    /// Uploads a backup whose bytes arrive through `chunks` (closed by the sender when the
    /// backup is complete), described by `metadata` (its `slug`, and its `size` when known:
    /// then any other number of bytes fails the upload). Returns the metadata stored, with the
    /// size and sha256 of what was sent.
    pub async fn upload_stream(
        &self,
        metadata: Metadata,
        chunks: mpsc::Receiver<Bytes>,
        progress: Option<Progress>,
        cancel: &CancelToken,
    ) -> Result<Metadata, StoreError> {
        let upload = Upload {
            slug: slug_of(&metadata)?,
            size: size_of(&metadata),
            sha256: sha256_of(&metadata),
            source: Source::Stream(Some(chunks)),
            metadata,
            path: None,
        };
        self.store_backup(upload, progress, cancel).await
    }

    async fn store_backup(
        &self,
        mut upload: Upload,
        progress: Option<Progress>,
        cancel: &CancelToken,
    ) -> Result<Metadata, StoreError> {
        let tar = Self::tar_name(&upload.slug);
        let sidecar_name = Self::sidecar_name(&upload.slug);
        if let Some(progress) = &progress {
            progress(0, upload.size.unwrap_or(0));
        }
        let started = std::time::Instant::now();
        // A copy with these very bytes is already there (a repeated sync): nothing to send, and
        // nothing of it may be removed if this attempt fails. A copy with other bytes loses its
        // sidecar first, so no sidecar ever describes a .tar that is being replaced.
        let stored = match cancel.run(self.read_sidecar(&upload.slug)).await? {
            // An unreadable sidecar describes nothing: it is replaced like any other.
            Err(StoreError::Failed(_)) => Some(Metadata::new()),
            other => other?,
        };
        let stored_sha = stored.as_ref().and_then(sha256_of);
        let stored_size = stored.as_ref().and_then(size_of);
        if let (None, Some(path), Some(_)) = (&upload.sha256, &upload.path, &stored_sha) {
            if stored_size == upload.size {
                // A file uploaded without its digest may still be the stored copy: hashing it
                // here (a local read) is far cheaper than sending it again.
                upload.sha256 = Some(local_sha256(path, cancel).await?);
            }
        }
        let already = match (&stored_sha, &upload.sha256) {
            (Some(have), Some(want)) if have == want => cancel.run(self.exists(&tar)).await??,
            _ => false,
        };
        if stored.is_some() && !already {
            self.delete_object(&sidecar_name).await?;
        }
        let Upload {
            mut source,
            mut metadata,
            slug,
            size: announced,
            sha256,
            path,
        } = upload;
        let (size, sha) = if already {
            log::info!(target: "habackup.agent", "{} is already stored", self.describe(&tar));
            (
                announced.or(stored_size).unwrap_or(0),
                stored_sha.unwrap_or_default(),
            )
        } else {
            let verify = |sent: &(u64, String)| {
                check_digest(&slug, sha256.as_deref(), path.as_deref(), &sent.1)
            };
            let send = Send {
                agent: self,
                tar: &tar,
                size: announced,
                progress: &progress,
                cancel,
                verify: &verify,
            };
            send.run(&mut source).await?
        };
        metadata.insert("size".into(), Value::from(size));
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
        if let Some(progress) = &progress {
            progress(size, size);
        }
        log::info!(
            target: "habackup.agent",
            "uploaded {} ({size} bytes) in {:.1} s",
            self.describe(&tar),
            started.elapsed().as_secs_f64()
        );
        Ok(metadata)
    }
}

/// The bytes sent must be the ones promised.
fn check_digest(
    slug: &str,
    expected: Option<&str>,
    path: Option<&Path>,
    sent: &str,
) -> Result<(), StoreError> {
    match (expected, path) {
        (Some(expected), Some(path)) if expected != sent => Err(ArchiveError::invalid(
            path,
            "the file does not match the sha256 in its metadata (changed while uploading?)",
        )
        .into()),
        (Some(expected), None) if expected != sent => Err(StoreError::Failed(format!(
            "backup {slug}: the stream does not match the sha256 it was announced with"
        ))),
        _ => Ok(()),
    }
}
