//! `BackupManager`'s engine: platforms and agents, and the create, sync, list, download, remove
//! and restore flows. The flows run on tokio; hooks and agents are awaited through the bridge, file
//! work runs on the blocking pool, and the GIL is only taken to touch Python objects.

use std::collections::{BTreeMap, HashSet};
use std::fs::{self, File};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use futures_util::future::join_all;
use pyo3::exceptions::asyncio::CancelledError;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::types::{PyCFunction, PyDict, PyTuple};
use pyo3_async_runtimes::TaskLocals;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::agent::BackupSyncAgent;
use super::backup::Backup;
use super::blocking::CancelOnDrop;
use super::bridge::{run, AbortToken, CallError, PyCall};
use super::errors::to_py;
use super::progress::{relay, Progress};
use crate::archive::{self, ArchiveError, CancelFlag, CreateOptions, IoContext};

const IDLE: &str = "idle";
const CREATE_BACKUP: &str = "create_backup";
const RESTORE_BACKUP: &str = "restore_backup";
const LOG: &str = "habackup.manager";
const DATABASE_FILES: &[&str] = &[
    "home-assistant_v2.db",
    "home-assistant_v2.db-wal",
    "home-assistant_v2.db-shm",
];

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

// ---- errors ------------------------------------------------------------------------------------

/// An exception from `habackup.errors`, with keyword arguments and an optional `__cause__`.
fn error(
    py: Python<'_>,
    class: &str,
    message: &str,
    kwargs: &[(&str, &str)],
    cause: Option<PyErr>,
) -> PyErr {
    let built = (|| -> PyResult<PyErr> {
        let class = py.import("habackup.errors")?.getattr(class)?;
        let kw = PyDict::new(py);
        for (key, value) in kwargs {
            kw.set_item(key, value)?;
        }
        let err = PyErr::from_value(class.call((message,), Some(&kw))?);
        if let Some(cause) = cause {
            err.set_cause(py, Some(cause));
        }
        Ok(err)
    })();
    built.unwrap_or_else(|e| e)
}

fn raise(class: &str, message: &str, cause: Option<PyErr>) -> PyErr {
    Python::attach(|py| error(py, class, message, &[], cause))
}

/// `"Type: message"`, the way a failed agent is reported.
fn describe(py: Python<'_>, err: &PyErr) -> String {
    let name = err
        .get_type(py)
        .name()
        .map_or_else(|_| "Exception".to_string(), |n| n.to_string());
    let message = crate::redact::redact_urls(&err.value(py).to_string());
    if message.is_empty() {
        name
    } else {
        format!("{name}: {message}")
    }
}

/// KeyboardInterrupt, SystemExit, CancelledError...: never recorded as a failure, always raised.
fn is_fatal(py: Python<'_>, err: &PyErr) -> bool {
    !err.is_instance_of::<PyException>(py)
}

fn cancelled() -> PyErr {
    CancelledError::new_err("backup operation cancelled")
}

fn seconds(limit: Duration) -> String {
    format!("{:.3}", limit.as_secs_f64())
        .trim_end_matches('0')
        .trim_end_matches('.')
        .to_string()
}

fn check_slug(slug: &str) -> PyResult<()> {
    let valid = !slug.is_empty()
        && slug
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if valid {
        Ok(())
    } else {
        Err(raise(
            "BackupManagerError",
            &format!("Invalid backup slug: {slug:?}"),
            None,
        ))
    }
}

async fn blocking<T, F>(work: F) -> PyResult<T>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, ArchiveError> + Send + 'static,
{
    let joined = tokio::task::spawn_blocking(work).await;
    match joined {
        Ok(result) => result.map_err(|e| Python::attach(|py| to_py(py, e))),
        Err(e) => Err(pyo3::exceptions::PyRuntimeError::new_err(format!(
            "file task failed: {e}"
        ))),
    }
}

// ---- state ---------------------------------------------------------------------------------------

struct Platform {
    domain: String,
    pre: Option<Py<PyAny>>,
    post: Option<Py<PyAny>>,
}

#[derive(Default)]
struct Registry {
    platforms: Vec<Platform>,
    agents: Vec<(String, Py<PyAny>)>,
}

struct Inner {
    hass: Py<PyAny>,
    config_dir: PathBuf,
    backup_dir: PathBuf,
    ha_version: Option<String>,
    agent_timeout: Option<Duration>,
    on_event: Py<PyAny>,
    state: Mutex<&'static str>,
    registry: Mutex<Registry>,
}

/// Holds the manager's state for one operation and puts it back to idle however it ends.
struct Busy(Arc<Inner>);

impl Drop for Busy {
    fn drop(&mut self) {
        *lock(&self.0.state) = IDLE;
    }
}

type Agents = Vec<(String, Py<PyAny>)>;
type Hooks = Vec<(String, Py<PyAny>)>;

/// What an operation needs from the caller's side: loop, context, abort token.
struct Op {
    inner: Arc<Inner>,
    locals: TaskLocals,
    abort: AbortToken,
}

impl Op {
    /// Delivers an event to the subscribers on the loop thread, in the caller's context.
    fn emit(&self, event: Value) {
        Python::attach(|py| {
            let sent = (|| -> PyResult<()> {
                let event = pythonize::pythonize(py, &event)?;
                let kwargs = PyDict::new(py);
                kwargs.set_item("context", self.locals.context(py))?;
                self.locals.event_loop(py).call_method(
                    "call_soon_threadsafe",
                    (self.inner.on_event.bind(py), event),
                    Some(&kwargs),
                )?;
                Ok(())
            })();
            if let Err(err) = sent {
                log::debug!(target: LOG, "cannot deliver an event: {err}");
            }
        });
    }

