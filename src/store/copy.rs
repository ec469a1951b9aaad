//! Copies between stores: the source's verified download streamed straight into the
//! destination's upload, no temp file; the destination checks size and sha256 before its copy
//! appears, and its sidecar is written last.

use futures_util::StreamExt;
use serde_json::Value;
use tokio::sync::mpsc;

use super::error::StoreError;
use super::{Metadata, Progress, StoreAgent};
use crate::archive::CancelToken;

/// What a copy did: the metadata stored at the destination, and whether any bytes went there
/// (`false`: it already held the same backup).
#[derive(Debug, Clone)]
pub struct Copied {
    pub metadata: Metadata,
    pub sent: bool,
}

impl StoreAgent {
    /// Whether the backup described by `metadata` (slug and sha256) is already here, whole.
    async fn holds(&self, metadata: &Metadata) -> Result<bool, StoreError> {
        let (Some(slug), Some(sha)) = (
            metadata.get("slug").and_then(Value::as_str),
            metadata.get("sha256").and_then(Value::as_str),
        ) else {
            return Ok(false);
        };
        let stored = match self.read_sidecar(slug).await {
            Ok(stored) => stored,
            Err(StoreError::Failed(_)) => None,
            Err(err) => return Err(err),
        };
        let same = stored
            .as_ref()
            .and_then(|m| m.get("sha256"))
            .and_then(Value::as_str)
            .is_some_and(|have| have.eq_ignore_ascii_case(sha));
        Ok(same && self.exists(&Self::tar_name(slug)).await?)
    }

    /// Copies backup `slug` from `self` to `dest`. A copy already there with the same sha256 is
    /// left as it is and nothing is sent.
    pub async fn copy_to(
        &self,
        slug: &str,
        dest: &StoreAgent,
        progress: Option<Progress>,
        cancel: &CancelToken,
    ) -> Result<Copied, StoreError> {
        let metadata = cancel.run(self.describe_backup(slug)).await??;
        if cancel.run(dest.holds(&metadata)).await?? {
            log::info!(
                target: "habackup.agent",
                "{} already holds {slug}",
                dest.display_url()
            );
            return Ok(Copied {
                metadata,
                sent: false,
            });
        }
        let mut download = cancel.run(self.open_download(slug)).await??;
        let size = download.size;
        let (tx, rx) = mpsc::channel(2);
        // Owns the sender: the upload sees the end of the stream when the pump is done.
        let pumping = async move {
            while let Some(chunk) = download.next().await {
                if tx.send(chunk?).await.is_err() {
                    break;
                }
            }
            Ok::<(), StoreError>(())
        };
        let mut sent_metadata = metadata;
        // The sidecar's size and digest travel along: the destination refuses other bytes.
        sent_metadata.insert("size".into(), Value::from(size));
        let uploading = dest.upload_stream(sent_metadata, rx, progress, cancel);
        let (pumped, uploaded) = tokio::join!(
            async {
                let pumped = pumping.await;
                if pumped.is_err() {
                    // A source that failed must not end up stored as a shorter backup.
                    cancel.cancel();
                }
                pumped
            },
            uploading
        );
        // The source's own failure explains a destination that got fewer bytes.
        pumped?;
        Ok(Copied {
            metadata: uploaded?,
            sent: true,
        })
    }
}
