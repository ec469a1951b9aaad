//! Where backups live, for the verbs that work the same on a local folder and on a store:
//! listing, verifying, removing, copying between any two, and pruning by policy. A folder is
//! Home Assistant's own layout (any `*.tar` backup, named as it likes, no sidecars); a store is
//! an agent URL.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::error::StoreError;
use super::{verify_file, Checking, Copied, Listed, Metadata, Progress, StoreAgent, StoredCheck};
use crate::archive::{
    find_local, list_local, sync_metadata, ArchiveError, BackupInfo, CancelToken, IoContext,
};
use crate::common::atomic::{CreatedDirs, TempFile};
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

/// `metadata` with the local file it describes.
fn with_path(mut metadata: Metadata, path: &Path) -> Metadata {
    metadata.insert("path".into(), Value::from(path.display().to_string()));
    metadata
}

fn listed(info: &BackupInfo) -> Listed {
    let metadata = sync_metadata(info);
    Listed {
        slug: info.slug.clone(),
        metadata: match &info.path {
            Some(path) => with_path(metadata, path),
            None => metadata,
        },
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
    /// whole file read (its sha256 reported), its size and backup.json checked.
    pub async fn verify(
        &self,
        slug: &str,
        deep: bool,
        password: Option<String>,
        progress: Option<Progress>,
        cancel: &CancelToken,
    ) -> Result<StoredCheck, StoreError> {
        let dir = match self {
            Location::Store(agent) => {
                return agent.verify(slug, deep, password, progress, cancel).await
            }
            Location::Folder(dir) => dir.clone(),
        };
        let owned = slug.to_string();
        let info = blocking(move || Self::folder_backup(&dir, &owned)).await?;
        let path = info.path.clone().unwrap_or_default();
        let checking = Checking {
            slug,
            shown: path.clone(),
            deep,
            password,
            progress,
            cancel,
        };
        let mut check = verify_file(checking, &path, info.size).await?;
        if !deep {
            check.warnings.push(
                "a folder records no sha256: the file was read whole, but a changed byte shows \
                 only when every byte is decoded (deep)"
                    .into(),
            );
        }
        Ok(check)
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
    /// bytes is left alone (nothing sent), one with other bytes is refused.
    pub async fn copy(
        &self,
        slug: &str,
        dest: &Location,
        progress: Option<Progress>,
        cancel: &CancelToken,
    ) -> Result<Copied, StoreError> {
        match (self, dest) {
            (Location::Store(src), Location::Store(dest)) => {
                src.copy_to(slug, dest, progress, cancel).await
            }
            (Location::Folder(dir), Location::Store(dest)) => {
                let (dir, owned) = (dir.clone(), slug.to_string());
                let info = blocking(move || Self::folder_backup(&dir, &owned)).await?;
                let path = info.path.clone().unwrap_or_default();
                let before = dest.describe_backup(slug).await.ok();
                let metadata = dest.upload(&path, None, progress, cancel).await?;
                // An upload of the bytes already stored sends nothing and rewrites the sidecar.
                let same = |m: &Metadata| m.get("sha256").cloned();
                let sent = before.as_ref().and_then(same) != same(&metadata);
                Ok(Copied { metadata, sent })
            }
            (Location::Store(src), Location::Folder(dir)) => {
                let metadata = src.describe_backup(slug).await?;
                let want = metadata
                    .get("sha256")
                    .and_then(Value::as_str)
                    .map(str::to_string);
                let target = dir.join(format!("{slug}.tar"));
                let held = Self::folder_holds(dir, slug, want, &target, cancel).await?;
                if held.is_none() {
                    src.download(slug, &target, progress, cancel).await?;
                }
                Ok(Copied {
                    sent: held.is_none(),
                    metadata: with_path(metadata, held.as_deref().unwrap_or(&target)),
                })
            }
            (Location::Folder(from), Location::Folder(to)) => {
                let (from_dir, owned) = (from.clone(), slug.to_string());
                let info = blocking(move || Self::folder_backup(&from_dir, &owned)).await?;
                let source = info.path.clone().unwrap_or_default();
                let target = to.join(format!("{slug}.tar"));
                let (c, s) = (cancel.clone(), source.clone());
                let want =
                    blocking(move || Ok(sha256_hex(File::open(&s).at(&s)?, &c).at(&s)?)).await?;
                let mut metadata = sync_metadata(&info);
                metadata.insert("sha256".into(), Value::from(want.clone()));
                let held = Self::folder_holds(to, slug, Some(want), &target, cancel).await?;
                let copied = with_path(metadata, held.as_deref().unwrap_or(&target));
                if held.is_none() {
                    let cancel = cancel.clone();
                    blocking(move || copy_file(&info, &target, progress, &cancel)).await?;
                }
                Ok(Copied {
                    sent: held.is_none(),
                    metadata: copied,
                })
            }
        }
    }

    /// The file of the folder `dir` that already holds backup `slug` with the sha256 `want`, if
    /// any; an error when one holds other bytes under that slug, or `target` (where a copy
    /// would go) is taken.
    async fn folder_holds(
        dir: &Path,
        slug: &str,
        want: Option<String>,
        target: &Path,
        cancel: &CancelToken,
    ) -> Result<Option<PathBuf>, StoreError> {
        let (dir, slug, target) = (dir.to_path_buf(), slug.to_string(), target.to_path_buf());
        let cancel = cancel.clone();
        blocking(move || {
            let Some(held) = find_local(&dir, &slug)? else {
                if target.exists() {
                    return Err(StoreError::Failed(format!(
                        "{} exists and is not backup {slug}; nothing was copied",
                        target.display()
                    )));
                }
                return Ok(None);
            };
            let path = held.path.unwrap_or_default();
            let have = sha256_hex(File::open(&path).at(&path)?, &cancel).at(&path)?;
            match want {
                Some(want) if want.eq_ignore_ascii_case(&have) => Ok(Some(path)),
                Some(_) => Err(StoreError::Failed(format!(
                    "{} holds backup {slug} with other bytes; nothing was copied",
                    path.display()
                ))),
                None => Err(StoreError::Failed(format!(
                    "{} holds backup {slug}, and the source records no sha256 to compare it \
                     with; nothing was copied",
                    path.display()
                ))),
            }
        })
        .await
    }

    /// What `policy` keeps and removes here, at `now` in `zone`; unless `dry_run`, the removals
    /// are carried out, newest first. A removal that fails stops the rest: the error says how
    /// many were removed before it.
    pub async fn prune(
        &self,
        policy: &Policy,
        now: DateTime<Utc>,
        zone: Zone,
        dry_run: bool,
        cancel: &CancelToken,
    ) -> Result<Plan, StoreError> {
        let items: Vec<Item> = cancel
            .run(self.list())
            .await??
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
        if dry_run {
            return Ok(plan);
        }
        for (done, item) in plan.remove.iter().enumerate() {
            match cancel.run(self.remove(&item.slug)).await? {
                // Gone meanwhile: what the policy wanted.
                Ok(()) | Err(StoreError::NotFound(_)) => {}
                Err(err) => return Err(removal_failed(err, done, plan.remove.len(), &item.slug)),
            }
        }
        Ok(plan)
    }
}

/// A failed removal, saying how far the prune got; the error keeps its kind.
fn removal_failed(err: StoreError, done: usize, total: usize, slug: &str) -> StoreError {
    let context = |message: String| {
        format!("removed {done} of the {total} backups to remove, then {slug} failed: {message}")
    };
    match err {
        StoreError::Unreachable(m) => StoreError::Unreachable(context(m)),
        StoreError::Failed(m) => StoreError::Failed(context(m)),
        StoreError::Archive(a) => StoreError::Failed(context(a.to_string())),
        other => other,
    }
}

/// Copies the folder backup `info` to `target` (a temp file renamed into place once whole).
fn copy_file(
    info: &BackupInfo,
    target: &Path,
    progress: Option<Progress>,
    cancel: &CancelToken,
) -> Result<(), StoreError> {
    let source = info.path.clone().unwrap_or_default();
    let dir = crate::common::atomic::parent_of(target);
    let dirs = CreatedDirs::create(dir).at(dir)?;
    let mut temp = TempFile::create_beside(target).at(target)?;
    let mut reader = File::open(&source).at(&source)?;
    let mut copied = 0u64;
    let mut buffer = vec![0u8; 1024 * 1024];
    loop {
        cancel.check()?;
        let n = reader.read(&mut buffer).at(&source)?;
        if n == 0 {
            break;
        }
        temp.file().write_all(&buffer[..n]).at(target)?;
        copied += n as u64;
        if let Some(progress) = &progress {
            progress(copied, info.size);
        }
    }
    if copied != info.size {
        return Err(ArchiveError::invalid(&source, "the file changed while it was copied").into());
    }
    temp.commit(target).at(target)?;
    dirs.keep();
    Ok(())
}