    /// Progress events for the archive stage, relayed at normal priority (see `progress`).
    fn progress(&self) -> (Progress, tokio::task::JoinHandle<()>) {
        let (event_loop, context, on_event) = Python::attach(|py| {
            (
                self.locals.event_loop(py).unbind(),
                self.locals.context(py).unbind(),
                self.inner.on_event.clone_ref(py),
            )
        });
        relay(move |py, done, total| {
            let sent = (|| -> PyResult<()> {
                let event = PyDict::new(py);
                event.set_item("manager_state", CREATE_BACKUP)?;
                event.set_item("stage", "home_assistant")?;
                event.set_item("bytes_done", done)?;
                event.set_item("bytes_total", total)?;
                let kwargs = PyDict::new(py);
                kwargs.set_item("context", context.bind(py))?;
                event_loop.bind(py).call_method(
                    "call_soon_threadsafe",
                    (on_event.bind(py), event),
                    Some(&kwargs),
                )?;
                Ok(())
            })();
            if let Err(err) = sent {
                log::debug!(target: LOG, "cannot deliver progress: {err}");
            }
        })
    }

    /// `on_progress(done, total)` for an agent's upload: called on the loop thread, it hands
    /// the figures straight to the subscribers as `upload_to_agents` events.
    fn upload_progress<'py>(
        &self,
        py: Python<'py>,
        agent_id: &str,
    ) -> PyResult<Bound<'py, PyCFunction>> {
        let on_event = self.inner.on_event.clone_ref(py);
        let agent_id = agent_id.to_string();
        PyCFunction::new_closure(
            py,
            Some(c"habackup_upload_progress"),
            None,
            move |args: &Bound<'_, PyTuple>, _: Option<&Bound<'_, PyDict>>| -> PyResult<()> {
                let py = args.py();
                let (done, total): (u64, u64) = args.extract()?;
                let event = PyDict::new(py);
                event.set_item("manager_state", CREATE_BACKUP)?;
                event.set_item("stage", "upload_to_agents")?;
                event.set_item("agent_id", &agent_id)?;
                event.set_item("uploaded_bytes", done)?;
                event.set_item("total_bytes", total)?;
                on_event.call1(py, (event,))?;
                Ok(())
            },
        )
    }

    fn start(
        &self,
        obj: &Py<PyAny>,
        method: &str,
        args: impl FnOnce(Python<'_>) -> PyResult<Bound<'_, PyTuple>>,
        kwargs: impl FnOnce(Python<'_>) -> PyResult<Option<Bound<'_, PyDict>>>,
    ) -> PyCall {
        Python::attach(|py| {
            let prepared = args(py).and_then(|a| kwargs(py).map(|k| (a, k)));
            match prepared {
                Ok((args, kwargs)) => {
                    PyCall::start(py, &self.locals, obj.bind(py), method, args, kwargs)
                }
                Err(err) => PyCall::failed(err),
            }
        })
    }

    /// Runs every hook of a stage concurrently until all have finished.
    async fn run_hooks(
        &self,
        hooks: &Hooks,
        stage: &'static str,
        abort: &AbortToken,
        outcome: &mut Outcome,
    ) {
        let calls: Vec<(String, PyCall)> = Python::attach(|py| {
            let hass = self.inner.hass.bind(py);
            let mut specs = Vec::with_capacity(hooks.len());
            let mut failed = Vec::new();
            for (i, (_, hook)) in hooks.iter().enumerate() {
                match PyTuple::new(py, [hass]) {
                    Ok(args) => specs.push((hook.bind(py).clone(), "__call__", args, None)),
                    Err(err) => failed.push((i, err)),
                }
            }
            let mut started = PyCall::start_batch(py, &self.locals, specs).into_iter();
            let mut failed = failed.into_iter().peekable();
            hooks
                .iter()
                .enumerate()
                .map(|(i, (domain, _))| {
                    let call = match failed.next_if(|(at, _)| *at == i) {
                        Some((_, err)) => PyCall::failed(err),
                        None => started.next().unwrap_or_else(|| {
                            PyCall::failed(pyo3::exceptions::PyRuntimeError::new_err(
                                "a hook could not be scheduled",
                            ))
                        }),
                    };
                    (domain.clone(), call)
                })
                .collect()
        });
        let results = join_all(
            calls
                .into_iter()
                .map(|(domain, call)| async move { (domain, run(call, abort, None).await) }),
        )
        .await;
        for (domain, result) in results {
            match result {
                Ok(_) | Err(CallError::Aborted) => {}
                Err(CallError::TimedOut(_)) => {}
                Err(CallError::Raised(err)) => Python::attach(|py| {
                    if is_fatal(py, &err) {
                        outcome.fatal.get_or_insert(err);
                        return;
                    }
                    let message =
                        format!("{stage} hook of {domain} failed: {}", describe(py, &err));
                    log::error!(target: LOG, "{message}");
                    let hook_error = error(
                        py,
                        "BackupHookError",
                        &message,
                        &[("domain", &domain), ("stage", stage)],
                        Some(err),
                    );
                    outcome.hook.get_or_insert(hook_error);
                }),
            }
        }
    }

    /// Uploads a local backup to the agents concurrently; failures are recorded, not raised.
    async fn upload(&self, backup: &Backup, agents: &Agents) -> Uploaded {
        let mut uploaded = Uploaded::default();
        let Some(path) = backup.path.clone() else {
            return uploaded;
        };
        let calls: Vec<(String, PyCall)> = agents
            .iter()
            .map(|(agent_id, agent)| {
                let call = self.start(
                    agent,
                    "async_upload_backup",
                    |py| Ok(PyTuple::empty(py)),
                    |py| {
                        let kwargs = PyDict::new(py);
                        kwargs.set_item("path", &path)?;
                        kwargs.set_item("metadata", metadata(py, backup)?)?;
                        if accepts_upload_progress(agent.bind(py)) {
                            let callback = self.upload_progress(py, agent_id)?;
                            kwargs.set_item("on_progress", callback)?;
                        }
                        Ok(Some(kwargs))
                    },
                );
                (agent_id.clone(), call)
            })
            .collect();
        let timeout = self.inner.agent_timeout;
        let abort = &self.abort;
        let results =
            join_all(calls.into_iter().map(|(agent_id, call)| async move {
                (agent_id, run(call, abort, timeout).await)
            }))
            .await;
        for (agent_id, result) in results {
            match result {
                Ok(_) => {
                    self.emit(json!({
                        "manager_state": CREATE_BACKUP,
                        "stage": "upload_to_agents",
                        "agent_id": agent_id,
                        "uploaded_bytes": backup.size,
                        "total_bytes": backup.size,
                    }));
                    uploaded.synced.push(agent_id);
                }
                Err(CallError::Aborted) => {}
                Err(CallError::TimedOut(limit)) => {
                    let message = format!(
                        "BackupAgentError: upload timed out after {} s",
                        seconds(limit)
                    );
                    log::error!(target: LOG, "Upload of {} to {agent_id} failed: {message}", backup.slug);
                    uploaded.failed.insert(agent_id, message);
                }
                Err(CallError::Raised(err)) => Python::attach(|py| {
                    if is_fatal(py, &err) {
                        uploaded.fatal.get_or_insert(err);
                        return;
                    }
                    let message = describe(py, &err);
                    log::error!(target: LOG, "Upload of {} to {agent_id} failed: {message}", backup.slug);
                    uploaded.failed.insert(agent_id, message);
                }),
            }
        }
        uploaded
    }

    /// Lists every agent concurrently: `(agent_id, listing or error)`.
    async fn list_agents(&self, agents: &Agents) -> PyResult<Vec<(String, Listing)>> {
        let calls: Vec<(String, PyCall)> = agents
            .iter()
            .map(|(agent_id, agent)| {
                let call = self.start(
                    agent,
                    "async_list_backups",
                    |py| Ok(PyTuple::empty(py)),
                    |_| Ok(None),
                );
                (agent_id.clone(), call)
            })
            .collect();
        let timeout = self.inner.agent_timeout;
        let abort = &self.abort;
        let results =
            join_all(calls.into_iter().map(|(agent_id, call)| async move {
                (agent_id, run(call, abort, timeout).await)
            }))
            .await;
        let mut listings = Vec::new();
        let mut fatal = None;
        for (agent_id, result) in results {
            let listing = match result {
                Ok(value) => Python::attach(|py| {
                    synced_backups(value.bind(py)).map_err(|err| {
                        let message = format!(
                            "{agent_id} returned an invalid backup list: {}",
                            describe(py, &err)
                        );
                        error(py, "BackupAgentError", &message, &[], Some(err))
                    })
                }),
                Err(CallError::Aborted) => continue,
                Err(CallError::TimedOut(limit)) => Err(raise(
                    "BackupAgentError",
                    &format!(
                        "Listing backups of {agent_id} timed out after {} s",
                        seconds(limit)
                    ),
                    None,
                )),
                Err(CallError::Raised(err)) => Python::attach(|py| {
                    if is_fatal(py, &err) {
                        fatal.get_or_insert(err.clone_ref(py));
                    }
                    let message = format!(
                        "Listing backups of {agent_id} failed: {}",
                        describe(py, &err)
                    );
                    Err(error(py, "BackupAgentError", &message, &[], Some(err)))
                }),
            };
            if let Err(err) = &listing {
                log::warn!(target: LOG, "{err}");
            }
            listings.push((agent_id, listing));
        }
        if let Some(fatal) = fatal {
            return Err(fatal);
        }
        if self.abort.is_aborted() {
            return Err(cancelled());
        }
        Ok(listings)
    }
}

#[derive(Default)]
struct Outcome {
    fatal: Option<PyErr>,
    hook: Option<PyErr>,
}

#[derive(Default)]
struct Uploaded {
    synced: Vec<String>,
    failed: BTreeMap<String, String>,
    fatal: Option<PyErr>,
}

/// One agent's copy of a backup, as its `async_list_backups` describes it.
struct Synced {
    id: String,
    slug: String,
    name: String,
    date: String,
    size: u64,
    protected: bool,
    sha256: Option<String>,
}

type Listing = PyResult<Vec<Synced>>;

fn synced_backups(value: &Bound<'_, PyAny>) -> PyResult<Vec<Synced>> {
    let mut backups = Vec::new();
    for item in value.try_iter()? {
        let item = item?;
        let sha256 = match item.getattr_opt("sha256")? {
            Some(v) if !v.is_none() => Some(v.extract()?),
            _ => None,
        };
        backups.push(Synced {
            id: item.getattr("id")?.extract()?,
            slug: item.getattr("slug")?.extract()?,
            name: item.getattr("name")?.extract()?,
            date: item.getattr("date")?.extract()?,
            size: item.getattr("size")?.extract()?,
            protected: item.getattr("protected")?.extract()?,
            sha256,
        });
    }
    Ok(backups)
}

/// Agents that take `on_progress` on upload say so with a class attribute (the built-in
/// object-store agent does); others get exactly the seed's keyword arguments.
fn accepts_upload_progress(agent: &Bound<'_, PyAny>) -> bool {
    agent
        .getattr("accepts_upload_progress")
        .and_then(|v| v.is_truthy())
        .unwrap_or(false)
}

/// The metadata dict an agent's `async_upload_backup` gets (`BackupSyncMetadata`).
fn metadata<'py>(py: Python<'py>, backup: &Backup) -> PyResult<Bound<'py, PyDict>> {
    let m = PyDict::new(py);
    m.set_item("date", &backup.date)?;
    m.set_item("slug", &backup.slug)?;
    m.set_item("size", backup.size)?;
    m.set_item("name", &backup.name)?;
    m.set_item(
        "homeassistant",
        backup
            .homeassistant_version
            .as_deref()
            .unwrap_or(archive::DEFAULT_HA_VERSION),
    )?;
    m.set_item("protected", backup.protected)?;
    m.set_item("sha256", backup.sha256.as_deref().unwrap_or_default())?;
    m.set_item("database_included", backup.database_included)?;
    Ok(m)
}

