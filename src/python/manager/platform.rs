//! Registration of an integration's backup platform: its hooks and its sync agents.

use pyo3::prelude::*;

use super::op::{kwargs, seconds, Failure, Op};
use super::state::{lock, Platform, Targets};
use crate::python::agent::BackupSyncAgent;
use crate::python::errors::{describe, Error};

fn platform_error(message: String) -> PyErr {
    Error::Platform(message).into()
}

/// A platform's hook, if it has one; one that is not callable is refused.
fn hook(platform: &Bound<'_, PyAny>, domain: &str, name: &str) -> PyResult<Option<Py<PyAny>>> {
    match platform.getattr_opt(name)? {
        Some(hook) if hook.is_callable() => Ok(Some(hook.unbind())),
        Some(_) => Err(platform_error(format!(
            "{name} of backup platform {domain} is not callable"
        ))),
        None => Ok(None),
    }
}

/// What `add_platform` checks before anything is awaited.
pub struct Checked {
    pub pre: Option<Py<PyAny>>,
    pub post: Option<Py<PyAny>>,
    pub factory: Option<Py<PyAny>>,
}

fn is_registered(op_registry: &super::state::Registry, domain: &str) -> bool {
    op_registry.platforms.iter().any(|p| p.domain == domain)
}

pub fn check(
    inner: &super::state::Inner,
    domain: &str,
    platform: &Bound<'_, PyAny>,
) -> PyResult<Checked> {
    if is_registered(&lock(&inner.registry), domain) {
        return Err(platform_error(format!(
            "Backup platform {domain} is already registered"
        )));
    }
    let pre = hook(platform, domain, "async_pre_backup")?;
    let post = hook(platform, domain, "async_post_backup")?;
    if pre.is_some() != post.is_some() {
        return Err(platform_error(format!(
            "Backup platform {domain} must define both async_pre_backup and async_post_backup, \
             or neither"
        )));
    }
    let factory = hook(platform, domain, "async_get_backup_sync_agents")?;
    Ok(Checked { pre, post, factory })
}

/// Asks the platform for its agents, then registers the platform and them.
pub async fn add_platform(op: &Op, domain: String, checked: Checked) -> PyResult<()> {
    let mut agents: Targets = Vec::new();
    if let Some(factory) = checked.factory {
        let what = format!("async_get_backup_sync_agents of {domain}");
        let targets = Python::attach(|py| vec![(domain.clone(), factory.clone_ref(py))]);
        let hass = Python::attach(|py| op.inner.hass.clone_ref(py));
        let answer = op
            .call_agents(&targets, "__call__", |py, _, _| {
                kwargs(py, &[("hass", hass.bind(py))])
            })
            .await?
            .pop();
        let value = match answer {
            Some((_, Ok(value))) => value,
            None => return Err(super::op::cancelled()),
            Some((_, Err(Failure::TimedOut(limit)))) => {
                return Err(platform_error(format!(
                    "{what} timed out after {} s",
                    seconds(limit)
                )))
            }
            Some((_, Err(Failure::Raised(err)))) => {
                return Err(Python::attach(|py| {
                    let message = format!("{what} failed: {}", describe(py, &err));
                    let wrapped = platform_error(message);
                    wrapped.set_cause(py, Some(err));
                    wrapped
                }))
            }
        };
        agents = Python::attach(|py| -> PyResult<Targets> {
            let mut agents: Targets = Vec::new();
            let items = value.bind(py).try_iter().map_err(|_| {
                platform_error(format!(
                    "async_get_backup_sync_agents of {domain} did not return a list"
                ))
            })?;
            for item in items {
                let item = item?;
                if !item.is_instance_of::<BackupSyncAgent>() {
                    return Err(platform_error(format!(
                        "{domain} returned {}, which is not a BackupSyncAgent",
                        item.repr()?
                    )));
                }
                let name: String = item.getattr("name")?.extract()?;
                let agent_id = format!("{domain}.{name}");
                if agents.iter().any(|(id, _)| *id == agent_id) {
                    return Err(platform_error(format!(
                        "Duplicate backup agent id: {agent_id}"
                    )));
                }
                agents.push((agent_id, item.unbind()));
            }
            Ok(agents)
        })?;
    }
    // The GIL before the registry's lock, as everywhere: the other order could deadlock with a
    // Python thread reading `sync_agents`.
    Python::attach(|_py| {
        let mut registry = lock(&op.inner.registry);
        if is_registered(&registry, &domain) {
            return Err(platform_error(format!(
                "Backup platform {domain} is already registered"
            )));
        }
        for (agent_id, _) in &agents {
            if registry.agents.iter().any(|(id, _)| id == agent_id) {
                return Err(platform_error(format!(
                    "Duplicate backup agent id: {agent_id}"
                )));
            }
        }
        registry.platforms.push(Platform {
            domain,
            pre: checked.pre,
            post: checked.post,
        });
        registry.agents.extend(agents);
        Ok(())
    })
}
