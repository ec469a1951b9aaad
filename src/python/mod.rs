//! The pyo3 layer: converts types and errors between Python and the pure-Rust engine.

mod agent;
mod archive;
mod awaitable;
mod backup;
mod blocking;
mod bridge;
mod errors;
mod logging;
mod manager;
mod object_store;
mod progress;
mod runtime;

use pyo3::prelude::*;

#[pymodule]
mod _core {
    #[pymodule_export]
    use super::agent::BackupSyncAgent;
    #[pymodule_export]
    use super::archive::{
        create_archive, create_archive_async, extract_archive, extract_archive_async, read_backup,
        validate_password, verify_archive, verify_archive_async, CancelToken,
    };
    #[pymodule_export]
    use super::awaitable::wait_for_idle;
    #[pymodule_export]
    use super::backup::Backup;
    #[pymodule_export]
    use super::bridge::AbortToken;
    #[pymodule_export]
    use super::manager::BackupManagerCore;
    #[pymodule_export]
    use super::object_store::ObjectStoreClient;

    use pyo3::prelude::*;

    #[pymodule_init]
    fn init(m: &Bound<'_, PyModule>) -> PyResult<()> {
        super::runtime::init();
        super::logging::init();
        let excludes: Vec<&str> = crate::archive::DEFAULT_EXCLUDES.to_vec();
        m.add(
            "DEFAULT_EXCLUDES",
            pyo3::types::PyTuple::new(m.py(), excludes)?,
        )?;
        m.add("DEFAULT_HA_VERSION", crate::archive::DEFAULT_HA_VERSION)?;
        m.add("__version__", env!("CARGO_PKG_VERSION"))?;
        Ok(())
    }
}