// ---- file work (blocking pool) -----------------------------------------------------------------

fn sha256_file(path: &Path) -> Result<String, ArchiveError> {
    let mut file = File::open(path).at(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1024 * 1024];
    loop {
        let n = file.read(&mut buf).at(path)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// The local backups: every readable `*.tar` in the backup dir (temp files start with a dot).
fn scan_local(backup_dir: &Path) -> Result<Vec<Backup>, ArchiveError> {
    let entries = match fs::read_dir(backup_dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(ArchiveError::io(backup_dir, e)),
    };
    let mut backups = Vec::new();
    for entry in entries {
        let path = entry.at(backup_dir)?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with('.') || !name.ends_with(".tar") || !path.is_file() {
            continue;
        }
        match archive::read_backup(&path) {
            Ok(info) => backups.push(Backup::from(info)),
            Err(e) => log::warn!(target: LOG, "Skipping unreadable backup {}: {e}", path.display()),
        }
    }
    backups.sort_by(|a, b| a.date.cmp(&b.date));
    Ok(backups)
}

fn find_local(backup_dir: &Path, slug: &str) -> Result<Option<Backup>, ArchiveError> {
    let named = backup_dir.join(format!("{slug}.tar"));
    if named.is_file() {
        if let Ok(info) = archive::read_backup(&named) {
            if info.slug == slug {
                return Ok(Some(Backup::from(info)));
            }
        }
    }
    Ok(scan_local(backup_dir)?.into_iter().find(|b| b.slug == slug))
}

/// Removes a temp file unless it was renamed into place.
struct TempPath(Option<PathBuf>);

impl Drop for TempPath {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            let _ = fs::remove_file(path);
        }
    }
}

