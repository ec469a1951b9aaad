//! Downloads: streamed into a temp file beside the destination on the blocking pool (hashing as
//! it goes), checked against the sidecar's size and sha256, then renamed into place. Whatever
//! goes wrong, nothing is left at the destination.

use std::io::Write;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures_util::StreamExt;
use object_store::ObjectStoreExt;
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use super::error::StoreError;
use super::upload::hex;
use super::{check_slug, unless_cancelled, Progress, StoreAgent};
use crate::archive::atomic::TempFile;
use crate::archive::{self, CancelFlag, IoContext};

/// What the sidecar promises about the .tar.
struct Expected {
    size: u64,
    sha256: Option<String>,
}

struct Written {
    temp: TempFile,
    size: u64,
    sha256: String,
}

fn start_writer(
    dest: PathBuf,
) -> (
    mpsc::Sender<Bytes>,
    tokio::task::JoinHandle<Result<Written, StoreError>>,
) {
    let (tx, mut rx) = mpsc::channel::<Bytes>(4);
    let writer = tokio::task::spawn_blocking(move || {
        if let Some(dir) = dest.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).at(dir)?;
        }
        let mut temp = TempFile::create_beside(&dest)?;
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        while let Some(chunk) = rx.blocking_recv() {
            hasher.update(&chunk);
            size += chunk.len() as u64;
            let path = temp.path().to_path_buf();
            temp.file().write_all(&chunk).at(&path)?;
        }
        Ok(Written {
            temp,
            size,
            sha256: hex(&hasher.finalize()),
        })
    });
    (tx, writer)
}

impl StoreAgent {
    async fn expected(&self, slug: &str) -> Result<Expected, StoreError> {
        if let Some(sidecar) = self.read_sidecar(slug).await? {
            let what = self.describe(&Self::sidecar_name(slug));
            let size = sidecar
                .get("size")
                .and_then(Value::as_u64)
                .ok_or_else(|| StoreError::failed(&what, "no 'size' in the sidecar"))?;
            let sha256 = sidecar
                .get("sha256")
                .and_then(Value::as_str)
                .map(str::to_ascii_lowercase);
            return Ok(Expected { size, sha256 });
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

    /// Downloads backup `slug` to `dest` (a file path), verified before it appears there.
    pub async fn download(
        &self,
        slug: &str,
        dest: &Path,
        progress: Option<Progress>,
        cancel: &CancelFlag,
    ) -> Result<(), StoreError> {
        check_slug(slug)?;
        let expected = unless_cancelled(cancel, self.expected(slug)).await??;
        let tar = Self::tar_name(slug);
        let what = self.describe(&tar);
        let (tx, writer) = start_writer(dest.to_path_buf());
        let streamed = async {
            let got = self
                .store()
                .get(&self.key(&tar))
                .await
                .map_err(|e| StoreError::from_remote(&what, &e))?;
            let mut stream = got.into_stream();
            let mut done = 0u64;
            if let Some(progress) = &progress {
                progress(0, expected.size);
            }
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(|e| StoreError::from_remote(&what, &e))?;
                done += chunk.len() as u64;
                if done > expected.size {
                    return Err(StoreError::failed(
                        &what,
                        format!("more data than the {} bytes expected", expected.size),
                    ));
                }
                if tx.send(chunk).await.is_err() {
                    // The writer failed; its own error says why.
                    break;
                }
                if let Some(progress) = &progress {
                    progress(done, expected.size);
                }
            }
            Ok(())
        };
        let streamed = unless_cancelled(cancel, streamed).await;
        drop(tx);
        let written = writer
            .await
            .map_err(|e| StoreError::Failed(format!("file writer failed: {e}")))?;
        // Dropping `written` (its TempFile) on any error below removes the partial file.
        let written = match (streamed, written) {
            (Err(err), _) | (Ok(Err(err)), _) => return Err(err),
            (Ok(Ok(())), Err(err)) => return Err(err),
            (Ok(Ok(())), Ok(written)) => written,
        };
        if written.size != expected.size {
            return Err(StoreError::failed(
                &what,
                format!(
                    "downloaded {} bytes, expected {}; nothing was kept",
                    written.size, expected.size
                ),
            ));
        }
        if let Some(sha) = &expected.sha256 {
            if *sha != written.sha256 {
                return Err(StoreError::failed(
                    &what,
                    "the download does not match its sha256; nothing was kept",
                ));
            }
        }
        let dest = dest.to_path_buf();
        let slug = slug.to_string();
        let what_owned = what.clone();
        let cancel = cancel.clone();
        tokio::task::spawn_blocking(move || -> Result<(), StoreError> {
            let info = archive::read_backup(written.temp.path())
                .map_err(|e| StoreError::failed(&what_owned, format!("not a valid backup: {e}")))?;
            if info.slug != slug {
                return Err(StoreError::failed(
                    &what_owned,
                    format!("the backup inside has slug {}", info.slug),
                ));
            }
            // Last chance: a download cancelled by now must not appear at `dest`.
            cancel.check()?;
            written.temp.commit(&dest)?;
            Ok(())
        })
        .await
        .map_err(|e| StoreError::Failed(format!("file task failed: {e}")))?
    }
}
