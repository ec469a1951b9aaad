//! Verify, copy and prune for Python, on a folder or a store URL alike (`store::Location`), each
//! with an async twin; and the pure retention plan.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use super::runtime::awaitable::future_into_py;
use super::runtime::blocking::run_interruptible;
use super::runtime::cancel::{token, CancelToken};
use super::runtime::progress;
use crate::common::{self, Progress};
use crate::prune::{self, Count, Item, Plan, Policy, Span, Zone};
use crate::store::{Copied, Location, StoreError, StoredCheck};

type Options = Option<Vec<(String, String)>>;

fn open(spec: &str, options: Options) -> Result<Arc<Location>, StoreError> {
    Location::open(spec, &options.unwrap_or_default()).map(Arc::new)
}

/// Runs a location's async work to its end from a plain thread (the sync twins).
fn block_on<T>(
    work: impl std::future::Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    pyo3_async_runtimes::tokio::get_runtime().block_on(work)
}

pub fn check_dict(py: Python<'_>, location: &str, check: StoredCheck) -> PyResult<Py<PyDict>> {
    let d = PyDict::new(py);
    d.set_item("location", location)?;
    d.set_item("slug", check.slug)?;
    d.set_item("ok", check.problems.is_empty())?;
    d.set_item("size", check.size)?;
    d.set_item("sha256", check.sha256)?;
    d.set_item("problems", check.problems)?;
    d.set_item("warnings", check.warnings)?;
    d.set_item("password_incorrect", check.password_incorrect)?;
    d.set_item("deep", check.decoded.is_some())?;
    if let Some(report) = check.decoded {
        d.set_item("members", report.members)?;
        d.set_item("bytes", report.bytes)?;
    }
    Ok(d.unbind())
}

#[pyfunction]
#[pyo3(signature = (location, slug, *, deep=false, password=None, options=None, on_progress=None))]
#[allow(clippy::too_many_arguments)]
pub fn verify_backup(
    py: Python<'_>,
    location: String,
    slug: String,
    deep: bool,
    password: Option<String>,
    options: Options,
    on_progress: Option<Py<PyAny>>,
) -> PyResult<Py<PyDict>> {
    let place = open(&location, options)?;
    let shown = place.display();
    let progress: Option<Progress> = on_progress.map(progress::on_thread);
    let check = run_interruptible(py, move |cancel| {
        block_on(place.verify(&slug, deep, password, progress, &cancel))
    })?;
    check_dict(py, &shown, check)
}

#[pyfunction]
#[pyo3(signature = (location, slug, *, deep=false, password=None, options=None, on_progress=None,
                    cancel=None))]
#[allow(clippy::too_many_arguments)]
pub fn verify_backup_async<'py>(
    py: Python<'py>,
    location: String,
    slug: String,
    deep: bool,
    password: Option<String>,
    options: Options,
    on_progress: Option<Py<PyAny>>,
    cancel: Option<PyRef<'_, CancelToken>>,
) -> PyResult<Bound<'py, PyAny>> {
    let place = open(&location, options)?;
    let (progress, relay) = progress::on_loop(py, on_progress)?;
    let cancel = token(cancel);
    future_into_py(py, async move {
        let guard = cancel.cancel_on_drop();
        let check = place.verify(&slug, deep, password, progress, &cancel).await;
        guard.disarm();
        if let Some(relay) = relay {
            let _ = relay.await;
        }
        let shown = place.display();
        Python::attach(|py| check_dict(py, &shown, check?))
    })
}

/// `{"metadata": ..., "sent": bool, "source": ..., "dest": ...}`: what a copy did.
fn copied_dict(copied: Copied, source: &str, dest: &str) -> PyResult<Py<PyAny>> {
    Python::attach(|py| {
        let metadata = pythonize::pythonize(py, &serde_json::Value::Object(copied.metadata))
            .map_err(|e| pyo3::exceptions::PyRuntimeError::new_err(e.to_string()))?;
        let d = PyDict::new(py);
        d.set_item("metadata", metadata)?;
        d.set_item("sent", copied.sent)?;
        d.set_item("source", source)?;
        d.set_item("dest", dest)?;
        Ok(d.into_any().unbind())
    })
}