/// Checks a downloaded file against what the agent said about it, then renames it into place.
fn verify_download(
    temp: &Path,
    dest: Option<PathBuf>,
    backup_dir: &Path,
    expected: &Synced,
) -> Result<PathBuf, ArchiveError> {
    let info = archive::read_backup(temp)?;
    if info.slug != expected.slug {
        return Err(ArchiveError::invalid(
            temp,
            format!(
                "downloaded backup has slug {}, expected {}",
                info.slug, expected.slug
            ),
        ));
    }
    let size = fs::metadata(temp).at(temp)?.len();
    if size != expected.size {
        return Err(ArchiveError::invalid(
            temp,
            format!(
                "downloaded backup has {size} bytes, expected {}",
                expected.size
            ),
        ));
    }
    if let Some(sha256) = &expected.sha256 {
        let actual = sha256_file(temp)?;
        if !actual.eq_ignore_ascii_case(sha256) {
            return Err(ArchiveError::invalid(
                temp,
                "downloaded backup does not match its sha256",
            ));
        }
    }
    let dest = dest.unwrap_or_else(|| backup_dir.join(format!("{}.tar", info.slug)));
    fs::rename(temp, &dest).at(&dest)?;
    Ok(dest)
}

/// Replaces the config dir's contents with the backup's, keeping the backup dir and, unless
/// `restore_database`, the current database.
fn restore_files(
    archive_path: &Path,
    config_dir: &Path,
    backup_dir: &Path,
    password: Option<&str>,
    restore_database: bool,
    cancel: &CancelFlag,
) -> Result<(), ArchiveError> {
    let token = uuid::Uuid::new_v4().simple().to_string();
    let staging_name = format!(".habackup-restore-{}", &token[..12]);
    let aside_name = format!(".habackup-replaced-{}", &token[..12]);
    let staging = config_dir.join(&staging_name);
    let aside = config_dir.join(&aside_name);
    // A backup made without the database must not take the current one away.
    let in_backup = archive::read_backup(archive_path)?.database_included;
    archive::extract_protected_archive(archive_path, &staging, password, cancel)?;
    let mut keep: HashSet<String> = HashSet::from([
        staging_name.clone(),
        aside_name.clone(),
        "backups".to_string(),
    ]);
    if let Ok(relative) = backup_dir.strip_prefix(config_dir) {
        if let Some(first) = relative.components().next() {
            keep.insert(first.as_os_str().to_string_lossy().into_owned());
        }
    }
    if !(restore_database && in_backup) {
        keep.extend(DATABASE_FILES.iter().map(|s| (*s).to_string()));
    }
    let result = swap_in(config_dir, &staging, &aside, &keep);
    match &result {
        Err(ArchiveError::Io { .. }) if !dir_is_empty(&aside) => {
            // The rollback could not put everything back: keep both trees for the user.
            log::error!(
                target: LOG,
                "restore failed half way; the previous files are in {} and the backup's in {}",
                aside.display(),
                staging.display()
            );
        }
        _ => {
            let _ = fs::remove_dir_all(&staging);
            let _ = fs::remove_dir_all(&aside);
        }
    }
    result
}

fn dir_is_empty(dir: &Path) -> bool {
    fs::read_dir(dir).map_or(true, |mut entries| entries.next().is_none())
}

/// Moves the config dir's entries aside, the staged ones in, and on any failure everything
/// back: the config dir ends up all old or all new, never a mix. All renames, one filesystem.
fn swap_in(
    config_dir: &Path,
    staging: &Path,
    aside: &Path,
    keep: &HashSet<String>,
) -> Result<(), ArchiveError> {
    fs::create_dir(aside).at(aside)?;
    let mut moved_out: Vec<String> = Vec::new();
    let mut moved_in: Vec<String> = Vec::new();
    let result = (|| {
        for entry in fs::read_dir(config_dir).at(config_dir)? {
            let name = entry
                .at(config_dir)?
                .file_name()
                .to_string_lossy()
                .into_owned();
            if keep.contains(&name) {
                continue;
            }
            fs::rename(config_dir.join(&name), aside.join(&name)).at(config_dir.join(&name))?;
            moved_out.push(name);
        }
        for entry in fs::read_dir(staging).at(staging)? {
            let name = entry
                .at(staging)?
                .file_name()
                .to_string_lossy()
                .into_owned();
            if keep.contains(&name) {
                continue;
            }
            let dest = config_dir.join(&name);
            fs::rename(staging.join(&name), &dest).at(&dest)?;
            moved_in.push(name);
        }
        Ok(())
    })();
    if result.is_err() {
        for name in moved_in.iter().rev() {
            let _ = fs::rename(config_dir.join(name), staging.join(name));
        }
        for name in moved_out.iter().rev() {
            let _ = fs::rename(aside.join(name), config_dir.join(name));
        }
    }
    result
}

// ---- the pyclass -----------------------------------------------------------------------------------

/// The engine behind `habackup.BackupManager` (which adds events and clean cancellation).
#[pyclass(module = "habackup._core", frozen)]
pub struct BackupManagerCore {
    inner: Arc<Inner>,
}

impl BackupManagerCore {
    fn op(&self, py: Python<'_>, abort: Option<&AbortToken>) -> PyResult<Op> {
        Ok(Op {
            inner: self.inner.clone(),
            locals: pyo3_async_runtimes::tokio::get_current_locals(py)?,
            abort: abort.cloned().unwrap_or_default(),
        })
    }

