//! What a manager holds between operations: its settings, the registered platforms and agents,
//! and which operation (if any) is running.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use pyo3::prelude::*;

use crate::prune::{Policy, Zone};

pub const IDLE: &str = "idle";
pub const CREATE_BACKUP: &str = "create_backup";
pub const RESTORE_BACKUP: &str = "restore_backup";
pub const LOG: &str = "habackup.manager";
/// The backup dir's place among agent ids, in verify results and `Backup.pruned` (agent ids
/// always hold a dot, so it never clashes with one).
pub const LOCAL: &str = "local";

pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// An integration's hooks, registered under its domain.
pub struct Platform {
    pub domain: String,
    pub pre: Option<Py<PyAny>>,
    pub post: Option<Py<PyAny>>,
}

#[derive(Default)]
pub struct Registry {
    pub platforms: Vec<Platform>,
    pub agents: Vec<(String, Py<PyAny>)>,
}

/// `(agent id or domain, object)` pairs an operation calls.
pub type Targets = Vec<(String, Py<PyAny>)>;

/// The retention policy applied after each backup, and the time zone of its calendar.
pub struct Retention {
    pub policy: Policy,
    pub zone: Zone,
}

pub struct Inner {
    pub hass: Py<PyAny>,
    pub config_dir: PathBuf,
    pub backup_dir: PathBuf,
    pub ha_version: Option<String>,
    pub agent_timeout: Option<Duration>,
    pub retention: Option<Retention>,
    pub on_event: Py<PyAny>,
    pub state: Mutex<&'static str>,
    pub registry: Mutex<Registry>,
}

impl Inner {
    /// The hooks of every platform that has them: `(pre, post)`.
    pub fn hooks(&self, py: Python<'_>) -> (Targets, Targets) {
        let registry = lock(&self.registry);
        let mut pre = Vec::new();
        let mut post = Vec::new();
        for platform in &registry.platforms {
            if let Some(hook) = &platform.pre {
                pre.push((platform.domain.clone(), hook.clone_ref(py)));
            }
            if let Some(hook) = &platform.post {
                post.push((platform.domain.clone(), hook.clone_ref(py)));
            }
        }
        (pre, post)
    }

    /// The agents asked for (all of them for `None`), each once; an unknown id is refused.
    pub fn agents(&self, py: Python<'_>, ids: Option<Vec<String>>) -> Result<Targets, String> {
        let registry = lock(&self.registry);
        let Some(ids) = ids else {
            return Ok(registry
                .agents
                .iter()
                .map(|(id, agent)| (id.clone(), agent.clone_ref(py)))
                .collect());
        };
        let mut chosen: Targets = Vec::new();
        for id in ids {
            let Some((_, agent)) = registry.agents.iter().find(|(known, _)| *known == id) else {
                return Err(format!("Unknown backup agent: {id}"));
            };
            if !chosen.iter().any(|(known, _)| *known == id) {
                chosen.push((id, agent.clone_ref(py)));
            }
        }
        Ok(chosen)
    }

    /// Marks the manager busy with `state`, or says what it is busy with.
    pub fn begin(self: &Arc<Self>, state: &'static str) -> Result<Busy, String> {
        let mut current = lock(&self.state);
        if *current != IDLE {
            return Err(format!("Backup manager busy: {}", *current));
        }
        *current = state;
        Ok(Busy(self.clone()))
    }
}

/// Holds the manager's state for one operation and puts it back to idle however it ends.
pub struct Busy(Arc<Inner>);

impl Drop for Busy {
    fn drop(&mut self) {
        *lock(&self.0.state) = IDLE;
    }
}
