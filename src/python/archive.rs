//! The archiver's functions for Python: create, read, list, extract, verify, restore, each async
//! one with a sync twin. Options are converted here; the work is `crate::archive`'s.

use std::collections::HashMap;
use std::path::PathBuf;

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use serde_json::Value;

use super::backup::Backup;
use super::runtime::awaitable::future_into_py;
use super::runtime::blocking::{run_cancellable, run_interruptible};
use super::runtime::cancel::{token, CancelToken};
use super::runtime::progress;
use crate::archive::{
    self, ArchiveError, CreateOptions, ExtractSummary, RestoreOptions, RestoreReport, VerifyReport,
};
use crate::common::Progress;

/// `habackup.CreateOptions` (a dict) as the engine's options, and its `on_progress`.
fn create_options(options: &Bound<'_, PyDict>) -> PyResult<(CreateOptions, Option<Py<PyAny>>)> {
    let mut created = CreateOptions::new(String::new());
    let mut named = false;
    let mut on_progress = None;
    for (key, value) in options.iter() {
        let key: String = key.extract()?;
        if value.is_none() && key != "name" {
            continue;
        }
        match key.as_str() {
            "name" => {
                created.name = value.extract()?;
                named = true;
            }
            "include_database" => created.include_database = value.extract()?,
            "excludes" => created.excludes = Some(value.extract()?),
            "ha_version" => created.ha_version = Some(value.extract()?),
            "extra" => {
                let extra: Value = pythonize::depythonize(&value).map_err(|e| {
                    ArchiveError::InvalidArgument(format!(
                        "extra must be a JSON-compatible mapping: {e}"
                    ))
                })?;
                let Value::Object(extra) = extra else {
                    return Err(
                        ArchiveError::InvalidArgument("extra must be a mapping".into()).into(),
                    );
                };
                created.extra = extra;
            }
            "compresslevel" => created.compresslevel = value.extract()?,
            "threads" => {
                created.threads = value.extract()?;
                if created.threads == 0 {
                    return Err(
                        ArchiveError::InvalidArgument("threads must be at least 1".into()).into(),
                    );
                }
            }
            "on_progress" => on_progress = Some(value.unbind()),
            "password" => created.password = Some(value.extract()?),
            "securetar_version" => created.securetar_version = value.extract()?,
            other => {
                return Err(PyTypeError::new_err(format!(
                    "create_archive() got an unexpected keyword argument {other:?}"
                )))
            }
        }
    }
    if !named {
        return Err(PyTypeError::new_err(
            "create_archive() missing required keyword argument: 'name'",
        ));
    }
    Ok((created, on_progress))
}

fn run_create(
    config_dir: PathBuf,
    path: PathBuf,
    options: CreateOptions,
    cancel: &crate::common::CancelToken,
    progress: Option<Progress>,
) -> Result<Backup, ArchiveError> {
    let callback = progress.as_deref().map(|p| p as &(dyn Fn(u64, u64) + Sync));
    archive::create_archive(&config_dir, &path, &options, cancel, callback).map(Backup::from)
}

#[pyfunction]
pub fn create_archive(
    py: Python<'_>,
    config_dir: PathBuf,
    path: PathBuf,
    options: Bound<'_, PyDict>,
) -> PyResult<Backup> {
    let (options, on_progress) = create_options(&options)?;
    let progress = on_progress.map(progress::on_thread);
    run_interruptible(py, move |cancel| {
        run_create(config_dir, path, options, &cancel, progress)
    })
}

#[pyfunction]
#[pyo3(signature = (config_dir, path, options, cancel=None))]
pub fn create_archive_async<'py>(
    py: Python<'py>,
    config_dir: PathBuf,
    path: PathBuf,
    options: Bound<'py, PyDict>,
    cancel: Option<PyRef<'_, CancelToken>>,
) -> PyResult<Bound<'py, PyAny>> {
    let (options, on_progress) = create_options(&options)?;
    let (progress, relay) = progress::on_loop(py, on_progress)?;
    let cancel = token(cancel);
    future_into_py(py, async move {
        let result = run_cancellable(&cancel, move |cancel| {
            run_create(config_dir, path, options, &cancel, progress)
        })
        .await;
        if let Some(relay) = relay {
            // The last progress figures reach the loop before the result does.
            let _ = relay.await;
        }
        result
    })
}

#[pyfunction]
pub fn read_backup(py: Python<'_>, path: PathBuf) -> PyResult<Backup> {
    let result = py.detach(|| archive::read_backup(&path));
    Ok(Backup::from(result?))
}

/// `(backups, errors)`: the readable `*.tar` backups in `dir`, oldest first, and an
/// `InvalidBackupError` (or `ArchiveError`) for each `*.tar` that is not one.
#[pyfunction]
pub fn list_backups(py: Python<'_>, dir: PathBuf) -> PyResult<(Vec<Backup>, Vec<PyErr>)> {
    let listing = py.detach(|| archive::list_local(&dir))?;
    Ok((
        listing.backups.into_iter().map(Backup::from).collect(),
        listing.skipped.into_iter().map(PyErr::from).collect(),
    ))
}

/// Whether `slug` can name a backup (letters, digits, `-` and `_`, at most 64).
#[pyfunction]
pub fn is_valid_slug(slug: &str) -> bool {
    archive::is_valid_slug(slug)
}