    fn begin(&self, py: Python<'_>, state: &'static str) -> PyResult<Busy> {
        let mut current = lock(&self.inner.state);
        if *current != IDLE {
            let message = format!("Backup manager busy: {}", *current);
            return Err(error(py, "BackupManagerError", &message, &[], None));
        }
        *current = state;
        Ok(Busy(self.inner.clone()))
    }

    fn hooks(&self, py: Python<'_>) -> (Hooks, Hooks) {
        let registry = lock(&self.inner.registry);
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

    fn agents(&self, py: Python<'_>, agent_ids: Option<Vec<String>>) -> PyResult<Agents> {
        let registry = lock(&self.inner.registry);
        let Some(ids) = agent_ids else {
            return Ok(registry
                .agents
                .iter()
                .map(|(id, agent)| (id.clone(), agent.clone_ref(py)))
                .collect());
        };
        let mut chosen = Vec::new();
        for id in ids {
            let Some((_, agent)) = registry.agents.iter().find(|(known, _)| *known == id) else {
                let message = format!("Unknown backup agent: {id}");
                return Err(error(py, "BackupManagerError", &message, &[], None));
            };
            if !chosen
                .iter()
                .any(|(known, _): &(String, Py<PyAny>)| *known == id)
            {
                chosen.push((id, agent.clone_ref(py)));
            }
        }
        Ok(chosen)
    }
}

#[pymethods]
impl BackupManagerCore {
    #[new]
    #[pyo3(signature = (hass, config_dir, backup_dir, ha_version, agent_timeout, on_event))]
    fn new(
        py: Python<'_>,
        hass: Py<PyAny>,
        config_dir: PathBuf,
        backup_dir: Option<PathBuf>,
        ha_version: Option<String>,
        agent_timeout: Option<f64>,
        on_event: Py<PyAny>,
    ) -> PyResult<Self> {
        let agent_timeout = match agent_timeout {
            None => None,
            Some(t) if t.is_finite() && t > 0.0 => Some(Duration::from_secs_f64(t)),
            Some(t) => {
                let message =
                    format!("agent_timeout must be a positive number of seconds, not {t}");
                return Err(error(py, "BackupManagerError", &message, &[], None));
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
    #[pyo3(signature = (domain, platform, *, abort=None))]
    fn add_platform<'py>(
        &self,
        py: Python<'py>,
        domain: String,
        platform: Bound<'py, PyAny>,
        abort: Option<PyRef<'_, AbortToken>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let platform_error =
            |message: String| error(py, "BackupPlatformError", &message, &[], None);
        if lock(&self.inner.registry)
            .platforms
            .iter()
            .any(|p| p.domain == domain)
        {
            return Err(platform_error(format!(
                "Backup platform {domain} is already registered"
            )));
        }
        let hook = |name: &str| -> PyResult<Option<Py<PyAny>>> {
            match platform.getattr_opt(name)? {
                Some(hook) if hook.is_callable() => Ok(Some(hook.unbind())),
                Some(_) => Err(platform_error(format!(
                    "{name} of backup platform {domain} is not callable"
                ))),
                None => Ok(None),
            }
        };
        let pre = hook("async_pre_backup")?;
        let post = hook("async_post_backup")?;
        if pre.is_some() != post.is_some() {
            return Err(platform_error(format!(
                "Backup platform {domain} must define both async_pre_backup and async_post_backup, \
                 or neither"
            )));
        }
        let factory = hook("async_get_backup_sync_agents")?;
        let op = self.op(py, abort.as_deref())?;
        let locals = op.locals.clone();
        super::awaitable::future_into_py_with_locals(py, locals, async move {
            let mut agents: Agents = Vec::new();
            if let Some(factory) = factory {
                let hass = &op.inner.hass;
                let call = op.start(
                    &factory,
                    "__call__",
                    |py| Ok(PyTuple::empty(py)),
                    |py| {
                        let kwargs = PyDict::new(py);
                        kwargs.set_item("hass", hass.bind(py))?;
                        Ok(Some(kwargs))
                    },
                );
                let value =
                    run(call, &op.abort, op.inner.agent_timeout)
                        .await
                        .map_err(|failure| {
                            call_failure(
                                failure,
                                "BackupPlatformError",
                                &format!("async_get_backup_sync_agents of {domain}"),
                            )
                        })?;
                agents = Python::attach(|py| -> PyResult<Agents> {
                    let platform_error =
                        |message: String| error(py, "BackupPlatformError", &message, &[], None);
                    let mut agents = Vec::new();
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
                        if agents
                            .iter()
                            .any(|(id, _): &(String, Py<PyAny>)| *id == agent_id)
                        {
                            return Err(platform_error(format!(
                                "Duplicate backup agent id: {agent_id}"
                            )));
                        }
                        agents.push((agent_id, item.unbind()));
                    }
                    Ok(agents)
                })?;
            }
            Python::attach(|py| {
                let mut registry = lock(&op.inner.registry);
                if registry.platforms.iter().any(|p| p.domain == domain) {
                    let message = format!("Backup platform {domain} is already registered");
                    return Err(error(py, "BackupPlatformError", &message, &[], None));
                }
                for (agent_id, _) in &agents {
                    if registry.agents.iter().any(|(id, _)| id == agent_id) {
                        let message = format!("Duplicate backup agent id: {agent_id}");
                        return Err(error(py, "BackupPlatformError", &message, &[], None));
                    }
                }
                registry.platforms.push(Platform { domain, pre, post });
                registry.agents.extend(agents);
                Ok(())
            })
        })
    }

    /// Pre hooks, archive, post hooks (always), then uploads to the agents.
    #[pyo3(signature = (*, name=None, password=None, include_database=true, agent_ids=None,
                        excludes=None, abort=None))]
    #[allow(clippy::too_many_arguments)]
    fn create_backup<'py>(
        &self,
        py: Python<'py>,
        name: Option<String>,
        password: Option<String>,
        include_database: bool,
        agent_ids: Option<Vec<String>>,
        excludes: Option<Vec<String>>,
        abort: Option<PyRef<'_, AbortToken>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let agents = self.agents(py, agent_ids)?;
        let (pre, post) = self.hooks(py);
        let op = self.op(py, abort.as_deref())?;
        let busy = self.begin(py, CREATE_BACKUP)?;
        let name = name.unwrap_or_else(|| {
            format!(
                "Core {}",
                self.inner
                    .ha_version
                    .as_deref()
                    .unwrap_or(archive::DEFAULT_HA_VERSION)
            )
        });
        let mut options = CreateOptions::new(name);
        options.password = password;
        options.include_database = include_database;
        options.excludes = excludes;
        options.ha_version = self.inner.ha_version.clone();
        let locals = op.locals.clone();
        super::awaitable::future_into_py_with_locals(py, locals, async move {
            let busy = busy;
            let result = create(&op, &pre, &post, options, &agents).await;
            match &result {
                Ok(_) => op.emit(
                    json!({"manager_state": CREATE_BACKUP, "stage": null, "state": "completed"}),
                ),
                Err(err) => {
                    let reason = Python::attach(|py| describe(py, err));
                    op.emit(json!({"manager_state": CREATE_BACKUP, "stage": null, "state": "failed", "reason": reason}));
                }
            }
            // Idle before subscribers hear it, so one may start the next operation at once.
            drop(busy);
            op.emit(json!({"manager_state": IDLE}));
            result
        })
    }

    /// Uploads an existing local backup to the agents again.
    #[pyo3(signature = (slug, *, agent_ids=None, abort=None))]
    fn sync_backup<'py>(
        &self,
        py: Python<'py>,
        slug: String,
        agent_ids: Option<Vec<String>>,
        abort: Option<PyRef<'_, AbortToken>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        check_slug(&slug)?;
        let agents = self.agents(py, agent_ids)?;
        let op = self.op(py, abort.as_deref())?;
        let locals = op.locals.clone();
        super::awaitable::future_into_py_with_locals(py, locals, async move {
            let backup_dir = op.inner.backup_dir.clone();
            let lookup = slug.clone();
            let found = blocking(move || {
                let Some(mut backup) = find_local(&backup_dir, &lookup)? else {
                    return Ok(None);
                };
                if let Some(path) = &backup.path {
                    backup.sha256 = Some(sha256_file(path)?);
                }
                Ok(Some(backup))
            })
            .await?;
            let Some(backup) = found else {
                return Err(raise(
                    "BackupNotFound",
                    &format!("Backup {slug} not found"),
                    None,
                ));
            };
            let uploaded = op.upload(&backup, &agents).await;
            if let Some(fatal) = uploaded.fatal {
                return Err(fatal);
            }
            if op.abort.is_aborted() {
                return Err(cancelled());
            }
            Ok(Backup {
                synced_agents: uploaded.synced,
                failed_agents: uploaded.failed,
                ..backup
            })
        })
    }

    /// `(backups by slug, errors by agent id)`: local backups merged with every agent's.
    #[pyo3(signature = (*, abort=None))]
    fn get_backups<'py>(
        &self,
        py: Python<'py>,
        abort: Option<PyRef<'_, AbortToken>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let agents = self.agents(py, None)?;
        let op = self.op(py, abort.as_deref())?;
        let locals = op.locals.clone();
        super::awaitable::future_into_py_with_locals(py, locals, async move {
            let (backups, errors) = all_backups(&op, &agents).await?;
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

    #[pyo3(signature = (slug, *, abort=None))]
    fn get_backup<'py>(
        &self,
        py: Python<'py>,
        slug: String,
        abort: Option<PyRef<'_, AbortToken>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let agents = self.agents(py, None)?;
        let op = self.op(py, abort.as_deref())?;
        let locals = op.locals.clone();
        super::awaitable::future_into_py_with_locals(py, locals, async move {
            let (mut backups, _errors) = all_backups(&op, &agents).await?;
            Ok(backups.remove(&slug))
        })
    }

    /// Downloads an agent's copy into the backup dir (or `path`), checked before it appears.
    #[pyo3(signature = (*, agent_id, id, path=None, abort=None))]
    fn download_backup<'py>(
        &self,
        py: Python<'py>,
        agent_id: String,
        id: String,
        path: Option<PathBuf>,
        abort: Option<PyRef<'_, AbortToken>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let agents = self.agents(py, Some(vec![agent_id.clone()]))?;
        let op = self.op(py, abort.as_deref())?;
        let locals = op.locals.clone();
        super::awaitable::future_into_py_with_locals(py, locals, async move {
            download(&op, &agents, &agent_id, &id, path).await
        })
    }

    /// Deletes a backup locally and from every agent that holds it.
    #[pyo3(signature = (slug, *, abort=None))]
    fn remove_backup<'py>(
        &self,
        py: Python<'py>,
        slug: String,
        abort: Option<PyRef<'_, AbortToken>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        check_slug(&slug)?;
        let agents = self.agents(py, None)?;
        let op = self.op(py, abort.as_deref())?;
        let locals = op.locals.clone();
        super::awaitable::future_into_py_with_locals(py, locals, async move {
            remove(&op, &agents, &slug).await
        })
    }

    /// Restores a local backup into the config dir.
    #[pyo3(signature = (slug, *, password=None, restore_database=true, abort=None))]
    fn restore_backup<'py>(
        &self,
        py: Python<'py>,
        slug: String,
        password: Option<String>,
        restore_database: bool,
        abort: Option<PyRef<'_, AbortToken>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        check_slug(&slug)?;
        let op = self.op(py, abort.as_deref())?;
        let busy = self.begin(py, RESTORE_BACKUP)?;
        let locals = op.locals.clone();
        super::awaitable::future_into_py_with_locals(py, locals, async move {
            let busy = busy;
            op.emit(
                json!({"manager_state": RESTORE_BACKUP, "stage": null, "state": "in_progress"}),
            );
            let result = restore(&op, &slug, password, restore_database).await;
            match &result {
                Ok(()) => op.emit(
                    json!({"manager_state": RESTORE_BACKUP, "stage": null, "state": "completed"}),
                ),
                Err(err) => {
                    let reason = Python::attach(|py| describe(py, err));
                    op.emit(json!({"manager_state": RESTORE_BACKUP, "stage": null, "state": "failed", "reason": reason}));
                }
            }
            // Idle before subscribers hear it, so one may start the next operation at once.
            drop(busy);
            op.emit(json!({"manager_state": IDLE}));
            result
        })
    }
}

