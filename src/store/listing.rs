//! Listing: sidecars describe complete backups; a .tar without one (copied there by hand, or
//! left by an older tool) is described from its own backup.json with ranged reads.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::path::Path;

use futures_util::stream::{self, StreamExt};
use object_store::ObjectStoreExt;
use serde_json::Value;

use super::error::StoreError;
use super::{metadata_of, Metadata, StoreAgent, SIDECAR_SUFFIX, TAR_SUFFIX};
use crate::archive::metadata::parse_backup_json;

/// A backup found in the store: its slug and the metadata describing it.
#[derive(Debug, Clone)]
pub struct Listed {
    pub slug: String,
    pub metadata: Metadata,
}

/// Sidecars and headers fetched at once.
const CONCURRENT_READS: usize = 8;
/// Enough for backup.json in one request (it is the first member and a few hundred bytes).
const HEAD_BYTES: u64 = 16 * 1024;
const BLOCK: u64 = 512;

fn octal(field: &[u8]) -> Option<u64> {
    // GNU base-256 sizes start with 0x80; a backup.json never needs one.
    let text = std::str::from_utf8(field).ok()?;
    let text = text.trim_matches(|c: char| c == '\0' || c == ' ');
    if text.is_empty() {
        return Some(0);
    }
    u64::from_str_radix(text, 8).ok()
}

fn entry_name(header: &[u8]) -> String {
    let field = &header[..100];
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    let name = String::from_utf8_lossy(&field[..end]).into_owned();
    let prefix_field = &header[345..500];
    let prefix_end = prefix_field.iter().position(|&b| b == 0).unwrap_or(0);
    if prefix_end > 0 && &header[257..262] == b"ustar" {
        format!(
            "{}/{name}",
            String::from_utf8_lossy(&prefix_field[..prefix_end])
        )
    } else {
        name
    }
}

impl StoreAgent {
    async fn read_range(&self, name: &str, range: Range<u64>) -> Result<bytes::Bytes, StoreError> {
        self.store()
            .get_range(&self.key(name), range)
            .await
            .map_err(|e| StoreError::from_remote(&self.describe(name), &e))
    }

    /// Reads backup.json out of a stored .tar without downloading the rest.
    async fn backup_json(&self, slug: &str, size: u64) -> Result<Metadata, StoreError> {
        let name = Self::tar_name(slug);
        let what = self.describe(&name);
        let head = self.read_range(&name, 0..size.min(HEAD_BYTES)).await?;
        let mut offset = 0u64;
        // backup.json comes first; PAX headers or a leading directory entry may precede it.
        for _ in 0..4 {
            if offset + BLOCK > size {
                break;
            }
            let header = if offset + BLOCK <= head.len() as u64 {
                head.slice(offset as usize..(offset + BLOCK) as usize)
            } else {
                self.read_range(&name, offset..offset + BLOCK).await?
            };
            if header.iter().all(|&b| b == 0) {
                break;
            }
            let member_size = octal(&header[124..136])
                .ok_or_else(|| StoreError::failed(&what, "not a tar archive"))?;
            let data = offset + BLOCK..offset + BLOCK + member_size;
            let member = entry_name(&header);
            let base = member.trim_start_matches("./");
            if base == "backup.json" || base == "snapshot.json" {
                if data.end > size || member_size > 1024 * 1024 {
                    return Err(StoreError::failed(
                        &what,
                        "backup.json is truncated or too big",
                    ));
                }
                let bytes = if data.end <= head.len() as u64 {
                    head.slice(data.start as usize..data.end as usize)
                } else {
                    self.read_range(&name, data).await?
                };
                let info = parse_backup_json(&bytes, Path::new(&what))
                    .map_err(|e| StoreError::failed(&what, e))?;
                return Ok(metadata_of(info, size));
            }
            offset = data.end.div_ceil(BLOCK) * BLOCK;
        }
        Err(StoreError::failed(
            &what,
            "no backup.json at the start of the archive",
        ))
    }

    /// Every backup under the prefix, oldest first.
    pub async fn list(&self) -> Result<Vec<Listed>, StoreError> {
        let prefix = (!self.config.prefix.as_ref().is_empty()).then_some(&self.config.prefix);
        let listing = match self.store().list_with_delimiter(prefix).await {
            Ok(listing) => listing.objects,
            // A prefix nothing was uploaded to yet (a WebDAV collection, say) holds no backups.
            Err(object_store::Error::NotFound { .. }) => Vec::new(),
            Err(err) => {
                return Err(StoreError::from_remote(self.display_url(), &err));
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
                if super::is_valid_slug(slug) {
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
                let described = if has_sidecar {
                    match self.read_sidecar(&slug).await {
                        Ok(Some(m)) => Ok(m),
                        // Deleted between the listing and now: describe the .tar itself.
                        Ok(None) => self.backup_json(&slug, size).await,
                        Err(err @ StoreError::Unreachable(_)) => Err(err),
                        Err(err) => {
                            log::warn!(target: "habackup.agent", "{err}; reading its backup.json");
                            self.backup_json(&slug, size).await
                        }
                    }
                } else {
                    self.backup_json(&slug, size).await
                };
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
