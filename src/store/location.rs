//! Where backups live, for the verbs that work the same on a local folder and on a store:
//! listing, verifying, removing, copying between any two, and pruning by policy. A folder is
//! Home Assistant's own layout (any `*.tar` backup, named as it likes, no sidecars); a store is
//! an agent URL.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::error::StoreError;
use super::{Listed, Metadata, Progress, StoreAgent, StoredCheck};
use crate::archive::{
    self, find_local, list_local, sync_metadata, ArchiveError, BackupInfo, CancelToken, IoContext,
};
use crate::common::atomic::TempFile;
use crate::common::digest::sha256_hex;
use crate::prune::{self, Item, Plan, Policy, Zone};

pub enum Location {
    Store(Arc<StoreAgent>),
    Folder(PathBuf),
}

/// Runs blocking file work on the pool.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| StoreError::Failed(format!("file task failed: {e}")))?
}

fn listed(info: &BackupInfo) -> Listed {
    let mut metadata = sync_metadata(info);
    if let Some(path) = &info.path {
        metadata.insert("path".into(), Value::from(path.display().to_string()));
    }
    Listed {
        slug: info.slug.clone(),
        metadata,
    }
}

impl Location {
    /// A URL (`scheme://…`) names a store, anything else a folder.
    pub fn open(spec: &str, options: &[(String, String)]) -> Result<Location, StoreError> {
        if spec.contains("://") {
            return Ok(Location::Store(Arc::new(StoreAgent::new(spec, options)?)));
        }
        if let Some((key, _)) = options.first() {
            return Err(StoreError::InvalidConfig(format!(
                "option {key:?} applies to store URLs only, not to the folder {spec}"
            )));
        }
        Ok(Location::Folder(PathBuf::from(spec)))
    }

    /// How it is shown to people (no credentials).
    pub fn display(&self) -> String {
        match self {
            Location::Store(agent) => agent.display_url().to_string(),
            Location::Folder(dir) => dir.display().to_string(),
        }
    }

    fn folder_backup(dir: &Path, slug: &str) -> Result<BackupInfo, StoreError> {
        find_local(dir, slug)?.ok_or_else(|| {
            StoreError::NotFound(format!("backup {slug} not found in {}", dir.display()))
        })
    }

    /// Every backup, oldest first. A folder's unreadable `*.tar` files are logged and left out.
    pub async fn list(&self) -> Result<Vec<Listed>, StoreError> {
        match self {
            Location::Store(agent) => agent.list().await,
            Location::Folder(dir) => {
                let dir = dir.clone();
                blocking(move || {
                    let listing = list_local(&dir)?;
                    for skipped in &listing.skipped {
                        log::warn!(target: "habackup.agent", "skipping {skipped}");
                    }
                    Ok(listing.backups.iter().map(listed).collect())
                })
                .await
            }
        }
    }

    /// See [`StoreAgent::verify`]. In a folder, where nothing records a digest, quick means the
    /// whole file read (its sha256 reported) and its tar structure sound.
    pub async fn verify(
        &self,
        slug: &str,
        deep: bool,
        password: Option<String>,
        cancel: &CancelToken,
    ) -> Result<StoredCheck, StoreError> {
        let dir = match self {
            Location::Store(agent) => return agent.verify(slug, deep, password, cancel).await,
            Location::Folder(dir) => dir.clone(),
        };
        let (slug, cancel) = (slug.to_string(), cancel.clone());
        blocking(move || {
            let info = Self::folder_backup(&dir, &slug)?;
            let path = info.path.clone().unwrap_or_default();
            let mut check = StoredCheck {
                slug,
                size: info.size,
                ..StoredCheck::default()
            };
            check.sha256 =
                Some(sha256_hex(std::fs::File::open(&path).at(&path)?, &cancel).at(&path)?);
            check
                .warnings
                .push("a folder records no sha256: the file was read whole, not compared".into());
            if deep {
                match archive::verify_archive(&path, password.as_deref(), &cancel) {
                    Ok(report) => check.decoded = Some(report),
                    Err(ArchiveError::Cancelled) => return Err(StoreError::Cancelled),
                    Err(err) => {
                        check.password_incorrect =
                            matches!(err, ArchiveError::IncorrectPassword { .. });
                        check.problems.push(err.to_string());
                    }
                }
            }
            Ok(check)
        })
        .await
    }

    /// Removes backup `slug`; `NotFound` when there is none.
    pub async fn remove(&self, slug: &str) -> Result<(), StoreError> {
        match self {
            Location::Store(agent) => agent.delete(slug).await,
            Location::Folder(dir) => {
                let (dir, slug) = (dir.clone(), slug.to_string());
                blocking(move || {
                    let path = Self::folder_backup(&dir, &slug)?.path.unwrap_or_default();
                    std::fs::remove_file(&path).at(&path)?;
                    Ok(())
                })
                .await
            }
        }
    }

