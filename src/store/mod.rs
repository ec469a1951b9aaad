//! Backup sync agents on object stores (S3, GCS, Azure, WebDAV, SFTP, SMB, local folders,
//! memory), with no Python in the data path.
//!
//! Layout: `<prefix>/<slug>.tar` and its sidecar `<prefix>/<slug>.metadata.json`. The .tar is
//! written first and the sidecar last, so a sidecar always stands for a complete backup.

mod config;
mod download;
mod error;
mod listing;
mod net_config;
mod remote_fs;
mod remote_upload;
mod sftp;
mod smb;
mod ssh;
mod upload;
mod webdav;

use std::sync::Arc;
use std::time::Duration;

use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};
use serde_json::Map;
use serde_json::Value;

use crate::archive::CancelFlag;

pub use config::{Kind, Tuning};
pub use error::StoreError;
pub use listing::Listed;

/// `(bytes_done, bytes_total)`, called from tokio tasks.
pub type Progress = Arc<dyn Fn(u64, u64) + Send + Sync>;

/// The metadata dict stored beside each backup (design §2's `BackupSyncMetadata` and more).
pub type Metadata = Map<String, Value>;

/// One configured store and the prefix backups live under.
#[derive(Debug)]
pub struct StoreAgent {
    config: config::StoreConfig,
}

/// Slugs become object names; anything but `[A-Za-z0-9_-]` could escape the prefix.
pub fn is_valid_slug(slug: &str) -> bool {
    !slug.is_empty()
        && slug.len() <= 64
        && slug
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// An id asked for by a caller: one that cannot name an object is simply not there.
pub fn check_slug(slug: &str) -> Result<(), StoreError> {
    if is_valid_slug(slug) {
        Ok(())
    } else {
        Err(StoreError::NotFound(format!(
            "invalid backup id {slug:?}: expected letters, digits, '-' or '_'"
        )))
    }
}

/// The sidecar's fields for a backup described by its own backup.json.
fn metadata_of(info: crate::archive::BackupInfo, size: u64) -> Metadata {
    let mut m = Metadata::new();
    m.insert("date".into(), Value::from(info.date));
    m.insert("slug".into(), Value::from(info.slug));
    m.insert("size".into(), Value::from(size));
    m.insert("name".into(), Value::from(info.name));
    m.insert(
        "homeassistant".into(),
        Value::from(info.homeassistant_version.unwrap_or_default()),
    );
    m.insert("protected".into(), Value::from(info.protected));
    m.insert(
        "database_included".into(),
        Value::from(info.database_included),
    );
    m.insert("extra".into(), Value::Object(info.extra));
    m
}

/// Sidecars are a few hundred bytes; anything bigger is not ours and is not read whole.
const MAX_SIDECAR: u64 = 1024 * 1024;

const TAR_SUFFIX: &str = ".tar";
const SIDECAR_SUFFIX: &str = ".metadata.json";

impl StoreAgent {
    /// Parses the URL and options; no request is made until the first operation.
    pub fn new(url: &str, options: &[(String, String)]) -> Result<StoreAgent, StoreError> {
        Ok(StoreAgent {
            config: config::parse(url, options)?,
        })
    }

    pub fn display_url(&self) -> &str {
        &self.config.display_url
    }

    pub fn kind(&self) -> Kind {
        self.config.kind
    }

    pub fn tuning(&self) -> &Tuning {
        &self.config.tuning
    }

    fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.config.store
    }

    fn key(&self, name: &str) -> ObjectPath {
        self.config.prefix.clone().join(name)
    }

    fn tar_name(slug: &str) -> String {
        format!("{slug}{TAR_SUFFIX}")
    }

    fn sidecar_name(slug: &str) -> String {
        format!("{slug}{SIDECAR_SUFFIX}")
    }

    /// `<url>/<name>`, for messages.
    fn describe(&self, name: &str) -> String {
        format!("{}/{name}", self.config.display_url)
    }

    /// Whether `name` exists: Ok(false) for not found, an error for anything else.
    async fn exists(&self, name: &str) -> Result<bool, StoreError> {
        match self.store().head(&self.key(name)).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(err) => Err(StoreError::from_remote(&self.describe(name), &err)),
        }
    }

    /// The sidecar of `slug` as a JSON object; None when there is none.
    async fn read_sidecar(&self, slug: &str) -> Result<Option<Metadata>, StoreError> {
        let name = Self::sidecar_name(slug);
        let what = self.describe(&name);
        let got = match self.store().get(&self.key(&name)).await {
            Ok(got) => got,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(err) => return Err(StoreError::from_remote(&what, &err)),
        };
        if got.meta.size > MAX_SIDECAR {
            return Err(StoreError::failed(&what, "too big for a sidecar"));
        }
        let bytes = got
            .bytes()
            .await
            .map_err(|e| StoreError::from_remote(&what, &e))?;
        match serde_json::from_slice(&bytes) {
            Ok(Value::Object(map)) => Ok(Some(map)),
            _ => Err(StoreError::failed(&what, "not a JSON object")),
        }
    }

    async fn delete_object(&self, name: &str) -> Result<(), StoreError> {
        match self.store().delete(&self.key(name)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(err) => Err(StoreError::from_remote(&self.describe(name), &err)),
        }
    }

    /// Deletes a backup: sidecar first, so that a half-finished delete leaves a .tar that still
    /// lists (from its backup.json) rather than a sidecar pointing at nothing.
    pub async fn delete(&self, slug: &str) -> Result<(), StoreError> {
        check_slug(slug)?;
        let tar = Self::tar_name(slug);
        let sidecar = Self::sidecar_name(slug);
        let (has_tar, has_sidecar) = tokio::try_join!(self.exists(&tar), self.exists(&sidecar))?;
        if !has_tar && !has_sidecar {
            return Err(StoreError::NotFound(format!(
                "backup {slug} not found at {}",
                self.config.display_url
            )));
        }
        if has_sidecar {
            self.delete_object(&sidecar).await?;
        }
        if has_tar {
            self.delete_object(&tar).await?;
        }
        Ok(())
    }
}

/// Resolves once `cancel` is set; checked often enough to stop a transfer within a tick.
async fn cancelled(cancel: &CancelFlag) {
    while !cancel.is_cancelled() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Runs `work` unless `cancel` comes first.
async fn unless_cancelled<T>(
    cancel: &CancelFlag,
    work: impl std::future::Future<Output = T>,
) -> Result<T, StoreError> {
    tokio::select! {
        biased;
        () = cancelled(cancel) => Err(StoreError::Cancelled),
        out = work => Ok(out),
    }
}