// ---- the flows -------------------------------------------------------------------------------------

async fn create(
    op: &Op,
    pre: &Hooks,
    post: &Hooks,
    options: CreateOptions,
    agents: &Agents,
) -> PyResult<Backup> {
    op.emit(json!({"manager_state": CREATE_BACKUP, "stage": null, "state": "in_progress"}));
    op.emit(
        json!({"manager_state": CREATE_BACKUP, "stage": "home_assistant", "state": "in_progress"}),
    );
    let mut outcome = Outcome::default();
    op.run_hooks(pre, "pre_backup", &op.abort, &mut outcome)
        .await;
    let archived = if outcome.fatal.is_none() && outcome.hook.is_none() && !op.abort.is_aborted() {
        Some(write_archive(op, options).await)
    } else {
        None
    };
    // Post hooks run on every path, cancellation included, and are not themselves cancelled.
    op.run_hooks(post, "post_backup", &AbortToken::new(), &mut outcome)
        .await;

    let made = match &archived {
        Some(Ok(backup)) => backup.path.clone(),
        _ => None,
    };
    let result = if let Some(fatal) = outcome.fatal {
        Err(fatal)
    } else if op.abort.is_aborted() {
        Err(cancelled())
    } else if let Some(hook) = outcome.hook {
        Err(hook)
    } else {
        match archived {
            Some(Ok(backup)) => Ok(backup),
            Some(Err(e)) => Err(Python::attach(|py| to_py(py, e))),
            None => Err(cancelled()),
        }
    };
    let backup = match result {
        Ok(backup) => backup,
        Err(err) => {
            // A backup whose hooks failed or that was cancelled before its upload is not kept.
            if let Some(path) = made {
                let _ = blocking(move || fs::remove_file(&path).at(&path)).await;
            }
            return Err(err);
        }
    };

    op.emit(json!({"manager_state": CREATE_BACKUP, "stage": "upload_to_agents", "state": "in_progress"}));
    let uploaded = op.upload(&backup, agents).await;
    if let Some(fatal) = uploaded.fatal {
        return Err(fatal);
    }
    if op.abort.is_aborted() {
        // The local backup is complete and stays; the upload can be repeated with sync_backup.
        return Err(cancelled());
    }
    op.emit(
        json!({"manager_state": CREATE_BACKUP, "stage": "cleaning_up", "state": "in_progress"}),
    );
    Ok(Backup {
        synced_agents: uploaded.synced,
        failed_agents: uploaded.failed,
        ..backup
    })
}

