//! `create_archive`, `read_backup` and `extract_archive`, each async one with a sync twin.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use pyo3::prelude::*;
use serde_json::{Map, Value};

use super::backup::Backup;
use super::blocking::{run_interruptible, CancelOnDrop};
use super::errors::{convert, to_py};
use super::progress::{relay, Progress};
use crate::archive::{self, ArchiveError, CancelFlag, CreateOptions, ExtractSummary, VerifyReport};
use tokio::task::JoinHandle;

/// Lets the Python wrapper stop blocking work it started, and wait for its clean-up.
#[pyclass(module = "habackup._core")]
#[derive(Clone, Default)]
pub struct CancelToken(CancelFlag);

#[pymethods]
impl CancelToken {
    #[new]
    fn new() -> Self {
        Self::default()
    }

    fn cancel(&self) {
        self.0.cancel();
    }

    #[getter]
    fn cancelled(&self) -> bool {
        self.0.is_cancelled()
    }
}

impl CancelToken {
    pub fn flag(&self) -> CancelFlag {
        self.0.clone()
    }
}

#[allow(clippy::too_many_arguments)]
fn create_options(
    name: String,
    include_database: bool,
    excludes: Option<Vec<String>>,
    ha_version: Option<String>,
    extra: Option<&Bound<'_, PyAny>>,
    compresslevel: u32,
    threads: Option<usize>,
    password: Option<String>,
    securetar_version: u8,
) -> Result<CreateOptions, ArchiveError> {
    let mut options = CreateOptions::new(name);
    options.password = password;
    options.securetar_version = securetar_version;
    options.include_database = include_database;
    options.excludes = excludes;
    options.ha_version = ha_version;
    options.compresslevel = compresslevel;
    if let Some(threads) = threads {
        if threads == 0 {
            return Err(ArchiveError::InvalidArgument(
                "threads must be at least 1".into(),
            ));
        }
        options.threads = threads;
    }
    if let Some(extra) = extra {
        let value: Value = pythonize::depythonize(extra).map_err(|e| {
            ArchiveError::InvalidArgument(format!("extra must be a JSON-compatible mapping: {e}"))
        })?;
        let Value::Object(map) = value else {
            return Err(ArchiveError::InvalidArgument(
                "extra must be a mapping".into(),
            ));
        };
        options.extra = map;
    } else {
        options.extra = Map::new();
    }
    Ok(options)
}

fn run_create(
    config_dir: PathBuf,
    path: PathBuf,
    options: CreateOptions,
    cancel: CancelFlag,
    progress: Option<Progress>,
) -> Result<Backup, ArchiveError> {
    let callback = progress.as_deref().map(|p| p as &(dyn Fn(u64, u64) + Sync));
    archive::create_archive(&config_dir, &path, &options, &cancel, callback).map(Backup::from)
}

/// Calls a Python callback from a worker thread; a failing callback is logged, never fatal.
fn sync_progress(callback: Py<PyAny>) -> Progress {
    Arc::new(move |done, total| {
        Python::attach(|py| {
            if let Err(err) = callback.call1(py, (done, total)) {
                err.print(py);
            }
        });
    })
}

/// Schedules the callback on the event loop so it runs on the loop's thread, like every asyncio
/// callback; see `progress` for why a relay task does it.
pub(super) fn loop_progress(
    event_loop: Py<PyAny>,
    callback: Py<PyAny>,
) -> (Progress, JoinHandle<()>) {
    relay(move |py, done, total| {
        if let Err(err) =
            event_loop.call_method1(py, "call_soon_threadsafe", (&callback, done, total))
        {
            err.print(py);
        }
    })
}

#[pyfunction]
#[pyo3(signature = (config_dir, path, *, name, include_database=true, excludes=None, ha_version=None,
                    extra=None, compresslevel=6, threads=None, on_progress=None, password=None,
                    securetar_version=3))]
#[allow(clippy::too_many_arguments)]
pub fn create_archive(
    py: Python<'_>,
    config_dir: PathBuf,
    path: PathBuf,
    name: String,
    include_database: bool,
    excludes: Option<Vec<String>>,
    ha_version: Option<String>,
    extra: Option<Bound<'_, PyAny>>,
    compresslevel: u32,
    threads: Option<usize>,
    on_progress: Option<Py<PyAny>>,
    password: Option<String>,
    securetar_version: u8,
) -> PyResult<Backup> {
    let options = create_options(
        name,
        include_database,
        excludes,
        ha_version,
        extra.as_ref(),
        compresslevel,
        threads,
        password,
        securetar_version,
    )
    .map_err(|e| to_py(py, e))?;
    let cancel = CancelFlag::new();
    let progress = on_progress.map(sync_progress);
    let work_cancel = cancel.clone();
    let result = run_interruptible(py, &cancel, move || {
        run_create(config_dir, path, options, work_cancel, progress)
    })?;
    result.map_err(|e| to_py(py, e))
}

#[pyfunction]
#[pyo3(signature = (config_dir, path, *, name, include_database=true, excludes=None, ha_version=None,
                    extra=None, compresslevel=6, threads=None, on_progress=None, password=None,
                    securetar_version=3, cancel=None))]
