//! `BackupManagerCore`, the engine behind `habackup.BackupManager`: platforms and agents, and
//! the create (with its retention policy), sync, list, download, remove, restore and verify
//! verbs.
//!
//! Each method checks its arguments and hands its verb to [`BackupManagerCore::spawn`]; the
//! verbs run on tokio (one file each), hooks and agents are awaited through the bridge
//! (`op::Op::fan_out`), file work runs on the blocking pool, and the GIL is only taken to touch
//! Python objects. `state` holds what lives between operations, `events` what subscribers hear.

mod create;
mod download;
mod events;
mod list;
mod op;
mod platform;
mod remove;
mod restore;
mod retention;
mod state;
mod sync;
mod verify;

use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

use self::events::{Event, Events};
use self::op::Op;
use self::state::{
    lock, Busy, Inner, Registry, Retention, CREATE_BACKUP, IDLE, LOCAL, RESTORE_BACKUP,
};
use crate::archive::{is_valid_slug, CreateOptions};
use crate::python::errors::{describe, Error};
use crate::python::locations::{check_dict, policy, zone};
use crate::python::object_store::ObjectStoreClient;
use crate::python::runtime::awaitable::future_into_py_with_locals;
use crate::python::runtime::cancel::{token, CancelToken};

fn check_slug(slug: &str) -> PyResult<()> {
    if is_valid_slug(slug) {
        Ok(())
    } else {
        Err(Error::Manager(format!("Invalid backup slug: {slug:?}")).into())
    }
}

#[pyclass(module = "habackup._core", frozen)]
pub struct BackupManagerCore {
    inner: Arc<Inner>,
}

impl BackupManagerCore {
    /// Runs `verb` as an asyncio future on the caller's loop, in the caller's context, under the
    /// caller's cancellation token.
    fn spawn<'py, F, Fut, T>(
        &self,
        py: Python<'py>,
        cancel: Option<PyRef<'_, CancelToken>>,
        verb: F,
    ) -> PyResult<Bound<'py, PyAny>>
    where
        F: FnOnce(Op) -> Fut,
        Fut: Future<Output = PyResult<T>> + Send + 'static,
        T: for<'a> IntoPyObject<'a> + Send + 'static,
    {
        let locals = pyo3_async_runtimes::tokio::get_current_locals(py)?;
        let op = Op {
            inner: self.inner.clone(),
            events: Events::new(py, &self.inner.on_event, &locals),
            locals: locals.clone(),
            cancel: token(cancel),
        };
        future_into_py_with_locals(py, locals, verb(op))
    }

    fn agents(&self, py: Python<'_>, ids: Option<Vec<String>>) -> PyResult<state::Targets> {
        self.inner
            .agents(py, ids)
            .map_err(|message| Error::Manager(message).into())
    }

    fn begin(&self, state: &'static str) -> PyResult<Busy> {
        self.inner
            .begin(state)
            .map_err(|message| Error::Manager(message).into())
    }
}

/// A verb that holds the manager's state: its start, end (completed or failed with the reason)
/// and the return to idle are events; idle comes before subscribers hear it, so one may start
/// the next operation at once.
async fn stateful<T>(
    op: &Op,
    busy: Busy,
    manager_state: &'static str,
    verb: impl Future<Output = PyResult<T>>,
) -> PyResult<T> {
    let result = verb.await;
    let end = match &result {
        Ok(_) => Event::stage(manager_state, None, "completed"),
        Err(err) => Event::Stage {
            manager_state,
            stage: None,
            state: "failed",
            reason: Some(Python::attach(|py| describe(py, err))),
        },
    };
    op.emit(&end);
    drop(busy);
    op.emit(&Event::Idle);
    result
}

