//! Verify: a backup checked where each copy is stored. An object-store agent's copy is verified
//! in place (the engine streams the stored object through the checks, nothing on disk); any
//! other agent's is downloaded to a temp file in the backup dir and checked against what the
//! agent listed (size, sha256), decoded too when deep; the backup dir's own copy is checked
//! there, under `"local"`. A damaged or missing copy is a result with problems, not an error.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures_util::future::join_all;
use pyo3::prelude::*;

use super::list::{list_agents, Synced};
use super::op::{cancelled, kwargs, seconds, Failure, Op};
use super::state::{Targets, LOCAL};
use crate::common::atomic::TempFile;
use crate::python::errors::{describe, Error};
use crate::store::{verify_file, Checking, Location, StoreAgent, StoreError, StoredCheck};

/// What to verify, and how.
pub struct Asked {
    pub slug: String,
    pub deep: bool,
    pub password: Option<String>,
    /// Whether the backup dir's copy is checked.
    pub local: bool,
    /// Whether the places were named by the caller: one that lacks the backup is a problem
    /// then, rather than left out.
    pub named: bool,
}

/// One place's verdict: its agent id (or `"local"`), where it is (URL, folder or agent id),
/// and the check.
pub type Verdict = (String, String, StoredCheck);

fn failed(slug: &str, problem: String) -> StoredCheck {
    StoredCheck {
        slug: slug.to_string(),
        problems: vec![problem],
        ..StoredCheck::default()
    }
}

/// A store error as a check's result: cancellation goes on as an error, the rest is a problem.
fn verdict(slug: &str, checked: Result<StoredCheck, StoreError>) -> PyResult<StoredCheck> {
    match checked {
        Ok(check) => Ok(check),
        Err(StoreError::Cancelled) => Err(cancelled()),
        Err(err) => Ok(failed(slug, err.to_string())),
    }
}

/// Verifies `asked.slug` locally and on `agents` (`stores[i]` is agent i's object store, when
/// it has one).
pub async fn verify(
    op: &Op,
    agents: &Targets,
    stores: Vec<Option<Arc<StoreAgent>>>,
    asked: Asked,
) -> PyResult<Vec<Verdict>> {
    let slug = asked.slug.as_str();
    let mut verdicts = Vec::new();
    if asked.local {
        let dir = Location::Folder(op.inner.backup_dir.clone());
        let checked = dir
            .verify(slug, asked.deep, asked.password.clone(), None, &op.cancel)
            .await;
        if asked.named || !matches!(checked, Err(StoreError::NotFound(_))) {
            verdicts.push((LOCAL.into(), dir.display(), verdict(slug, checked)?));
        }
    }
    let mut in_place = Vec::new();
    let mut downloads: Vec<(String, Synced)> = Vec::new();
    for ((agent_id, listing), store) in list_agents(op, agents).await?.into_iter().zip(stores) {
        let copy = match listing {
            Ok(copies) => copies.into_iter().find(|c| c.slug == slug),
            Err(err) => {
                let problem = Python::attach(|py| describe(py, &err));
                verdicts.push((agent_id.clone(), agent_id, failed(slug, problem)));
                continue;
            }
        };
        match (copy, store) {
            (None, _) if asked.named => {
                let problem = format!("backup {slug} not found on {agent_id}");
                verdicts.push((agent_id.clone(), agent_id, failed(slug, problem)));
            }
            (None, _) => {}
            (Some(copy), Some(store)) => in_place.push((agent_id, store, copy.id)),
            (Some(copy), None) => downloads.push((agent_id, copy)),
        }
    }
    let checks = in_place.iter().map(|(_, store, id)| {
        store.verify(id, asked.deep, asked.password.clone(), None, &op.cancel)
    });
    for ((agent_id, store, _), checked) in in_place.iter().zip(join_all(checks).await) {
        let place = store.display_url().to_string();
        verdicts.push((agent_id.clone(), place, verdict(slug, checked)?));
    }
    verdicts.extend(download_and_check(op, agents, &downloads, &asked).await?);
    if verdicts.is_empty() {
        return Err(Error::NotFound(format!("Backup {slug} not found")).into());
    }
    Ok(verdicts)
}

