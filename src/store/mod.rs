//! Backup sync agents on object stores (S3, GCS, Azure, WebDAV, SFTP, SMB, local folders,
//! memory), with no Python in the data path.
//!
//! Layout: `<prefix>/<slug>.tar` and its sidecar `<prefix>/<slug>.metadata.json`. The .tar is
//! written first and the sidecar last, so a sidecar always stands for a complete backup.
//!
//! `config` turns a URL and options into a store (`tuning` holds habackup's own options, and
//! `throttle` the bandwidth limits); one file per verb: `upload` (with `source`, where the bytes
//! come from, and `send`, how they go out), `download`, `listing`, `delete`, `verify`, `copy`;
//! `location` is a folder or a store alike for verify, copy and prune; `webdav` streams WebDAV
//! puts, `remote/` makes SFTP and SMB object stores, and `error` sorts what goes wrong. Slugs,
//! metadata and backup.json come from `archive`.

mod config;
mod copy;
mod delete;
mod download;
mod error;
mod listing;
mod location;
mod remote;
mod send;
mod source;
mod throttle;
mod tuning;
mod upload;
mod verify;
pub(crate) mod webdav;

use std::sync::Arc;

use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};
use serde_json::Map;
use serde_json::Value;

use crate::archive::is_valid_slug;

pub use config::Kind;
pub use download::Download;
pub use error::StoreError;
pub use listing::Listed;
pub use location::Location;
pub use tuning::Tuning;
pub use verify::StoredCheck;

pub use crate::common::Progress;

/// The metadata dict stored beside each backup (design §2's `BackupSyncMetadata` and more).
pub type Metadata = Map<String, Value>;

/// One configured store and the prefix backups live under.
#[derive(Debug)]
pub struct StoreAgent {
    config: config::StoreConfig,
    /// The bandwidth limits, shared by every transfer of this agent.
    upload_throttle: Option<Arc<throttle::Throttle>>,
    download_throttle: Option<Arc<throttle::Throttle>>,
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

/// Sidecars are a few hundred bytes; anything bigger is not ours and is not read whole.
const MAX_SIDECAR: u64 = 1024 * 1024;

const TAR_SUFFIX: &str = ".tar";
const SIDECAR_SUFFIX: &str = ".metadata.json";

impl StoreAgent {
    /// Parses the URL and options; no request is made until the first operation.
    pub fn new(url: &str, options: &[(String, String)]) -> Result<StoreAgent, StoreError> {
        let config = config::parse(url, options)?;
        let throttle =
            |limit: Option<u64>| limit.map(|rate| Arc::new(throttle::Throttle::new(rate)));
        Ok(StoreAgent {
            upload_throttle: throttle(config.tuning.limit_upload),
            download_throttle: throttle(config.tuning.limit_download),
            config,
        })
    }

    pub fn display_url(&self) -> &str {
        &self.config.display_url
    }

    /// The folder of a `file://` store.
    pub fn local_dir(&self) -> Option<std::path::PathBuf> {
        (self.config.kind == Kind::Local)
            .then(|| std::path::Path::new("/").join(self.config.prefix.as_ref()))
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
}
