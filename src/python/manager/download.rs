//! Download: an agent's copy into the backup dir (or a chosen path), checked against what the
//! agent listed (size, sha256, slug) before it appears there.

use std::path::PathBuf;

use pyo3::prelude::*;

use super::list::list_agents;
use super::op::{cancelled, kwargs, seconds, Failure, Op};
use super::state::Targets;
use crate::archive::{check_backup_file, ArchiveError, Expected, IoContext};
use crate::common::atomic::TempFile;
use crate::python::errors::{describe, is_backup_error, Error};
use crate::python::runtime::blocking::run_cancellable;

pub async fn download(
    op: &Op,
    agents: &Targets,
    agent_id: &str,
    id: &str,
    path: Option<PathBuf>,
) -> PyResult<PathBuf> {
    let mut listings = list_agents(op, agents).await?;
    let copy = match listings.pop() {
        Some((_, Ok(copies))) => copies.into_iter().find(|c| c.id == id),
        Some((_, Err(err))) => return Err(err),
        None => None,
    };
    let Some(copy) = copy else {
        return Err(Error::NotFound(format!("Backup {id} not found on {agent_id}")).into());
    };
    let dest = path.unwrap_or_else(|| op.inner.backup_dir.join(format!("{}.tar", copy.slug)));
    // The agent writes into a temp file of ours beside the destination, held (locked) by us.
    let target = dest.clone();
    let temp = run_cancellable(&op.cancel, move |_| {
        if let Some(dir) = target.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).at(dir)?;
        }
        TempFile::create_beside(&target).at(&target)
    })
    .await?;
    let temp_path = temp.path().to_path_buf();
    let answer = op
        .call_agents(agents, "async_download_backup", |py, _, _| {
            kwargs(
                py,
                &[
                    ("id", &id.into_pyobject(py)?.into_any()),
                    ("path", &temp_path.clone().into_pyobject(py)?.into_any()),
                ],
            )
        })
        .await?
        .pop();
    let what = format!("Download of {id} from {agent_id}");
    match answer {
        Some((_, Ok(_))) => {}
        None => return Err(cancelled()),
        Some((_, Err(Failure::TimedOut(limit)))) => {
            let message = format!("{what} timed out after {} s", seconds(limit));
            return Err(Error::Agent(message, None).into());
        }
        Some((_, Err(Failure::Raised(err)))) => {
            return Err(Python::attach(|py| {
                // The agent's own habackup errors (BackupNotFound, say) pass through as they are.
                if is_backup_error(py, &err) {
                    return err;
                }
                let message = format!("{what} failed: {}", describe(py, &err));
                Error::Agent(message, Some(err)).into()
            }));
        }
    }
    let expected = Expected {
        slug: copy.slug,
        size: Some(copy.size),
        sha256: copy.sha256.map(|s| s.to_ascii_lowercase()),
    };
    run_cancellable(&op.cancel, move |cancel| {
        check_backup_file(temp.path(), &dest, &expected, &cancel)?;
        cancel.check()?;
        temp.commit(&dest).at(&dest)?;
        Ok::<_, ArchiveError>(dest)
    })
    .await
}
