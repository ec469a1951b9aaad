//! Uploads of a local backup to agents: the last stage of a create, and `sync_backup` (the same
//! backup uploaded again).

use std::collections::BTreeMap;
use std::fs::File;

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

use super::events::Event;
use super::op::{seconds, Failure, Op};
use super::state::{Targets, CREATE_BACKUP, LOG};
use crate::archive::{find_local, sync_metadata, ArchiveError, BackupInfo, IoContext};
use crate::common::digest::sha256_hex;
use crate::python::backup::Backup;
use crate::python::errors::{describe, Error};
use crate::python::runtime::blocking::run_cancellable;

/// Which agents have the backup now, and why the others do not.
#[derive(Default)]
pub struct Uploaded {
    pub synced: Vec<String>,
    pub failed: BTreeMap<String, String>,
}

impl Uploaded {
    pub fn into_backup(self, info: BackupInfo) -> Backup {
        Backup {
            synced_agents: self.synced,
            failed_agents: self.failed,
            ..Backup::from(info)
        }
    }
}

/// Agents that take `on_progress` on upload say so with a class attribute (the built-in
/// object-store agent does); others get exactly the seed's keyword arguments.
fn accepts_upload_progress(agent: &Bound<'_, PyAny>) -> bool {
    agent
        .getattr("accepts_upload_progress")
        .and_then(|v| v.is_truthy())
        .unwrap_or(false)
}

/// Uploads the local backup to the agents concurrently; failures are recorded, not raised.
pub async fn upload(
    op: &Op,
    info: &BackupInfo,
    agents: &Targets,
    manager_state: &'static str,
) -> PyResult<Uploaded> {
    let mut uploaded = Uploaded::default();
    let Some(path) = info.path.clone() else {
        return Ok(uploaded);
    };
    let metadata = serde_json::Value::Object(sync_metadata(info));
    let answers = op
        .call_agents(agents, "async_upload_backup", |py, agent_id, agent| {
            let kw = PyDict::new(py);
            kw.set_item("path", &path)?;
            kw.set_item("metadata", pythonize::pythonize(py, &metadata)?)?;
            if accepts_upload_progress(agent) {
                kw.set_item(
                    "on_progress",
                    op.upload_progress(py, manager_state, agent_id)?,
                )?;
            }
            Ok((PyTuple::empty(py), Some(kw)))
        })
        .await?;
    for (agent_id, answer) in answers {
        let message = match answer {
            Ok(_) => {
                op.emit(&Event::UploadProgress {
                    manager_state,
                    agent_id: &agent_id,
                    uploaded: info.size,
                    total: info.size,
                });
                uploaded.synced.push(agent_id);
                continue;
            }
            Err(Failure::TimedOut(limit)) => {
                format!(
                    "BackupAgentError: upload timed out after {} s",
                    seconds(limit)
                )
            }
            Err(Failure::Raised(err)) => Python::attach(|py| describe(py, &err)),
        };
        log::error!(target: LOG, "Upload of {} to {agent_id} failed: {message}", info.slug);
        uploaded.failed.insert(agent_id, message);
    }
    Ok(uploaded)
}

/// Uploads an existing local backup to the agents again.
pub async fn sync_backup(op: &Op, slug: String, agents: &Targets) -> PyResult<Backup> {
    let backup_dir = op.inner.backup_dir.clone();
    let lookup = slug.clone();
    let found = run_cancellable(&op.cancel, move |cancel| {
        let Some(mut info) = find_local(&backup_dir, &lookup)? else {
            return Ok::<_, ArchiveError>(None);
        };
        if let Some(path) = &info.path {
            info.sha256 = Some(sha256_hex(File::open(path).at(path)?, &cancel).at(path)?);
        }
        Ok(Some(info))
    })
    .await?;
    let Some(info) = found else {
        return Err(Error::NotFound(format!("Backup {slug} not found")).into());
    };
    let uploaded = upload(op, &info, agents, CREATE_BACKUP).await?;
    op.check_cancelled()?;
    Ok(uploaded.into_backup(info))
}
