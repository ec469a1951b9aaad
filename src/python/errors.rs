//! Every error that leaves the engine for Python, mapped in this one place to habackup's
//! exception hierarchy (defined in Python, `habackup.errors`, and looked up once per class).
//! Messages quote backup names, paths, header bytes and agents' texts, so each one is escaped
//! here ([`escape`]): an exception's text is one line of printable characters.

use pyo3::exceptions::asyncio::CancelledError;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyType};
use pyo3::PyTypeInfo;

use crate::archive::ArchiveError;
use crate::common::redact::redact_urls;
use crate::common::text::escape;
use crate::common::Cancelled;
use crate::store::{ProbeError, StoreError};

mod classes {
    pyo3::import_exception!(habackup.errors, ArchiveError);
    pyo3::import_exception!(habackup.errors, BackupAgentConfigError);
    pyo3::import_exception!(habackup.errors, BackupAgentError);
    pyo3::import_exception!(habackup.errors, BackupAgentProbeError);
    pyo3::import_exception!(habackup.errors, BackupAgentUnreachableError);
    pyo3::import_exception!(habackup.errors, BackupError);
    pyo3::import_exception!(habackup.errors, BackupHookError);
    pyo3::import_exception!(habackup.errors, BackupManagerError);
    pyo3::import_exception!(habackup.errors, BackupNotFound);
    pyo3::import_exception!(habackup.errors, BackupPlatformError);
    pyo3::import_exception!(habackup.errors, IncorrectPasswordError);
    pyo3::import_exception!(habackup.errors, InvalidBackupError);
    pyo3::import_exception!(habackup.errors, UnsupportedBackupError);
}

/// What went wrong, as habackup's Python code will see it.
#[derive(Debug)]
pub enum Error {
    Archive(ArchiveError),
    Store(StoreError),
    /// A store failed its probe; the class carries the problem's code.
    Probe(ProbeError),
    /// The manager cannot do what was asked (busy, unknown agent, bad argument).
    Manager(String),
    /// An integration's backup platform is malformed.
    Platform(String),
    /// No backup with that slug or id.
    NotFound(String),
    /// An agent failed; its own exception, if any, becomes the `__cause__`.
    Agent(String, Option<PyErr>),
    /// A pre or post backup hook raised.
    Hook {
        message: String,
        domain: String,
        stage: &'static str,
        cause: PyErr,
    },
    Cancelled,
}

impl From<ArchiveError> for Error {
    fn from(err: ArchiveError) -> Self {
        Error::Archive(err)
    }
}

impl From<StoreError> for Error {
    fn from(err: StoreError) -> Self {
        Error::Store(err)
    }
}

impl From<ProbeError> for Error {
    fn from(err: ProbeError) -> Self {
        Error::Probe(err)
    }
}

impl From<Cancelled> for Error {
    fn from(_: Cancelled) -> Self {
        Error::Cancelled
    }
}

/// `class(message, **kwargs)`, with `cause` as its `__cause__`.
fn build(
    py: Python<'_>,
    class: Bound<'_, PyType>,
    message: String,
    kwargs: &[(&str, String)],
    cause: Option<PyErr>,
) -> PyErr {
    let built = (|| -> PyResult<PyErr> {
        let kw = PyDict::new(py);
        for (key, value) in kwargs {
            kw.set_item(key, value)?;
        }
        let err = PyErr::from_value(class.call((escape(&message),), Some(&kw))?);
        if let Some(cause) = cause {
            err.set_cause(py, Some(cause));
        }
        Ok(err)
    })();
    built.unwrap_or_else(|e| e)
}

