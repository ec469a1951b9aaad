//! `BackupSyncAgent`: the base class integrations subclass to ship backups somewhere else.

use pyo3::exceptions::PyNotImplementedError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString, PyTuple};

/// Base class of a sync agent: where the manager copies backups to (a NAS, a cloud store).
///
/// Subclass it and implement the four ``async_*`` coroutines; the defaults raise
/// ``NotImplementedError``. An integration's backup platform returns its agents from
/// ``async_get_backup_sync_agents(hass)``, and the manager gives each the id
/// ``"<domain>.<name>"``. Raise a ``habackup.BackupAgentError`` (or a subclass) for failures.
#[pyclass(subclass, module = "habackup")]
pub struct BackupSyncAgent {
    /// The agent's name, unique within its integration: the manager's agent id is
    /// ``"<domain>.<name>"``. Settable, as integrations often assign it in ``__init__``.
    #[pyo3(get, set)]
    name: String,
}

fn not_implemented(slf: &Bound<'_, BackupSyncAgent>, method: &str) -> PyErr {
    let class = slf
        .get_type()
        .name()
        .map_or_else(|_| "BackupSyncAgent".to_string(), |n| n.to_string());
    PyNotImplementedError::new_err(format!("{class} does not implement {method}"))
}

#[pymethods]
impl BackupSyncAgent {
    /// Lenient on purpose: a subclass's `__init__` may take other arguments and call
    /// `super().__init__(name)`; only `__init__` sets the name.
    #[new]
    #[pyo3(signature = (*args, **kwargs), text_signature = "(name)")]
    fn new(args: &Bound<'_, PyTuple>, kwargs: Option<&Bound<'_, PyDict>>) -> Self {
        let from_kwargs = kwargs
            .and_then(|k| k.get_item("name").ok().flatten())
            .and_then(|n| n.extract::<String>().ok());
        let from_args = args
            .get_item(0)
            .ok()
            .filter(|a| a.is_instance_of::<PyString>())
            .and_then(|a| a.extract::<String>().ok());
        BackupSyncAgent {
            name: from_kwargs.or(from_args).unwrap_or_default(),
        }
    }

    /// Sets ``name``.
    fn __init__(&mut self, name: String) {
        self.name = name;
    }

    /// ``async def async_upload_backup(self, *, path, metadata, **kwargs) -> None``: store the
    /// backup file at ``path`` (a ``pathlib.Path``); ``metadata`` is a ``BackupSyncMetadata``
    /// to keep beside it for ``async_list_backups``.
    #[pyo3(signature = (*, path, metadata, **kwargs))]
    fn async_upload_backup(
        slf: &Bound<'_, Self>,
        path: &Bound<'_, PyAny>,
        metadata: &Bound<'_, PyAny>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<()> {
        let _ = (path, metadata, kwargs);
        Err(not_implemented(slf, "async_upload_backup"))
    }

    /// ``async def async_download_backup(self, *, id, path, **kwargs) -> None``: write the
    /// copy with this agent's ``id`` to the file ``path``; raise ``BackupNotFound`` when there
    /// is none.
    #[pyo3(signature = (*, id, path, **kwargs))]
    fn async_download_backup(
        slf: &Bound<'_, Self>,
        id: &Bound<'_, PyAny>,
        path: &Bound<'_, PyAny>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<()> {
        let _ = (id, path, kwargs);
        Err(not_implemented(slf, "async_download_backup"))
    }

    /// ``async def async_list_backups(self, **kwargs) -> list[SyncedBackup]``: every backup
    /// this agent holds.
    #[pyo3(signature = (**kwargs))]
    fn async_list_backups(
        slf: &Bound<'_, Self>,

        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<()> {
        let _ = kwargs;
        Err(not_implemented(slf, "async_list_backups"))
    }

    /// ``async def async_delete_backup(self, *, id, **kwargs) -> None``: remove the copy with
    /// this agent's ``id``; raise ``BackupNotFound`` when there is none.
    #[pyo3(signature = (*, id, **kwargs))]
    fn async_delete_backup(
        slf: &Bound<'_, Self>,
        id: &Bound<'_, PyAny>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<()> {
        let _ = (id, kwargs);
        Err(not_implemented(slf, "async_delete_backup"))
    }

    fn __repr__(slf: &Bound<'_, Self>) -> PyResult<String> {
        let class = slf.get_type().name()?.to_string();
        let name = slf.getattr("name")?.repr()?.to_string();
        Ok(format!("<{class} name={name}>"))
    }
}
