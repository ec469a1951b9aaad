//! The events subscribers get, with Home Assistant's stage and state names, built and delivered
//! in one place: as a dict, on the caller's loop thread, in the caller's context.

use pyo3::prelude::*;
use pyo3::types::PyDict;
use pyo3_async_runtimes::TaskLocals;

use super::state::{IDLE, LOG};

pub enum Event<'a> {
    /// An operation or one of its stages started, completed or failed.
    Stage {
        manager_state: &'static str,
        stage: Option<&'static str>,
        state: &'static str,
        reason: Option<String>,
    },
    /// How much of the config dir the archive has read.
    ArchiveProgress {
        manager_state: &'static str,
        done: u64,
        total: u64,
    },
    /// How much of the backup an agent has uploaded.
    UploadProgress {
        manager_state: &'static str,
        agent_id: &'a str,
        uploaded: u64,
        total: u64,
    },
    /// The retention policy removed backups from an agent (or the backup dir, `"local"`), or
    /// could not.
    Pruned {
        manager_state: &'static str,
        agent_id: &'a str,
        removed: &'a [String],
        error: Option<String>,
    },
    /// The manager is free for the next operation.
    Idle,
}

impl Event<'_> {
    pub fn stage(
        manager_state: &'static str,
        stage: Option<&'static str>,
        state: &'static str,
    ) -> Self {
        Event::Stage {
            manager_state,
            stage,
            state,
            reason: None,
        }
    }

    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        match self {
            Event::Stage {
                manager_state,
                stage,
                state,
                reason,
            } => {
                d.set_item("manager_state", manager_state)?;
                d.set_item("stage", stage)?;
                d.set_item("state", state)?;
                if let Some(reason) = reason {
                    d.set_item("reason", reason)?;
                }
            }
            Event::ArchiveProgress {
                manager_state,
                done,
                total,
            } => {
                d.set_item("manager_state", manager_state)?;
                d.set_item("stage", "home_assistant")?;
                d.set_item("bytes_done", done)?;
                d.set_item("bytes_total", total)?;
            }
            Event::UploadProgress {
                manager_state,
                agent_id,
                uploaded,
                total,
            } => {
                d.set_item("manager_state", manager_state)?;
                d.set_item("stage", "upload_to_agents")?;
                d.set_item("agent_id", agent_id)?;
                d.set_item("uploaded_bytes", uploaded)?;
                d.set_item("total_bytes", total)?;
            }
            Event::Pruned {
                manager_state,
                agent_id,
                removed,
                error,
            } => {
                d.set_item("manager_state", manager_state)?;
                d.set_item("stage", "cleaning_up")?;
                d.set_item("agent_id", agent_id)?;
                d.set_item("removed", *removed)?;
                if let Some(error) = error {
                    d.set_item("error", error)?;
                }
            }
            Event::Idle => d.set_item("manager_state", IDLE)?,
        }
        Ok(d)
    }
}

/// Where an operation's events go: the subscribers, called on the caller's loop.
pub struct Events {
    on_event: Py<PyAny>,
    event_loop: Py<PyAny>,
    context: Py<PyAny>,
}

impl Events {
    pub fn new(py: Python<'_>, on_event: &Py<PyAny>, locals: &TaskLocals) -> Self {
        Events {
            on_event: on_event.clone_ref(py),
            event_loop: locals.event_loop(py).unbind(),
            context: locals.context(py).unbind(),
        }
    }

    pub fn clone_ref(&self, py: Python<'_>) -> Self {
        Events {
            on_event: self.on_event.clone_ref(py),
            event_loop: self.event_loop.clone_ref(py),
            context: self.context.clone_ref(py),
        }
    }

    /// Hands `event` to the subscribers on the loop thread. Never fails the operation.
    pub fn deliver(&self, py: Python<'_>, event: &Event<'_>) {
        let sent = (|| -> PyResult<()> {
            let kwargs = PyDict::new(py);
            kwargs.set_item("context", self.context.bind(py))?;
            self.event_loop.bind(py).call_method(
                "call_soon_threadsafe",
                (self.on_event.bind(py), event.to_dict(py)?),
                Some(&kwargs),
            )?;
            Ok(())
        })();
        if let Err(err) = sent {
            log::debug!(target: LOG, "cannot deliver an event: {err}");
        }
    }

    pub fn emit(&self, event: &Event<'_>) {
        Python::attach(|py| self.deliver(py, event));
    }
}