fn archive_error(py: Python<'_>, err: ArchiveError) -> PyErr {
    use classes as py_class;
    let message = err.to_string();
    let (class, path) = match &err {
        ArchiveError::Io { path, .. } | ArchiveError::Failed { path, .. } => {
            (py_class::ArchiveError::type_object(py), Some(path))
        }
        ArchiveError::InvalidBackup { path, .. } => {
            (py_class::InvalidBackupError::type_object(py), Some(path))
        }
        ArchiveError::IncorrectPassword { path, .. } => (
            py_class::IncorrectPasswordError::type_object(py),
            Some(path),
        ),
        ArchiveError::Unsupported { path, .. } => (
            py_class::UnsupportedBackupError::type_object(py),
            Some(path),
        ),
        ArchiveError::InvalidArgument(_) => (py_class::ArchiveError::type_object(py), None),
        ArchiveError::Cancelled => return CancelledError::new_err("operation cancelled"),
    };
    let kwargs: Vec<(&str, String)> = path
        .map(|p| vec![("path", p.display().to_string())])
        .unwrap_or_default();
    build(py, class, message, &kwargs, None)
}

fn store_error(py: Python<'_>, err: StoreError) -> PyErr {
    use classes::*;
    let class = match err {
        StoreError::InvalidConfig(_) => BackupAgentConfigError::type_object(py),
        StoreError::Unreachable(_) => BackupAgentUnreachableError::type_object(py),
        StoreError::NotFound(_) => BackupNotFound::type_object(py),
        StoreError::Failed(_) => BackupAgentError::type_object(py),
        StoreError::Archive(err) => return archive_error(py, err),
        StoreError::Cancelled => return CancelledError::new_err("operation cancelled"),
    };
    build(py, class, err.to_string(), &[], None)
}

impl From<Error> for PyErr {
    fn from(err: Error) -> PyErr {
        use classes::*;
        Python::attach(|py| match err {
            Error::Archive(err) => archive_error(py, err),
            Error::Store(err) => store_error(py, err),
            Error::Probe(err) => build(
                py,
                BackupAgentProbeError::type_object(py),
                err.to_string(),
                &[("problem", err.code().to_string())],
                None,
            ),
            Error::Manager(message) => {
                build(py, BackupManagerError::type_object(py), message, &[], None)
            }
            Error::Platform(message) => {
                build(py, BackupPlatformError::type_object(py), message, &[], None)
            }
            Error::NotFound(message) => {
                build(py, BackupNotFound::type_object(py), message, &[], None)
            }
            Error::Agent(message, cause) => {
                build(py, BackupAgentError::type_object(py), message, &[], cause)
            }
            Error::Hook {
                message,
                domain,
                stage,
                cause,
            } => build(
                py,
                BackupHookError::type_object(py),
                message,
                &[("domain", domain), ("stage", stage.to_string())],
                Some(cause),
            ),
            Error::Cancelled => CancelledError::new_err("operation cancelled"),
        })
    }
}

impl From<ArchiveError> for PyErr {
    fn from(err: ArchiveError) -> PyErr {
        Error::Archive(err).into()
    }
}

impl From<ProbeError> for PyErr {
    fn from(err: ProbeError) -> PyErr {
        Error::Probe(err).into()
    }
}

impl From<StoreError> for PyErr {
    fn from(err: StoreError) -> PyErr {
        Error::Store(err).into()
    }
}

/// `"Type: message"`, the way a failed agent or hook is reported (URLs redacted, escaped).
pub fn describe(py: Python<'_>, err: &PyErr) -> String {
    let name = err
        .get_type(py)
        .name()
        .map_or_else(|_| "Exception".to_string(), |n| escape(&n.to_string()));
    let message = escape(&redact_urls(&err.value(py).to_string()));
    if message.is_empty() {
        name
    } else {
        format!("{name}: {message}")
    }
}

/// KeyboardInterrupt, SystemExit, CancelledError...: never recorded as a failure, always raised.
pub fn is_fatal(py: Python<'_>, err: &PyErr) -> bool {
    !err.is_instance_of::<PyException>(py)
}

/// Whether `err` is one of habackup's own (an agent's BackupNotFound, say): it passes through.
pub fn is_backup_error(py: Python<'_>, err: &PyErr) -> bool {
    err.is_instance(py, &classes::BackupError::type_object(py))
}

/// Whether `err` is a `BackupNotFound` (an agent asked for a copy it no longer has).
pub fn is_not_found(py: Python<'_>, err: &PyErr) -> bool {
    err.is_instance(py, &classes::BackupNotFound::type_object(py))
}