/// Writes the archive on the blocking pool; on abort stops it and waits until its temp file is
/// gone.
async fn write_archive(op: &Op, options: CreateOptions) -> Result<Backup, ArchiveError> {
    let flag = CancelFlag::new();
    let _guard = CancelOnDrop(flag.clone());
    let (progress, relay_task) = op.progress();
    let config_dir = op.inner.config_dir.clone();
    let backup_dir = op.inner.backup_dir.clone();
    let work_flag = flag.clone();
    let mut handle = tokio::task::spawn_blocking(move || {
        fs::create_dir_all(&backup_dir).at(&backup_dir)?;
        let callback: &(dyn Fn(u64, u64) + Sync) = progress.as_ref();
        archive::create_archive(
            &config_dir,
            &backup_dir,
            &options,
            &work_flag,
            Some(callback),
        )
        .map(Backup::from)
    });
    let joined = tokio::select! {
        joined = &mut handle => joined,
        () = op.abort.aborted() => {
            flag.cancel();
            (&mut handle).await
        }
    };
    // The last progress event reaches subscribers before the next stage's.
    let _ = relay_task.await;
    joined.unwrap_or_else(|e| {
        Err(ArchiveError::InvalidArgument(format!(
            "archive task failed: {e}"
        )))
    })
}

type AllBackups = (BTreeMap<String, Backup>, Vec<(String, PyErr)>);

async fn all_backups(op: &Op, agents: &Agents) -> PyResult<AllBackups> {
    let backup_dir = op.inner.backup_dir.clone();
    let local = blocking(move || scan_local(&backup_dir)).await?;
    let listings = op.list_agents(agents).await?;
    let mut backups: BTreeMap<String, Backup> =
        local.into_iter().map(|b| (b.slug.clone(), b)).collect();
    let mut errors = Vec::new();
    for (agent_id, listing) in listings {
        let synced = match listing {
            Ok(synced) => synced,
            Err(err) => {
                errors.push((agent_id, err));
                continue;
            }
        };
        for copy in synced {
            let backup = backups.entry(copy.slug.clone()).or_insert_with(|| Backup {
                slug: copy.slug.clone(),
                name: copy.name.clone(),
                date: copy.date.clone(),
                size: copy.size,
                path: None,
                protected: copy.protected,
                homeassistant_version: None,
                database_included: true,
                sha256: copy.sha256.clone(),
                synced_agents: Vec::new(),
                failed_agents: BTreeMap::new(),
                agents: BTreeMap::new(),
            });
            if !backup.synced_agents.contains(&agent_id) {
                backup.synced_agents.push(agent_id.clone());
            }
            backup.agents.insert(agent_id.clone(), copy.id);
        }
    }
    Ok((backups, errors))
}

/// What a failed single call (an agent factory, a download) becomes: cancellation stays
/// cancellation; a timeout or an exception becomes a `class` error naming `what`. An agent's own
/// habackup errors (BackupNotFound, say) pass through as they are.
fn call_failure(failure: CallError, class: &str, what: &str) -> PyErr {
    match failure {
        CallError::Aborted => cancelled(),
        CallError::TimedOut(limit) => raise(
            class,
            &format!("{what} timed out after {} s", seconds(limit)),
            None,
        ),
        CallError::Raised(err) => Python::attach(|py| {
            let own = class == "BackupAgentError" && is_backup_error(py, &err);
            if is_fatal(py, &err) || own {
                return err;
            }
            let message = format!("{what} failed: {}", describe(py, &err));
            error(py, class, &message, &[], Some(err))
        }),
    }
}

