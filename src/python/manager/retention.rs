//! Retention after a backup: the manager's policy (restic's rules, `crate::prune`) applied to
//! the backup dir and to every agent that now holds the new backup, deleting through the
//! agents. What was removed goes into the returned `Backup` and into `cleaning_up` events; a
//! failure is logged and reported as an event, and never fails the backup that was made.

use std::collections::BTreeMap;

use chrono::Utc;
use pyo3::prelude::*;

use super::events::Event;
use super::list::list_agents;
use super::op::{kwargs, seconds, Failure, Op};
use super::state::{Retention, Targets, LOCAL, LOG};
use crate::prune::{self, Item};
use crate::python::errors::{describe, is_not_found};
use crate::store::Location;

/// One location's outcome: the slugs removed, newest first, and what went wrong, if anything.
#[derive(Default)]
struct Outcome {
    removed: Vec<String>,
    error: Option<String>,
}

/// Applies the policy to the backup dir and to the agents in `synced` (those that hold the
/// backup just made); returns the slugs removed per place (agent id, or `"local"`).
pub async fn apply(
    op: &Op,
    retention: &Retention,
    synced: &[String],
    agents: &Targets,
    manager_state: &'static str,
) -> PyResult<BTreeMap<String, Vec<String>>> {
    let mut outcomes: Vec<(String, Outcome)> =
        vec![(LOCAL.into(), prune_local(op, retention).await)];
    op.check_cancelled()?;
    let holders: Targets = Python::attach(|py| {
        agents
            .iter()
            .filter(|(id, _)| synced.contains(id))
            .map(|(id, agent)| (id.clone(), agent.clone_ref(py)))
            .collect()
    });
    outcomes.extend(prune_agents(op, retention, &holders).await?);
    let mut pruned = BTreeMap::new();
    for (place, outcome) in outcomes {
        if let Some(error) = &outcome.error {
            log::warn!(target: LOG, "Retention policy on {place}: {error}");
        }
        op.emit(&Event::Pruned {
            manager_state,
            agent_id: &place,
            removed: &outcome.removed,
            error: outcome.error.clone(),
        });
        if !outcome.removed.is_empty() {
            pruned.insert(place, outcome.removed);
        }
    }
    Ok(pruned)
}

async fn prune_local(op: &Op, retention: &Retention) -> Outcome {
    let dir = Location::Folder(op.inner.backup_dir.clone());
    match dir
        .prune(
            &retention.policy,
            Utc::now(),
            retention.zone,
            false,
            &op.cancel,
        )
        .await
    {
        Ok(plan) => Outcome {
            removed: plan.remove.into_iter().map(|item| item.slug).collect(),
            error: None,
        },
        Err(err) => Outcome {
            removed: Vec::new(),
            error: Some(err.to_string()),
        },
    }
}

/// One agent's id, its removals still to make as (slug, the agent's copy id) with the next one
/// last, and how its pruning went so far.
type Queue = (String, Vec<(String, String)>, Outcome);

/// Plans each agent's removals from its listing, then deletes them: agents side by side, each
/// one's deletions one after the other (a failure stops that agent's).
async fn prune_agents(
    op: &Op,
    retention: &Retention,
    holders: &Targets,
) -> PyResult<Vec<(String, Outcome)>> {
    let now = Utc::now();
    let mut queues: Vec<Queue> = Vec::new();
    for (agent_id, listing) in list_agents(op, holders).await? {
        let mut outcome = Outcome::default();
        let copies = match listing {
            Ok(copies) => copies,
            Err(err) => {
                outcome.error = Some(Python::attach(|py| describe(py, &err)));
                queues.push((agent_id, Vec::new(), outcome));
                continue;
            }
        };
        let items: Vec<Item> = copies
            .iter()
            .map(|c| Item {
                slug: c.slug.clone(),
                date: c.date.clone(),
            })
            .collect();
        let mut queue = Vec::new();
        match prune::plan(&items, &retention.policy, now, retention.zone) {
            Ok(plan) => {
                for item in plan.remove {
                    if let Some(copy) = copies.iter().find(|c| c.slug == item.slug) {
                        queue.push((item.slug, copy.id.clone()));
                    }
                }
            }
            Err(err) => outcome.error = Some(err.to_string()),
        }
        queue.reverse();
        queues.push((agent_id, queue, outcome));
    }
    loop {
        let targets: Targets = Python::attach(|py| {
            queues
                .iter()
                .filter(|(_, queue, outcome)| !queue.is_empty() && outcome.error.is_none())
                .filter_map(|(id, _, _)| holders.iter().find(|(known, _)| known == id))
                .map(|(id, agent)| (id.clone(), agent.clone_ref(py)))
                .collect()
        });
        if targets.is_empty() {
            break;
        }
        let answers = op
            .call_agents(&targets, "async_delete_backup", |py, agent_id, _| {
                let copy_id = queues
                    .iter()
                    .find(|(id, _, _)| id == agent_id)
                    .and_then(|(_, queue, _)| queue.last())
                    .map_or("", |(_, copy_id)| copy_id.as_str());
                kwargs(py, &[("id", &copy_id.into_pyobject(py)?.into_any())])
            })
            .await?;
        op.check_cancelled()?;
        for (agent_id, answer) in answers {
            let Some((_, queue, outcome)) = queues.iter_mut().find(|(id, _, _)| *id == agent_id)
            else {
                continue;
            };
            let Some((slug, _)) = queue.pop() else {
                continue;
            };
            match answer {
                Ok(_) => outcome.removed.push(slug),
                // Gone already: what the policy wanted.
                Err(Failure::Raised(err)) if Python::attach(|py| is_not_found(py, &err)) => {
                    outcome.removed.push(slug);
                }
                Err(Failure::Raised(err)) => {
                    let why = Python::attach(|py| describe(py, &err));
                    outcome.error = Some(format!("deleting {slug} failed: {why}"));
                }
                Err(Failure::TimedOut(limit)) => {
                    let after = seconds(limit);
                    outcome.error = Some(format!("deleting {slug} timed out after {after} s"));
                }
            }
        }
    }
    Ok(queues
        .into_iter()
        .map(|(agent_id, _, outcome)| (agent_id, outcome))
        .collect())
}
