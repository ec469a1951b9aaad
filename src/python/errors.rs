//! Maps engine errors to habackup's Python exception hierarchy (defined in `habackup.errors`).

use pyo3::exceptions::asyncio::CancelledError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::archive::ArchiveError;
use crate::store::StoreError;

fn raise(py: Python<'_>, class: &str, message: String, path: Option<String>) -> PyErr {
    let built = (|| -> PyResult<PyErr> {
        let errors = py.import("habackup.errors")?;
        let kwargs = PyDict::new(py);
        if let Some(path) = path {
            kwargs.set_item("path", path)?;
        }
        let exc = errors.getattr(class)?.call((message,), Some(&kwargs))?;
        Ok(PyErr::from_value(exc))
    })();
    built.unwrap_or_else(|e| e)
}

pub fn to_py(py: Python<'_>, err: ArchiveError) -> PyErr {
    let message = err.to_string();
    match err {
        ArchiveError::Io { path, .. } => raise(
            py,
            "ArchiveError",
            message,
            Some(path.display().to_string()),
        ),
        ArchiveError::InvalidBackup { path, .. } => raise(
            py,
            "InvalidBackupError",
            message,
            Some(path.display().to_string()),
        ),
        ArchiveError::IncorrectPassword { path, .. } => raise(
            py,
            "IncorrectPasswordError",
            message,
            Some(path.display().to_string()),
        ),
        ArchiveError::Unsupported { path, .. } => raise(
            py,
            "UnsupportedBackupError",
            message,
            Some(path.display().to_string()),
        ),
        ArchiveError::InvalidArgument(_) => raise(py, "ArchiveError", message, None),
        ArchiveError::Cancelled => CancelledError::new_err("operation cancelled"),
    }
}

pub fn convert<T>(result: Result<T, ArchiveError>) -> PyResult<T> {
    result.map_err(|e| Python::attach(|py| to_py(py, e)))
}

pub fn store_to_py(py: Python<'_>, err: StoreError) -> PyErr {
    match err {
        StoreError::InvalidConfig(message) => raise(py, "BackupAgentConfigError", message, None),
        StoreError::Unreachable(message) => raise(py, "BackupAgentUnreachableError", message, None),
        StoreError::NotFound(message) => raise(py, "BackupNotFound", message, None),
        StoreError::Failed(message) => raise(py, "BackupAgentError", message, None),
        StoreError::Archive(err) => to_py(py, err),
        StoreError::Cancelled => CancelledError::new_err("operation cancelled"),
    }
}