#[pymethods]
impl BackupManagerCore {
    #[new]
    #[pyo3(signature = (hass, config_dir, backup_dir, ha_version, agent_timeout, on_event,
                        retention=None, retention_tz=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        hass: Py<PyAny>,
        config_dir: PathBuf,
        backup_dir: Option<PathBuf>,
        ha_version: Option<String>,
        agent_timeout: Option<f64>,
        on_event: Py<PyAny>,
        retention: Option<Bound<'_, PyDict>>,
        retention_tz: Option<String>,
    ) -> PyResult<Self> {
        let retention = match retention {
            Some(rules) => {
                let policy = policy(&rules)?;
                if policy.is_empty() {
                    return Err(pyo3::exceptions::PyValueError::new_err(
                        crate::prune::PruneError::EmptyPolicy.to_string(),
                    ));
                }
                Some(Retention {
                    policy,
                    zone: zone(retention_tz)?,
                })
            }
            None => None,
        };
        let agent_timeout = match agent_timeout {
            None => None,
            Some(t) if t.is_finite() && t > 0.0 => Some(Duration::from_secs_f64(t)),
            Some(t) => {
                return Err(Error::Manager(format!(
                    "agent_timeout must be a positive number of seconds, not {t}"
                ))
                .into())
            }
        };
        let backup_dir = backup_dir.unwrap_or_else(|| config_dir.join("backups"));
        Ok(BackupManagerCore {
            inner: Arc::new(Inner {
                hass,
                config_dir,
                backup_dir,
                ha_version,
                agent_timeout,
                retention,
                on_event,
                state: Mutex::new(IDLE),
                registry: Mutex::new(Registry::default()),
            }),
        })
    }

    #[getter]
    fn state(&self) -> &'static str {
        *lock(&self.inner.state)
    }

    #[getter]
    fn config_dir(&self) -> PathBuf {
        self.inner.config_dir.clone()
    }

    #[getter]
    fn backup_dir(&self) -> PathBuf {
        self.inner.backup_dir.clone()
    }

    #[getter]
    fn sync_agents<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let agents = PyDict::new(py);
        for (id, agent) in &lock(&self.inner.registry).agents {
            agents.set_item(id, agent.bind(py))?;
        }
        Ok(agents)
    }

    /// Registers an integration's backup platform: its hooks and its sync agents.
    #[pyo3(signature = (domain, platform, *, cancel=None))]
    fn add_platform<'py>(
        &self,
        py: Python<'py>,
        domain: String,
        platform: Bound<'py, PyAny>,
        cancel: Option<PyRef<'_, CancelToken>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let checked = platform::check(&self.inner, &domain, &platform)?;
        self.spawn(py, cancel, move |op| async move {
            platform::add_platform(&op, domain, checked).await
        })
    }

    /// Pre hooks, archive, post hooks (always), then uploads to the agents.
    #[pyo3(signature = (*, name=None, password=None, include_database=true, agent_ids=None,
                        excludes=None, cancel=None))]
    #[allow(clippy::too_many_arguments)]
    fn create_backup<'py>(
        &self,
        py: Python<'py>,
        name: Option<String>,
        password: Option<String>,
        include_database: bool,
        agent_ids: Option<Vec<String>>,
        excludes: Option<Vec<String>>,
        cancel: Option<PyRef<'_, CancelToken>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let agents = self.agents(py, agent_ids)?;
        let hooks = self.inner.hooks(py);
        let busy = self.begin(CREATE_BACKUP)?;
        // Like Home Assistant, a blank name gets the default, "Core <version>"; the version may
        // come from .HA_VERSION, which is read with the archive, off the event loop.
        let name = name.filter(|n| !n.trim().is_empty()).unwrap_or_default();
        let mut options = CreateOptions::new(name);
        options.password = password;
        options.include_database = include_database;
        options.excludes = excludes;
        options.ha_version = self.inner.ha_version.clone();
        self.spawn(py, cancel, move |op| async move {
            let verb = create::create(&op, hooks, options, &agents);
            stateful(&op, busy, CREATE_BACKUP, verb).await
        })
    }

    /// Uploads an existing local backup to the agents again.
    #[pyo3(signature = (slug, *, agent_ids=None, cancel=None))]
    fn sync_backup<'py>(
        &self,
        py: Python<'py>,
        slug: String,
        agent_ids: Option<Vec<String>>,
        cancel: Option<PyRef<'_, CancelToken>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        check_slug(&slug)?;
        let agents = self.agents(py, agent_ids)?;
        self.spawn(py, cancel, move |op| async move {
            sync::sync_backup(&op, slug, &agents).await
        })
    }

    /// `(backups by slug, errors by agent id)`: local backups merged with every agent's.
    #[pyo3(signature = (*, cancel=None))]
    fn get_backups<'py>(
        &self,
        py: Python<'py>,
        cancel: Option<PyRef<'_, CancelToken>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let agents = self.agents(py, None)?;
        self.spawn(py, cancel, move |op| async move {
            let (backups, errors) = list::all_backups(&op, &agents).await?;
            Python::attach(|py| -> PyResult<Py<PyAny>> {
                let by_slug = PyDict::new(py);
                for (slug, backup) in backups {
                    by_slug.set_item(slug, backup)?;
                }
                let by_agent = PyDict::new(py);
                for (agent_id, err) in errors {
                    by_agent.set_item(agent_id, err.value(py))?;
                }
                Ok(PyTuple::new(py, [by_slug.into_any(), by_agent.into_any()])?
                    .into_any()
                    .unbind())
            })
        })
    }

    #[pyo3(signature = (slug, *, cancel=None))]
    fn get_backup<'py>(
        &self,
        py: Python<'py>,
        slug: String,
        cancel: Option<PyRef<'_, CancelToken>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let agents = self.agents(py, None)?;
        self.spawn(py, cancel, move |op| async move {
            let (mut backups, _errors) = list::all_backups(&op, &agents).await?;
            Ok(backups.remove(&slug))
        })
    }

    /// Downloads an agent's copy into the backup dir (or `path`), checked before it appears.
    #[pyo3(signature = (*, agent_id, id, path=None, cancel=None))]
    fn download_backup<'py>(
        &self,
        py: Python<'py>,
        agent_id: String,
        id: String,
        path: Option<PathBuf>,
        cancel: Option<PyRef<'_, CancelToken>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let agents = self.agents(py, Some(vec![agent_id.clone()]))?;
        self.spawn(py, cancel, move |op| async move {
            download::download(&op, &agents, &agent_id, &id, path).await
        })
    }

    /// Deletes a backup locally and from every agent that holds it.
    #[pyo3(signature = (slug, *, cancel=None))]
    fn remove_backup<'py>(
        &self,
        py: Python<'py>,
        slug: String,
        cancel: Option<PyRef<'_, CancelToken>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        check_slug(&slug)?;
        let agents = self.agents(py, None)?;
        self.spawn(py, cancel, move |op| async move {
            remove::remove(&op, &agents, &slug).await
        })
    }

    /// Verifies a backup where each copy is stored: `{agent id or "local": check dict}`.
    #[pyo3(signature = (slug, *, agent_ids=None, deep=false, password=None, cancel=None))]
    fn verify_backup<'py>(
        &self,
        py: Python<'py>,
        slug: String,
        agent_ids: Option<Vec<String>>,
        deep: bool,
        password: Option<String>,
        cancel: Option<PyRef<'_, CancelToken>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        check_slug(&slug)?;
        let asked = verify::Asked {
            local: agent_ids
                .as_ref()
                .is_none_or(|ids| ids.iter().any(|id| id == LOCAL)),
            named: agent_ids.is_some(),
            slug,
            deep,
            password,
        };
        let ids = agent_ids.map(|ids| ids.into_iter().filter(|id| id != LOCAL).collect());
        let agents = self.agents(py, ids)?;
        // An object-store agent's copy is verified in place, through its own store.
        let stores = agents
            .iter()
            .map(|(_, agent)| {
                let client = agent.bind(py).getattr_opt("_client").ok().flatten()?;
                let client = client.cast::<ObjectStoreClient>().ok()?;
                Some(client.get().store())
            })
            .collect();
        self.spawn(py, cancel, move |op| async move {
            let verdicts = verify::verify(&op, &agents, stores, asked).await?;
            Python::attach(|py| -> PyResult<Py<PyAny>> {
                let by_place = PyDict::new(py);
                for (place, location, check) in verdicts {
                    by_place.set_item(place, check_dict(py, &location, check)?)?;
                }
                Ok(by_place.into_any().unbind())
            })
        })
    }

    /// Restores a local backup into the config dir.
    #[pyo3(signature = (slug, *, password=None, restore_database=true, cancel=None))]
    fn restore_backup<'py>(
        &self,
        py: Python<'py>,
        slug: String,
        password: Option<String>,
        restore_database: bool,
        cancel: Option<PyRef<'_, CancelToken>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        check_slug(&slug)?;
        let busy = self.begin(RESTORE_BACKUP)?;
        self.spawn(py, cancel, move |op| async move {
            op.emit(&Event::stage(RESTORE_BACKUP, None, "in_progress"));
            let verb = restore::restore(&op, &slug, password, restore_database);
            stateful(&op, busy, RESTORE_BACKUP, verb).await
        })
    }
}
