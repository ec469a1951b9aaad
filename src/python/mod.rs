//! The pyo3 layer: converts types and errors between Python and the pure-Rust engine.
//!
//! `archive` (the archiver's functions), `inspect` (list and diff members), `locations`
//! (verify, copy and prune on folders and stores), `object_store` (the built-in agent's client),
//! `agent` (the `BackupSyncAgent` base class), `backup` (the `Backup` type) and `manager` (the
//! manager's verbs) are bindings; `runtime` is the plumbing they share; `errors` maps every engine error
//! to habackup's exceptions.

mod agent;
mod archive;
mod backup;
mod errors;
mod inspect;
mod locations;
mod manager;
mod object_store;
mod runtime;
mod streams;

use pyo3::prelude::*;

#[pymodule]
mod _core {
    #[pymodule_export]
    use super::agent::BackupSyncAgent;
    #[pymodule_export]
    use super::archive::{
        create_archive, create_archive_async, extract_archive, extract_archive_async,
        is_valid_slug, list_backups, read_backup, restore_archive, restore_archive_async,
        validate_password, verify_archive, verify_archive_async,
    };
    #[pymodule_export]
    use super::backup::Backup;
    #[pymodule_export]
    use super::inspect::{diff_backups, diff_backups_async, list_members, list_members_async};
    #[pymodule_export]
    use super::locations::{
        copy_backup, copy_backup_async, plan_prune, prune_location, prune_location_async,
        verify_backup, verify_backup_async,
    };
    #[pymodule_export]
    use super::manager::BackupManagerCore;
    #[pymodule_export]
    use super::object_store::ObjectStoreClient;
    #[pymodule_export]
    use super::runtime::awaitable::wait_for_idle;
    #[pymodule_export]
    use super::runtime::cancel::CancelToken;
    #[pymodule_export]
    use super::streams::DownloadStream;

    use pyo3::prelude::*;

    #[pymodule_init]
    fn init(m: &Bound<'_, PyModule>) -> PyResult<()> {
        super::runtime::init();
        super::runtime::logging::init();
        let excludes: Vec<&str> = crate::archive::DEFAULT_EXCLUDES.to_vec();
        m.add(
            "DEFAULT_EXCLUDES",
            pyo3::types::PyTuple::new(m.py(), excludes)?,
        )?;
        m.add("__version__", env!("CARGO_PKG_VERSION"))?;
        Ok(())
    }
}