#[allow(clippy::too_many_arguments)]
pub fn create_archive_async<'py>(
    py: Python<'py>,
    config_dir: PathBuf,
    path: PathBuf,
    name: String,
    include_database: bool,
    excludes: Option<Vec<String>>,
    ha_version: Option<String>,
    extra: Option<Bound<'py, PyAny>>,
    compresslevel: u32,
    threads: Option<usize>,
    on_progress: Option<Py<PyAny>>,
    password: Option<String>,
    securetar_version: u8,
    cancel: Option<PyRef<'_, CancelToken>>,
) -> PyResult<Bound<'py, PyAny>> {
    let options = create_options(
        name,
        include_database,
        excludes,
        ha_version,
        extra.as_ref(),
        compresslevel,
        threads,
        password,
        securetar_version,
    )
    .map_err(|e| to_py(py, e))?;
    let cancel = cancel.map(|c| c.0.clone()).unwrap_or_default();
    let (progress, relay_task) = match on_progress {
        Some(callback) => {
            let event_loop = pyo3_async_runtimes::tokio::get_current_loop(py)?.unbind();
            let (progress, task) = loop_progress(event_loop, callback);
            (Some(progress), Some(task))
        }
        None => (None, None),
    };
    let guard = CancelOnDrop(cancel.clone());
    super::awaitable::future_into_py(py, async move {
        let _guard = guard;
        let work = tokio::task::spawn_blocking(move || {
            run_create(config_dir, path, options, cancel, progress)
        });
        let result = work.await.map_err(|e| {
            pyo3::exceptions::PyRuntimeError::new_err(format!("archive task failed: {e}"))
        });
        if let Some(task) = relay_task {
            // The last progress figures reach the loop before the result does.
            let _ = task.await;
        }
        convert(result?)
    })
}

#[pyfunction]
pub fn read_backup(py: Python<'_>, path: PathBuf) -> PyResult<Backup> {
    let result = py.detach(|| archive::read_backup(&path));
    result.map(Backup::from).map_err(|e| to_py(py, e))
}

fn summary_dict(summary: ExtractSummary) -> HashMap<&'static str, u64> {
    HashMap::from([
        ("files", summary.files),
        ("directories", summary.directories),
        ("symlinks", summary.symlinks),
        ("bytes", summary.bytes),
    ])
}

#[pyfunction]
#[pyo3(signature = (path, dest, *, password=None))]
pub fn extract_archive(
    py: Python<'_>,
    path: PathBuf,
    dest: PathBuf,
    password: Option<String>,
) -> PyResult<HashMap<&'static str, u64>> {
    let cancel = CancelFlag::new();
    let work_cancel = cancel.clone();
    let result = run_interruptible(py, &cancel, move || {
        archive::extract_protected_archive(&path, &dest, password.as_deref(), &work_cancel)
    })?;
    result.map(summary_dict).map_err(|e| to_py(py, e))
}

#[pyfunction]
#[pyo3(signature = (path, dest, *, password=None, cancel=None))]
pub fn extract_archive_async<'py>(
    py: Python<'py>,
    path: PathBuf,
    dest: PathBuf,
    password: Option<String>,
    cancel: Option<PyRef<'py, CancelToken>>,
) -> PyResult<Bound<'py, PyAny>> {
    let cancel = cancel.map(|c| c.0.clone()).unwrap_or_default();
    let guard = CancelOnDrop(cancel.clone());
    super::awaitable::future_into_py(py, async move {
        let _guard = guard;
        let work = tokio::task::spawn_blocking(move || {
            archive::extract_protected_archive(&path, &dest, password.as_deref(), &cancel)
        });
        let result = work.await.map_err(|e| {
            pyo3::exceptions::PyRuntimeError::new_err(format!("extract task failed: {e}"))
        })?;
        convert(result.map(summary_dict))
    })
}

/// Whether `password` opens the backup (the cheap key check; Argon2 runs without the GIL).
#[pyfunction]
pub fn validate_password(py: Python<'_>, path: PathBuf, password: String) -> PyResult<bool> {
    let result = py.detach(|| archive::validate_password(&path, &password));
    result.map_err(|e| to_py(py, e))
}

/// `verify_archive`'s result, a dict on the Python side (`habackup.VerifyReport`).
#[derive(IntoPyObject)]
pub struct VerifyDict {
    members: u64,
    bytes: u64,
    protected: bool,
    securetar_version: Option<u8>,
    warnings: Vec<String>,
}

fn report_dict(report: VerifyReport) -> VerifyDict {
    VerifyDict {
        members: report.members,
        bytes: report.bytes,
        protected: report.protected,
        securetar_version: report.securetar_version,
        warnings: report.warnings,
    }
}

#[pyfunction]
#[pyo3(signature = (path, *, password=None))]
pub fn verify_archive(
    py: Python<'_>,
    path: PathBuf,
    password: Option<String>,
) -> PyResult<VerifyDict> {
    let cancel = CancelFlag::new();
    let work_cancel = cancel.clone();
    let result = run_interruptible(py, &cancel, move || {
        archive::verify_archive(&path, password.as_deref(), &work_cancel)
    })?;
    result.map(report_dict).map_err(|e| to_py(py, e))
}

#[pyfunction]
#[pyo3(signature = (path, *, password=None, cancel=None))]
pub fn verify_archive_async<'py>(
    py: Python<'py>,
    path: PathBuf,
    password: Option<String>,
    cancel: Option<PyRef<'py, CancelToken>>,
) -> PyResult<Bound<'py, PyAny>> {
    let cancel = cancel.map(|c| c.0.clone()).unwrap_or_default();
    let guard = CancelOnDrop(cancel.clone());
    super::awaitable::future_into_py(py, async move {
        let _guard = guard;
        let work = tokio::task::spawn_blocking(move || {
            archive::verify_archive(&path, password.as_deref(), &cancel)
        });
        let result = work.await.map_err(|e| {
            pyo3::exceptions::PyRuntimeError::new_err(format!("verify task failed: {e}"))
        })?;
        convert(result.map(report_dict))
    })
}
