//! Listing: the local backups merged with every agent's, by slug.

use std::collections::BTreeMap;

use pyo3::prelude::*;
use pyo3::types::PyTuple;

use super::op::{seconds, Failure, Op};
use super::state::{Targets, LOG};
use crate::archive::{list_local, ArchiveError};
use crate::python::backup::Backup;
use crate::python::errors::{describe, Error};
use crate::python::runtime::blocking::run_cancellable;

/// One agent's copy of a backup, as its `async_list_backups` describes it.
pub struct Synced {
    pub id: String,
    pub slug: String,
    pub name: String,
    pub date: String,
    pub size: u64,
    pub protected: bool,
    pub sha256: Option<String>,
}

pub type Listing = PyResult<Vec<Synced>>;

fn synced_backups(value: &Bound<'_, PyAny>) -> PyResult<Vec<Synced>> {
    let mut backups = Vec::new();
    for item in value.try_iter()? {
        let item = item?;
        let sha256 = match item.getattr_opt("sha256")? {
            Some(v) if !v.is_none() => Some(v.extract()?),
            _ => None,
        };
        backups.push(Synced {
            id: item.getattr("id")?.extract()?,
            slug: item.getattr("slug")?.extract()?,
            name: item.getattr("name")?.extract()?,
            date: item.getattr("date")?.extract()?,
            size: item.getattr("size")?.extract()?,
            protected: item.getattr("protected")?.extract()?,
            sha256,
        });
    }
    Ok(backups)
}

/// Lists every agent concurrently: `(agent_id, listing or BackupAgentError)`, in agent order.
pub async fn list_agents(op: &Op, agents: &Targets) -> PyResult<Vec<(String, Listing)>> {
    let answers = op
        .call_agents(agents, "async_list_backups", |py, _, _| {
            Ok((PyTuple::empty(py), None))
        })
        .await?;
    op.check_cancelled()?;
    let mut listings = Vec::with_capacity(answers.len());
    for (agent_id, answer) in answers {
        let listing = Python::attach(|py| match answer {
            Ok(value) => synced_backups(value.bind(py)).map_err(|err| {
                let message = format!(
                    "{agent_id} returned an invalid backup list: {}",
                    describe(py, &err)
                );
                PyErr::from(Error::Agent(message, Some(err)))
            }),
            Err(Failure::TimedOut(limit)) => Err(Error::Agent(
                format!(
                    "Listing backups of {agent_id} timed out after {} s",
                    seconds(limit)
                ),
                None,
            )
            .into()),
            Err(Failure::Raised(err)) => {
                let message = format!(
                    "Listing backups of {agent_id} failed: {}",
                    describe(py, &err)
                );
                Err(Error::Agent(message, Some(err)).into())
            }
        });
        if let Err(err) = &listing {
            log::warn!(target: LOG, "{err}");
        }
        listings.push((agent_id, listing));
    }
    Ok(listings)
}

pub type AllBackups = (BTreeMap<String, Backup>, Vec<(String, PyErr)>);

/// The local backups (a missing backup dir holds none) and every agent's, merged by slug.
pub async fn all_backups(op: &Op, agents: &Targets) -> PyResult<AllBackups> {
    let backup_dir = op.inner.backup_dir.clone();
    let local = run_cancellable(&op.cancel, move |_| match list_local(&backup_dir) {
        Ok(listing) => {
            for skipped in listing.skipped {
                log::warn!(target: LOG, "Skipping unreadable backup {skipped}");
            }
            Ok(listing.backups)
        }
        Err(ArchiveError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            Ok(Vec::new())
        }
        Err(err) => Err(err),
    })
    .await?;
    let listings = list_agents(op, agents).await?;
    let mut backups: BTreeMap<String, Backup> = local
        .into_iter()
        .map(|info| (info.slug.clone(), Backup::from(info)))
        .collect();
    let mut errors = Vec::new();
    for (agent_id, listing) in listings {
        let synced = match listing {
            Ok(synced) => synced,
            Err(err) => {
                errors.push((agent_id, err));
                continue;
            }
        };
        for copy in synced {
            let backup = backups.entry(copy.slug.clone()).or_insert_with(|| Backup {
                slug: copy.slug.clone(),
                name: copy.name.clone(),
                date: copy.date.clone(),
                size: copy.size,
                path: None,
                protected: copy.protected,
                homeassistant_version: None,
                database_included: true,
                sha256: copy.sha256.clone(),
                synced_agents: Vec::new(),
                failed_agents: BTreeMap::new(),
                agents: BTreeMap::new(),
                pruned: BTreeMap::new(),
            });
            if !backup.synced_agents.contains(&agent_id) {
                backup.synced_agents.push(agent_id.clone());
            }
            backup.agents.insert(agent_id.clone(), copy.id);
        }
    }
    Ok((backups, errors))
}
