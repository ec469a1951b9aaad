//! Restore: a local backup swapped into the config dir by the engine's one restore.

use pyo3::prelude::*;

use super::op::Op;
use crate::archive::{find_local, restore_into, RestoreOptions};
use crate::python::errors::Error;
use crate::python::runtime::blocking::run_cancellable;

pub async fn restore(
    op: &Op,
    slug: &str,
    password: Option<String>,
    restore_database: bool,
) -> PyResult<()> {
    let backup_dir = op.inner.backup_dir.clone();
    let config_dir = op.inner.config_dir.clone();
    let lookup = slug.to_string();
    let found = run_cancellable(&op.cancel, move |_| find_local(&backup_dir, &lookup)).await?;
    let Some(path) = found.and_then(|b| b.path) else {
        return Err(Error::NotFound(format!("Backup {slug} not found")).into());
    };
    // The backup dir is kept, wherever it is inside the config dir.
    let backup_dir = op.inner.backup_dir.clone();
    let keep = backup_dir
        .strip_prefix(&config_dir)
        .ok()
        .and_then(|relative| relative.components().next())
        .map(|first| first.as_os_str().to_string_lossy().into_owned())
        .into_iter()
        .collect();
    let options = RestoreOptions {
        password,
        restore_database,
        keep,
    };
    run_cancellable(&op.cancel, move |cancel| {
        restore_into(&path, &config_dir, &options, &cancel)
    })
    .await?;
    Ok(())
}
