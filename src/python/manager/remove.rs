//! Remove: a backup deleted locally and from every agent that holds it.

use pyo3::prelude::*;

use super::list::list_agents;
use super::op::{kwargs, seconds, Failure, Op};
use super::state::{Targets, LOG};
use crate::archive::{find_local, ArchiveError, IoContext};
use crate::python::errors::{describe, Error};
use crate::python::runtime::blocking::run_cancellable;

pub async fn remove(op: &Op, agents: &Targets, slug: &str) -> PyResult<()> {
    let backup_dir = op.inner.backup_dir.clone();
    let lookup = slug.to_string();
    let local = run_cancellable(&op.cancel, move |_| find_local(&backup_dir, &lookup)).await?;
    let listings = list_agents(op, agents).await?;
    let holders: Vec<(String, Py<PyAny>, String)> = Python::attach(|py| {
        listings
            .iter()
            .filter_map(|(agent_id, listing)| {
                let copy = listing.as_ref().ok()?.iter().find(|c| c.slug == slug)?;
                let (_, agent) = agents.iter().find(|(id, _)| id == agent_id)?;
                Some((agent_id.clone(), agent.clone_ref(py), copy.id.clone()))
            })
            .collect()
    });
    if local.is_none() && holders.is_empty() {
        return Err(Error::NotFound(format!("Backup {slug} not found")).into());
    }
    if let Some(path) = local.and_then(|b| b.path) {
        run_cancellable(&op.cancel, move |_| {
            std::fs::remove_file(&path).at(&path)?;
            Ok::<_, ArchiveError>(())
        })
        .await?;
    }
    let targets: Targets = Python::attach(|py| {
        holders
            .iter()
            .map(|(agent_id, agent, _)| (agent_id.clone(), agent.clone_ref(py)))
            .collect()
    });
    let answers = op
        .call_agents(&targets, "async_delete_backup", |py, agent_id, _| {
            let copy_id = holders
                .iter()
                .find(|(id, _, _)| id == agent_id)
                .map_or("", |(_, _, copy)| copy.as_str());
            kwargs(py, &[("id", &copy_id.into_pyobject(py)?.into_any())])
        })
        .await?;
    op.check_cancelled()?;
    let mut failures = Vec::new();
    let mut first = None;
    for (agent_id, answer) in answers {
        match answer {
            Ok(_) => {}
            Err(Failure::TimedOut(limit)) => {
                failures.push(format!("{agent_id} (timed out after {} s)", seconds(limit)));
            }
            Err(Failure::Raised(err)) => {
                failures.push(Python::attach(|py| {
                    format!("{agent_id} ({})", describe(py, &err))
                }));
                first.get_or_insert(err);
            }
        }
    }
    if failures.is_empty() {
        return Ok(());
    }
    let message = format!(
        "Failed to delete backup {slug} from: {}",
        failures.join(", ")
    );
    log::error!(target: LOG, "{message}");
    Err(Error::Agent(message, first).into())
}
