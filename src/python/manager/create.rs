//! Create: pre hooks, the archive, post hooks (always), the uploads, then the retention policy.

use std::collections::BTreeMap;

use pyo3::prelude::*;
use pyo3::types::PyTuple;

use super::events::Event;
use super::op::{cancelled, Failure, Op};
use super::retention;
use super::state::{Targets, CREATE_BACKUP, LOG};
use super::sync::upload;
use crate::archive::{self, BackupInfo, CreateOptions};
use crate::common::CancelToken;
use crate::python::backup::Backup;
use crate::python::errors::{describe, Error};
use crate::python::runtime::blocking::run_cancellable;

const HOME_ASSISTANT: Option<&str> = Some("home_assistant");
const UPLOAD_TO_AGENTS: Option<&str> = Some("upload_to_agents");
const CLEANING_UP: Option<&str> = Some("cleaning_up");

pub async fn create(
    op: &Op,
    (pre, post): (Targets, Targets),
    options: CreateOptions,
    agents: &Targets,
) -> PyResult<Backup> {
    op.emit(&Event::stage(CREATE_BACKUP, None, "in_progress"));
    op.emit(&Event::stage(CREATE_BACKUP, HOME_ASSISTANT, "in_progress"));
    let pre_hooks = run_hooks(op, &pre, "pre_backup", &op.cancel).await;
    let archived = match &pre_hooks {
        Ok(None) if !op.cancel.is_cancelled() => Some(write_archive(op, options).await),
        _ => None,
    };
    // Post hooks run on every path, cancellation included, and are not themselves cancelled.
    let post_hooks = run_hooks(op, &post, "post_backup", &CancelToken::new()).await;

    let made = match &archived {
        Some(Ok(info)) => info.path.clone(),
        _ => None,
    };
    // A fatal exception wins, then cancellation, then the first hook failure.
    let result = match (pre_hooks, post_hooks) {
        (Err(fatal), _) | (_, Err(fatal)) => Err(fatal),
        _ if op.cancel.is_cancelled() => Err(cancelled()),
        (Ok(Some(hook)), _) | (Ok(None), Ok(Some(hook))) => Err(hook),
        (Ok(None), Ok(None)) => archived.unwrap_or_else(|| Err(cancelled())),
    };
    let info = match result {
        Ok(info) => info,
        Err(err) => {
            // A backup whose hooks failed or that was cancelled before its upload is not kept.
            if let Some(path) = made {
                let _ = tokio::task::spawn_blocking(move || std::fs::remove_file(path)).await;
            }
            return Err(err);
        }
    };

    op.emit(&Event::stage(
        CREATE_BACKUP,
        UPLOAD_TO_AGENTS,
        "in_progress",
    ));
    let uploaded = upload(op, &info, agents, CREATE_BACKUP).await?;
    // A cancelled upload keeps the complete local backup: sync_backup can repeat the upload.
    op.check_cancelled()?;
    op.emit(&Event::stage(CREATE_BACKUP, CLEANING_UP, "in_progress"));
    let pruned = match &op.inner.retention {
        Some(policy) => {
            retention::apply(op, policy, &uploaded.synced, agents, CREATE_BACKUP).await?
        }
        None => BTreeMap::new(),
    };
    Ok(Backup {
        pruned,
        ..uploaded.into_backup(info)
    })
}

/// Runs every hook of a stage concurrently until all have finished. `Err` is a fatal exception;
/// `Ok(Some(_))` the first hook failure, as a `BackupHookError`.
async fn run_hooks(
    op: &Op,
    hooks: &Targets,
    stage: &'static str,
    cancel: &CancelToken,
) -> PyResult<Option<PyErr>> {
    let hass = Python::attach(|py| op.inner.hass.clone_ref(py));
    let answers = op
        .fan_out(hooks, "__call__", cancel, None, |py, _, _| {
            Ok((PyTuple::new(py, [hass.bind(py)])?, None))
        })
        .await?;
    let mut first = None;
    for (domain, answer) in answers {
        let Err(Failure::Raised(err)) = answer else {
            continue;
        };
        let message =
            Python::attach(|py| format!("{stage} hook of {domain} failed: {}", describe(py, &err)));
        log::error!(target: LOG, "{message}");
        first.get_or_insert_with(|| {
            PyErr::from(Error::Hook {
                message,
                domain,
                stage,
                cause: err,
            })
        });
    }
    Ok(first)
}

/// Writes the archive on the blocking pool; a cancelled operation stops it and waits until its
/// temp file is gone.
async fn write_archive(op: &Op, mut options: CreateOptions) -> PyResult<BackupInfo> {
    let (progress, relay_task) = op.archive_progress(CREATE_BACKUP);
    let config_dir = op.inner.config_dir.clone();
    let backup_dir = op.inner.backup_dir.clone();
    let written = run_cancellable(&op.cancel, move |cancel| {
        if options.name.is_empty() {
            let version = archive::ha_version(&config_dir, options.ha_version.as_deref())?;
            options.name = format!("Core {version}");
        }
        std::fs::create_dir_all(&backup_dir)
            .map_err(|e| archive::ArchiveError::io(&backup_dir, e))?;
        archive::create_archive(
            &config_dir,
            &backup_dir,
            &options,
            &cancel,
            Some(&*progress),
        )
    })
    .await;
    // The last progress event reaches subscribers before the next stage's.
    let _ = relay_task.await;
    written
}