/// Downloads each listed copy into a temp file of ours (the agents side by side), then checks
/// it against the listing; the temp files are gone when this returns.
async fn download_and_check(
    op: &Op,
    agents: &Targets,
    downloads: &[(String, Synced)],
    asked: &Asked,
) -> PyResult<Vec<Verdict>> {
    if downloads.is_empty() {
        return Ok(Vec::new());
    }
    let beside = op.inner.backup_dir.join(format!("{}.tar", asked.slug));
    let count = downloads.len();
    let temps = tokio::task::spawn_blocking(move || -> std::io::Result<Vec<TempFile>> {
        std::fs::create_dir_all(crate::common::atomic::parent_of(&beside))?;
        (0..count)
            .map(|_| TempFile::create_beside(&beside))
            .collect()
    })
    .await
    .map_err(|e| Error::Manager(format!("verify task failed: {e}")))?
    .map_err(|e| Error::Manager(format!("cannot make a temp file in the backup dir: {e}")))?;
    let targets: Targets = Python::attach(|py| {
        downloads
            .iter()
            .filter_map(|(id, _)| agents.iter().find(|(known, _)| known == id))
            .map(|(id, agent)| (id.clone(), agent.clone_ref(py)))
            .collect()
    });
    let paths: Vec<PathBuf> = temps.iter().map(|t| t.path().to_path_buf()).collect();
    let answers = op
        .call_agents(&targets, "async_download_backup", |py, agent_id, _| {
            let at = downloads.iter().position(|(id, _)| id == agent_id);
            let (id, path) = match at {
                Some(i) => (downloads[i].1.id.as_str(), paths[i].clone()),
                None => ("", PathBuf::new()),
            };
            kwargs(
                py,
                &[
                    ("id", &id.into_pyobject(py)?.into_any()),
                    ("path", &path.into_pyobject(py)?.into_any()),
                ],
            )
        })
        .await;
    let mut verdicts = Vec::new();
    for (agent_id, answer) in answers? {
        let Some(i) = downloads.iter().position(|(id, _)| *id == agent_id) else {
            continue;
        };
        let copy = &downloads[i].1;
        let check = match answer {
            Ok(_) => check_copy(op, &agent_id, copy, &paths[i], asked).await?,
            Err(Failure::TimedOut(limit)) => failed(
                &asked.slug,
                format!("download timed out after {} s", seconds(limit)),
            ),
            Err(Failure::Raised(err)) => {
                let why = Python::attach(|py| describe(py, &err));
                failed(&asked.slug, format!("download failed: {why}"))
            }
        };
        verdicts.push((agent_id.clone(), agent_id, check));
    }
    // Removing files is blocking work, kept off the event loop's thread.
    let _ = tokio::task::spawn_blocking(move || drop(temps)).await;
    op.check_cancelled()?;
    Ok(verdicts)
}

/// Checks the copy `agent_id` wrote to `path` against its listing `copy`.
async fn check_copy(
    op: &Op,
    agent_id: &str,
    copy: &Synced,
    path: &Path,
    asked: &Asked,
) -> PyResult<StoredCheck> {
    let shown = format!("{agent_id}: {}", asked.slug);
    let owned = path.to_path_buf();
    let size = tokio::task::spawn_blocking(move || std::fs::metadata(owned).map(|m| m.len()))
        .await
        .map_err(|e| Error::Manager(format!("verify task failed: {e}")))?;
    let size = match size {
        Ok(size) => size,
        Err(e) => {
            return Ok(failed(
                &asked.slug,
                format!("the download left no file: {e}"),
            ))
        }
    };
    let checking = Checking {
        slug: &asked.slug,
        shown: PathBuf::from(&shown),
        deep: asked.deep,
        password: asked.password.clone(),
        progress: None,
        cancel: &op.cancel,
    };
    let checked = verify_file(checking, path, size).await.map_err(|err| {
        // Never the temp file's name: the agent's copy is what was read.
        StoreError::Failed(err.to_string().replace(&path.display().to_string(), &shown))
    });
    let mut check = verdict(&asked.slug, checked)?;
    if size != copy.size {
        check.problems.push(format!(
            "{agent_id} lists {} bytes, its copy has {size}",
            copy.size
        ));
    }
    match (&copy.sha256, &check.sha256) {
        (Some(listed), Some(read)) if !listed.eq_ignore_ascii_case(read) => check
            .problems
            .push("the copy does not match the sha256 its agent lists".into()),
        (None, _) => check
            .warnings
            .push("its agent lists no sha256: checked against its size only".into()),
        _ => {}
    }
    check.size = copy.size;
    Ok(check)
}