    /// Copies backup `slug` to `dest`, checked on the way; a copy already there with the same
    /// bytes is left alone. Returns the metadata of the copy.
    pub async fn copy(
        &self,
        slug: &str,
        dest: &Location,
        progress: Option<Progress>,
        cancel: &CancelToken,
    ) -> Result<Metadata, StoreError> {
        match (self, dest) {
            (Location::Store(src), Location::Store(dest)) => {
                src.copy_to(slug, dest, progress, cancel).await
            }
            (Location::Folder(dir), Location::Store(dest)) => {
                let (dir, owned) = (dir.clone(), slug.to_string());
                let info = blocking(move || Self::folder_backup(&dir, &owned)).await?;
                let path = info.path.clone().unwrap_or_default();
                dest.upload(&path, None, progress, cancel).await
            }
            (Location::Store(src), Location::Folder(dir)) => {
                let target = dir.join(format!("{slug}.tar"));
                let metadata = src.describe_backup(slug).await?;
                if !Self::folder_holds(&target, &metadata, cancel).await? {
                    src.download(slug, &target, progress, cancel).await?;
                }
                Ok(metadata)
            }
            (Location::Folder(from), Location::Folder(to)) => {
                let (from, to, slug) = (from.clone(), to.clone(), slug.to_string());
                let cancel = cancel.clone();
                blocking(move || copy_file(&from, &slug, &to, &cancel)).await
            }
        }
    }

    /// Whether `target` already is the backup `metadata` describes (same sha256).
    async fn folder_holds(
        target: &Path,
        metadata: &Metadata,
        cancel: &CancelToken,
    ) -> Result<bool, StoreError> {
        let want = metadata
            .get("sha256")
            .and_then(Value::as_str)
            .map(str::to_string);
        let (target, cancel) = (target.to_path_buf(), cancel.clone());
        blocking(move || {
            if !target.exists() {
                return Ok(false);
            }
            let have =
                sha256_hex(std::fs::File::open(&target).at(&target)?, &cancel).at(&target)?;
            match want {
                Some(want) if want.eq_ignore_ascii_case(&have) => Ok(true),
                Some(_) => Err(StoreError::Failed(format!(
                    "{} exists and holds other bytes; nothing was copied",
                    target.display()
                ))),
                None => Err(StoreError::Failed(format!(
                    "{} exists, and the source records no sha256 to compare it with; nothing \
                     was copied",
                    target.display()
                ))),
            }
        })
        .await
    }

    /// What `policy` keeps and removes here, at `now` in `zone`; unless `dry_run`, the removals
    /// are carried out (the plan's `remove` lists what was removed).
    pub async fn prune(
        &self,
        policy: &Policy,
        now: DateTime<Utc>,
        zone: Zone,
        dry_run: bool,
    ) -> Result<Plan, StoreError> {
        let items: Vec<Item> = self
            .list()
            .await?
            .into_iter()
            .map(|listed| Item {
                date: listed
                    .metadata
                    .get("date")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                slug: listed.slug,
            })
            .collect();
        let plan = prune::plan(&items, policy, now, zone)
            .map_err(|e| StoreError::InvalidConfig(e.to_string()))?;
        if !dry_run {
            for item in &plan.remove {
                match self.remove(&item.slug).await {
                    // Gone meanwhile: what the policy wanted.
                    Ok(()) | Err(StoreError::NotFound(_)) => {}
                    Err(err) => return Err(err),
                }
            }
        }
        Ok(plan)
    }
}

/// Copies a folder's backup `slug` into another folder as `<slug>.tar`, atomically.
fn copy_file(
    from: &Path,
    slug: &str,
    to: &Path,
    cancel: &CancelToken,
) -> Result<Metadata, StoreError> {
    let info = Location::folder_backup(from, slug)?;
    let source = info.path.clone().unwrap_or_default();
    let target = to.join(format!("{slug}.tar"));
    std::fs::create_dir_all(to).at(to)?;
    let mut temp = TempFile::create_beside(&target).at(&target)?;
    let mut reader = std::fs::File::open(&source).at(&source)?;
    let mut copied = 0u64;
    let mut buffer = vec![0u8; 1024 * 1024];
    loop {
        cancel.check()?;
        let n = std::io::Read::read(&mut reader, &mut buffer).at(&source)?;
        if n == 0 {
            break;
        }
        std::io::Write::write_all(temp.file(), &buffer[..n]).at(&target)?;
        copied += n as u64;
    }
    if copied != info.size {
        return Err(ArchiveError::invalid(&source, "the file changed while it was copied").into());
    }
    temp.commit(&target).at(&target)?;
    Ok(listed(&info).metadata)
}