#[pyfunction]
#[pyo3(signature = (source, slug, dest, *, options=None, dest_options=None, on_progress=None))]
#[allow(clippy::too_many_arguments)]
pub fn copy_backup(
    py: Python<'_>,
    source: String,
    slug: String,
    dest: String,
    options: Options,
    dest_options: Options,
    on_progress: Option<Py<PyAny>>,
) -> PyResult<Py<PyAny>> {
    let (from, to) = (open(&source, options)?, open(&dest, dest_options)?);
    let (shown_from, shown_to) = (from.display(), to.display());
    let progress: Option<Progress> = on_progress.map(progress::on_thread);
    let copied = run_interruptible(py, move |cancel| {
        block_on(from.copy(&slug, &to, progress, &cancel))
    })?;
    copied_dict(copied, &shown_from, &shown_to)
}

#[pyfunction]
#[pyo3(signature = (source, slug, dest, *, options=None, dest_options=None, on_progress=None,
                    cancel=None))]
#[allow(clippy::too_many_arguments)]
pub fn copy_backup_async<'py>(
    py: Python<'py>,
    source: String,
    slug: String,
    dest: String,
    options: Options,
    dest_options: Options,
    on_progress: Option<Py<PyAny>>,
    cancel: Option<PyRef<'_, CancelToken>>,
) -> PyResult<Bound<'py, PyAny>> {
    let (from, to) = (open(&source, options)?, open(&dest, dest_options)?);
    let (progress, relay) = progress::on_loop(py, on_progress)?;
    let cancel = token(cancel);
    future_into_py(py, async move {
        let guard = cancel.cancel_on_drop();
        let copied = from.copy(&slug, &to, progress, &cancel).await;
        guard.disarm();
        if let Some(relay) = relay {
            let _ = relay.await;
        }
        copied_dict(copied?, &from.display(), &to.display())
    })
}

fn count(name: &str, value: Option<&Bound<'_, PyAny>>) -> PyResult<Count> {
    let Some(value) = value.filter(|v| !v.is_none()) else {
        return Ok(Count::Off);
    };
    if let Ok(text) = value.extract::<String>() {
        if text == "unlimited" {
            return Ok(Count::Unlimited);
        }
        return Err(PyValueError::new_err(format!(
            "{name} must be a number of backups or \"unlimited\", not {text:?}"
        )));
    }
    let n: i64 = value.extract()?;
    match n {
        -1 => Ok(Count::Unlimited),
        0 => Ok(Count::Off),
        n if n > 0 => Ok(Count::Keep(u32::try_from(n).unwrap_or(u32::MAX))),
        n => Err(PyValueError::new_err(format!(
            "{name} must be 0 or more (or \"unlimited\"), not {n}"
        ))),
    }
}

/// The policy in `keep_last=…, keep_within="7d"` form (also the manager's retention option).
pub fn policy(rules: &Bound<'_, PyDict>) -> PyResult<Policy> {
    for key in rules.keys() {
        let key: String = key.extract()?;
        if !matches!(
            key.as_str(),
            "keep_last"
                | "keep_hourly"
                | "keep_daily"
                | "keep_weekly"
                | "keep_monthly"
                | "keep_yearly"
                | "keep_within"
        ) {
            return Err(PyValueError::new_err(format!(
                "unknown retention rule {key:?}"
            )));
        }
    }
    let get = |key: &str| rules.get_item(key).ok().flatten();
    let within = match get("keep_within").filter(|v| !v.is_none()) {
        Some(text) => Some(
            Span::parse(&text.extract::<String>()?)
                .map_err(|e| PyValueError::new_err(e.to_string()))?,
        ),
        None => None,
    };
    Ok(Policy {
        last: count("keep_last", get("keep_last").as_ref())?,
        hourly: count("keep_hourly", get("keep_hourly").as_ref())?,
        daily: count("keep_daily", get("keep_daily").as_ref())?,
        weekly: count("keep_weekly", get("keep_weekly").as_ref())?,
        monthly: count("keep_monthly", get("keep_monthly").as_ref())?,
        yearly: count("keep_yearly", get("keep_yearly").as_ref())?,
        within,
    })
}

