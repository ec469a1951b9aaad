//! Listing: sidecars describe complete backups; a .tar without one (copied there by hand, or
//! left by an older tool) is described from its own backup.json with ranged reads.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Cursor;
use std::ops::Range;
use std::path::Path;

use futures_util::stream::{self, StreamExt};
use object_store::ObjectStoreExt;
use serde_json::Value;

use super::error::StoreError;
use super::{Metadata, StoreAgent, SIDECAR_SUFFIX, TAR_SUFFIX};
use crate::archive::{is_valid_slug, read_backup_json, sync_metadata, MAX_METADATA};
use crate::common::redact::redact_urls;

/// A backup found in the store: its slug and the metadata describing it.
#[derive(Debug, Clone)]
pub struct Listed {
    pub slug: String,
    pub metadata: Metadata,
}

/// Sidecars and headers fetched at once.
const CONCURRENT_READS: usize = 8;
/// backup.json in one request (it is the first member and a few hundred bytes).
const HEAD_BYTES: u64 = 64 * 1024;

impl StoreAgent {
    async fn read_range(&self, name: &str, range: Range<u64>) -> Result<bytes::Bytes, StoreError> {
        self.store()
            .get_range(&self.key(name), range)
            .await
            .map_err(|e| StoreError::from_remote(&self.describe(name), &e))
    }

    /// Reads backup.json out of a stored .tar without downloading the rest: the first 64 KiB,
    /// and only for an unusually large backup.json as much more as it may take.
    async fn backup_json(&self, slug: &str, size: u64) -> Result<Metadata, StoreError> {
        let name = Self::tar_name(slug);
        let what = self.describe(&name);
        let mut head_len = size.min(HEAD_BYTES);
        loop {
            let head = self.read_range(&name, 0..head_len).await?;
            match read_backup_json(Cursor::new(&head[..]), Path::new(&what)) {
                Ok(mut info) => {
                    info.size = size;
                    return Ok(sync_metadata(&info));
                }
                Err(_) if head_len < size && head_len < MAX_METADATA => {
                    head_len = size.min(MAX_METADATA + HEAD_BYTES);
                }
                Err(err) => return Err(StoreError::Failed(redact_urls(&err.to_string()))),
            }
        }
    }

    /// The metadata of stored backup `slug` (`size` bytes): its sidecar's, or, without a
    /// readable one, what its backup.json says.
    async fn describe_stored(
        &self,
        slug: &str,
        size: u64,
        has_sidecar: bool,
    ) -> Result<Metadata, StoreError> {
        if has_sidecar {
            match self.read_sidecar(slug).await {
                Ok(Some(m)) => return Ok(m),
                // Deleted between the listing and now: describe the .tar itself.
                Ok(None) => {}
                Err(err @ StoreError::Unreachable(_)) => return Err(err),
                Err(err) => {
                    log::warn!(target: "habackup.agent", "{err}; reading its backup.json");
                }
            }
        }
        self.backup_json(slug, size).await
    }

    /// The metadata of one stored backup, as the listing gives it; `NotFound` without one.
    pub async fn describe_backup(&self, slug: &str) -> Result<Metadata, StoreError> {
        super::check_slug(slug)?;
        let tar = Self::tar_name(slug);
        let size = match self.store().head(&self.key(&tar)).await {
            Ok(meta) => meta.size,
            Err(object_store::Error::NotFound { .. }) => {
                return Err(StoreError::NotFound(format!(
                    "backup {slug} not found at {}",
                    self.display_url()
                )))
            }
            Err(err) => return Err(StoreError::from_remote(&self.describe(&tar), &err)),
        };
        let mut metadata = self.describe_stored(slug, size, true).await?;
        metadata.insert("slug".into(), Value::from(slug));
        Ok(metadata)
    }

    /// Every backup under the prefix, oldest first.
    pub async fn list(&self) -> Result<Vec<Listed>, StoreError> {
        let prefix = (!self.config.prefix.as_ref().is_empty()).then_some(&self.config.prefix);
        let listing = match self.config.listing.list_with_delimiter(prefix).await {
            Ok(listing) => listing.objects,
            // A prefix nothing was uploaded to yet (a WebDAV collection, say) holds no backups.
            Err(object_store::Error::NotFound { .. }) => Vec::new(),
            Err(err) => {
                let failure = StoreError::from_remote(self.display_url(), &err);
                if let (StoreError::Failed(_), Some(webdav)) = (&failure, &self.config.webdav) {
                    webdav.check_server().await?;
                }
                return Err(failure);
            }
        };
        let mut tars: BTreeMap<String, u64> = BTreeMap::new();
        let mut sidecars: BTreeSet<String> = BTreeSet::new();
        for object in listing {
            let Some(file) = object.location.filename() else {
                continue;
            };
            if let Some(slug) = file.strip_suffix(SIDECAR_SUFFIX) {
                sidecars.insert(slug.to_string());
            } else if let Some(slug) = file.strip_suffix(TAR_SUFFIX) {
                if is_valid_slug(slug) {
                    tars.insert(slug.to_string(), object.size);
                }
            }
        }
        for orphan in sidecars.iter().filter(|s| !tars.contains_key(*s)) {
            log::warn!(
                target: "habackup.agent",
                "{}: skipping {orphan}{SIDECAR_SUFFIX}, its backup {orphan}{TAR_SUFFIX} is missing",
                self.display_url()
            );
        }
        let reads = tars.into_iter().map(|(slug, size)| {
            let has_sidecar = sidecars.contains(&slug);
            async move {
                let described = self.describe_stored(&slug, size, has_sidecar).await;
                (slug, described)
            }
        });
        let mut found: Vec<(String, Result<Metadata, StoreError>)> = stream::iter(reads)
            .buffer_unordered(CONCURRENT_READS)
            .collect()
            .await;
        found.sort_by(|a, b| a.0.cmp(&b.0));
        let mut listed = Vec::new();
        for (slug, described) in found {
            match described {
                Ok(mut metadata) => {
                    metadata.insert("slug".into(), Value::from(slug.clone()));
                    listed.push(Listed { slug, metadata });
                }
                Err(err @ StoreError::Unreachable(_)) => return Err(err),
                Err(err) => {
                    log::warn!(target: "habackup.agent", "skipping {slug}: {err}");
                }
            }
        }
        listed.sort_by(|a, b| {
            let date = |l: &Listed| {
                l.metadata
                    .get("date")
                    .and_then(Value::as_str)
                    .map(str::to_string)
            };
            date(a).cmp(&date(b))
        });
        Ok(listed)
    }
}