fn summary_dict(summary: ExtractSummary) -> HashMap<&'static str, u64> {
    HashMap::from([
        ("files", summary.files),
        ("directories", summary.directories),
        ("symlinks", summary.symlinks),
        ("bytes", summary.bytes),
    ])
}

/// The whole config dir, or with `include` only what its patterns match.
fn extract(
    path: &std::path::Path,
    dest: &std::path::Path,
    password: Option<&str>,
    include: Option<&[String]>,
    cancel: &crate::common::CancelToken,
) -> Result<HashMap<&'static str, u64>, ArchiveError> {
    match include {
        None => archive::extract_protected_archive(path, dest, password, cancel),
        Some(patterns) => archive::extract_included(path, dest, password, patterns, cancel),
    }
    .map(summary_dict)
}

#[pyfunction]
#[pyo3(signature = (path, dest, *, password=None, include=None))]
pub fn extract_archive(
    py: Python<'_>,
    path: PathBuf,
    dest: PathBuf,
    password: Option<String>,
    include: Option<Vec<String>>,
) -> PyResult<HashMap<&'static str, u64>> {
    run_interruptible(py, move |cancel| {
        extract(
            &path,
            &dest,
            password.as_deref(),
            include.as_deref(),
            &cancel,
        )
    })
}

#[pyfunction]
#[pyo3(signature = (path, dest, *, password=None, include=None, cancel=None))]
pub fn extract_archive_async<'py>(
    py: Python<'py>,
    path: PathBuf,
    dest: PathBuf,
    password: Option<String>,
    include: Option<Vec<String>>,
    cancel: Option<PyRef<'py, CancelToken>>,
) -> PyResult<Bound<'py, PyAny>> {
    let cancel = token(cancel);
    future_into_py(py, async move {
        run_cancellable(&cancel, move |cancel| {
            extract(
                &path,
                &dest,
                password.as_deref(),
                include.as_deref(),
                &cancel,
            )
        })
        .await
    })
}

/// Whether `password` opens the backup (the cheap key check; Argon2 runs without the GIL).
#[pyfunction]
pub fn validate_password(py: Python<'_>, path: PathBuf, password: String) -> PyResult<bool> {
    Ok(py.detach(|| archive::validate_password(&path, &password))?)
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
    run_interruptible(py, move |cancel| {
        archive::verify_archive(&path, password.as_deref(), &cancel).map(report_dict)
    })
}

#[pyfunction]
#[pyo3(signature = (path, *, password=None, cancel=None))]
pub fn verify_archive_async<'py>(
    py: Python<'py>,
    path: PathBuf,
    password: Option<String>,
    cancel: Option<PyRef<'py, CancelToken>>,
) -> PyResult<Bound<'py, PyAny>> {
    let cancel = token(cancel);
    future_into_py(py, async move {
        run_cancellable(&cancel, move |cancel| {
            archive::verify_archive(&path, password.as_deref(), &cancel).map(report_dict)
        })
        .await
    })
}

fn restore_dict(
    py: Python<'_>,
    report: RestoreReport,
    config_dir: &std::path::Path,
) -> PyResult<Py<PyDict>> {
    let d = PyDict::new(py);
    d.set_item("slug", report.slug)?;
    d.set_item("name", report.name)?;
    d.set_item("config_dir", config_dir.display().to_string())?;
    d.set_item("database_restored", report.database_restored)?;
    d.set_item("database_in_backup", report.database_in_backup)?;
    for (key, value) in summary_dict(report.summary) {
        d.set_item(key, value)?;
    }
    Ok(d.unbind())
}

fn restore_options(password: Option<String>, restore_database: bool) -> RestoreOptions {
    RestoreOptions {
        password,
        restore_database,
        keep: Vec::new(),
    }
}

#[pyfunction]
#[pyo3(signature = (path, config_dir, *, password=None, restore_database=true))]
pub fn restore_archive(
    py: Python<'_>,
    path: PathBuf,
    config_dir: PathBuf,
    password: Option<String>,
    restore_database: bool,
) -> PyResult<Py<PyDict>> {
    let config_dir = std::path::absolute(&config_dir).unwrap_or(config_dir);
    let options = restore_options(password, restore_database);
    let dir = config_dir.clone();
    let report = run_interruptible(py, move |cancel| {
        archive::restore_into(&path, &dir, &options, &cancel)
    })?;
    restore_dict(py, report, &config_dir)
}

#[pyfunction]
#[pyo3(signature = (path, config_dir, *, password=None, restore_database=true, cancel=None))]
pub fn restore_archive_async<'py>(
    py: Python<'py>,
    path: PathBuf,
    config_dir: PathBuf,
    password: Option<String>,
    restore_database: bool,
    cancel: Option<PyRef<'py, CancelToken>>,
) -> PyResult<Bound<'py, PyAny>> {
    let config_dir = std::path::absolute(&config_dir).unwrap_or(config_dir);
    let options = restore_options(password, restore_database);
    let cancel = token(cancel);
    future_into_py(py, async move {
        let dir = config_dir.clone();
        let report = run_cancellable(&cancel, move |cancel| {
            archive::restore_into(&path, &dir, &options, &cancel)
        })
        .await?;
        Python::attach(|py| restore_dict(py, report, &config_dir))
    })
}