fn when(now: Option<String>) -> PyResult<DateTime<Utc>> {
    match now {
        None => Ok(Utc::now()),
        Some(text) => DateTime::parse_from_rfc3339(&text)
            .map(|d| d.with_timezone(&Utc))
            .map_err(|_| {
                PyValueError::new_err(format!("now must be ISO 8601 with an offset, not {text:?}"))
            }),
    }
}

pub fn zone(tz: Option<String>) -> PyResult<Zone> {
    Zone::parse(tz.as_deref()).map_err(|e| PyValueError::new_err(e.to_string()))
}

fn plan_dict(py: Python<'_>, plan: Plan) -> PyResult<Py<PyDict>> {
    let keep = PyList::empty(py);
    for kept in plan.keep {
        let d = PyDict::new(py);
        d.set_item("slug", kept.item.slug)?;
        d.set_item("date", kept.item.date)?;
        d.set_item("reasons", kept.reasons)?;
        keep.append(d)?;
    }
    let remove = PyList::empty(py);
    for item in plan.remove {
        remove.append(HashMap::from([("slug", item.slug), ("date", item.date)]))?;
    }
    let d = PyDict::new(py);
    d.set_item("keep", keep)?;
    d.set_item("remove", remove)?;
    Ok(d.unbind())
}

/// Which of `backups` (`(slug, date)` pairs) the policy keeps, and why, and which it removes.
#[pyfunction]
#[pyo3(signature = (backups, rules, *, now=None, tz=None))]
pub fn plan_prune(
    py: Python<'_>,
    backups: Vec<(String, String)>,
    rules: Bound<'_, PyDict>,
    now: Option<String>,
    tz: Option<String>,
) -> PyResult<Py<PyDict>> {
    let items: Vec<Item> = backups
        .into_iter()
        .map(|(slug, date)| Item { slug, date })
        .collect();
    let plan = prune::plan(&items, &policy(&rules)?, when(now)?, zone(tz)?)
        .map_err(|e| PyValueError::new_err(e.to_string()))?;
    plan_dict(py, plan)
}

#[pyfunction]
#[pyo3(signature = (location, rules, *, now=None, tz=None, dry_run=false, options=None))]
pub fn prune_location(
    py: Python<'_>,
    location: String,
    rules: Bound<'_, PyDict>,
    now: Option<String>,
    tz: Option<String>,
    dry_run: bool,
    options: Options,
) -> PyResult<Py<PyDict>> {
    let (policy, now, zone) = (policy(&rules)?, when(now)?, zone(tz)?);
    let place = open(&location, options)?;
    let plan = run_interruptible(py, move |cancel: common::CancelToken| {
        block_on(place.prune(&policy, now, zone, dry_run, &cancel))
    })?;
    plan_dict(py, plan)
}

#[pyfunction]
#[pyo3(signature = (location, rules, *, now=None, tz=None, dry_run=false, options=None,
                    cancel=None))]
#[allow(clippy::too_many_arguments)]
pub fn prune_location_async<'py>(
    py: Python<'py>,
    location: String,
    rules: Bound<'py, PyDict>,
    now: Option<String>,
    tz: Option<String>,
    dry_run: bool,
    options: Options,
    cancel: Option<PyRef<'_, CancelToken>>,
) -> PyResult<Bound<'py, PyAny>> {
    let (policy, now, zone) = (policy(&rules)?, when(now)?, zone(tz)?);
    let place = open(&location, options)?;
    let cancel = token(cancel);
    future_into_py(py, async move {
        let guard = cancel.cancel_on_drop();
        let plan = place.prune(&policy, now, zone, dry_run, &cancel).await;
        guard.disarm();
        Python::attach(|py| plan_dict(py, plan?))
    })
}