fn is_backup_error(py: Python<'_>, err: &PyErr) -> bool {
    py.import("habackup.errors")
        .and_then(|m| m.getattr("BackupError"))
        .and_then(|class| err.value(py).is_instance(&class))
        .unwrap_or(false)
}

async fn download(
    op: &Op,
    agents: &Agents,
    agent_id: &str,
    id: &str,
    path: Option<PathBuf>,
) -> PyResult<PathBuf> {
    let mut listings = op.list_agents(agents).await?;
    let expected = match listings.pop() {
        Some((_, Ok(copies))) => copies.into_iter().find(|c| c.id == id),
        Some((_, Err(err))) => return Err(err),
        None => None,
    };
    let Some(expected) = expected else {
        return Err(raise(
            "BackupNotFound",
            &format!("Backup {id} not found on {agent_id}"),
            None,
        ));
    };
    let backup_dir = op.inner.backup_dir.clone();
    let temp_path = {
        let token = uuid::Uuid::new_v4().simple().to_string();
        backup_dir.join(format!(".download-{}.partial.tar", &token[..12]))
    };
    let dir = backup_dir.clone();
    blocking(move || fs::create_dir_all(&dir).at(&dir)).await?;
    let mut temp = TempPath(Some(temp_path.clone()));
    let agent = &agents[0].1;
    let call = op.start(
        agent,
        "async_download_backup",
        |py| Ok(PyTuple::empty(py)),
        |py| {
            let kwargs = PyDict::new(py);
            kwargs.set_item("id", id)?;
            kwargs.set_item("path", &temp_path)?;
            Ok(Some(kwargs))
        },
    );
    run(call, &op.abort, op.inner.agent_timeout)
        .await
        .map_err(|failure| {
            call_failure(
                failure,
                "BackupAgentError",
                &format!("Download of {id} from {agent_id}"),
            )
        })?;
    let moved = temp_path.clone();
    let dest = blocking(move || verify_download(&moved, path, &backup_dir, &expected)).await?;
    temp.0 = None;
    Ok(dest)
}

async fn remove(op: &Op, agents: &Agents, slug: &str) -> PyResult<()> {
    let backup_dir = op.inner.backup_dir.clone();
    let lookup = slug.to_string();
    let local = blocking(move || find_local(&backup_dir, &lookup)).await?;
    let listings = op.list_agents(agents).await?;
    let holders: Vec<(String, String)> = listings
        .iter()
        .filter_map(|(agent_id, listing)| {
            let copies = listing.as_ref().ok()?;
            let copy = copies.iter().find(|c| c.slug == slug)?;
            Some((agent_id.clone(), copy.id.clone()))
        })
        .collect();
    if local.is_none() && holders.is_empty() {
        return Err(raise(
            "BackupNotFound",
            &format!("Backup {slug} not found"),
            None,
        ));
    }
    if let Some(path) = local.and_then(|b| b.path) {
        blocking(move || fs::remove_file(&path).at(&path)).await?;
    }
    let calls: Vec<(String, PyCall)> = holders
        .iter()
        .filter_map(|(agent_id, copy_id)| {
            let (_, agent) = agents.iter().find(|(id, _)| id == agent_id)?;
            let call = op.start(
                agent,
                "async_delete_backup",
                |py| Ok(PyTuple::empty(py)),
                |py| {
                    let kwargs = PyDict::new(py);
                    kwargs.set_item("id", copy_id)?;
                    Ok(Some(kwargs))
                },
            );
            Some((agent_id.clone(), call))
        })
        .collect();
    let timeout = op.inner.agent_timeout;
    let abort = &op.abort;
    let results = join_all(
        calls
            .into_iter()
            .map(|(agent_id, call)| async move { (agent_id, run(call, abort, timeout).await) }),
    )
    .await;
    let mut failures: Vec<String> = Vec::new();
    let mut first: Option<PyErr> = None;
    for (agent_id, result) in results {
        match result {
            Ok(_) | Err(CallError::Aborted) => {}
            Err(CallError::TimedOut(limit)) => {
                failures.push(format!("{agent_id} (timed out after {} s)", seconds(limit)));
            }
            Err(CallError::Raised(err)) => {
                let fatal = Python::attach(|py| {
                    if is_fatal(py, &err) {
                        return true;
                    }
                    failures.push(format!("{agent_id} ({})", describe(py, &err)));
                    false
                });
                if fatal {
                    return Err(err);
                }
                first.get_or_insert(err);
            }
        }
    }
    if op.abort.is_aborted() {
        return Err(cancelled());
    }
    if failures.is_empty() {
        Ok(())
    } else {
        let message = format!(
            "Failed to delete backup {slug} from: {}",
            failures.join(", ")
        );
        log::error!(target: LOG, "{message}");
        Err(raise("BackupAgentError", &message, first))
    }
}

async fn restore(
    op: &Op,
    slug: &str,
    password: Option<String>,
    restore_database: bool,
) -> PyResult<()> {
    let backup_dir = op.inner.backup_dir.clone();
    let lookup = slug.to_string();
    let local = blocking(move || find_local(&backup_dir, &lookup)).await?;
    let Some(path) = local.and_then(|b| b.path) else {
        return Err(raise(
            "BackupNotFound",
            &format!("Backup {slug} not found"),
            None,
        ));
    };
    let flag = CancelFlag::new();
    let _guard = CancelOnDrop(flag.clone());
    let work_flag = flag.clone();
    let config_dir = op.inner.config_dir.clone();
    let backup_dir = op.inner.backup_dir.clone();
    let mut handle = tokio::task::spawn_blocking(move || {
        restore_files(
            &path,
            &config_dir,
            &backup_dir,
            password.as_deref(),
            restore_database,
            &work_flag,
        )
    });
    let joined = tokio::select! {
        joined = &mut handle => joined,
        () = op.abort.aborted() => {
            flag.cancel();
            (&mut handle).await
        }
    };
    match joined {
        Ok(result) => result.map_err(|e| Python::attach(|py| to_py(py, e))),
        Err(e) => Err(pyo3::exceptions::PyRuntimeError::new_err(format!(
            "restore task failed: {e}"
        ))),
    }
}
