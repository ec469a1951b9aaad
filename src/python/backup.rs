//! `Backup`: one backup as Python sees it (what its backup.json says, where it is, which agents
//! hold it).

use std::collections::BTreeMap;
use std::path::PathBuf;

use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::archive::BackupInfo;

/// One backup: what its backup.json says, where its file is and which sync agents hold copies.
///
/// ``create_archive``, ``read_backup`` and ``list_backups`` return one for a local file; the
/// manager's ``async_get_backups`` merges the local file and every agent's copy of a backup into
/// one (``synced_agents``, ``agents``). Immutable, hashable, comparable.
#[pyclass(frozen, eq, module = "habackup", get_all)]
#[derive(Debug, Clone, PartialEq)]
pub struct Backup {
    /// Home Assistant's id of the backup (8 hex digits for its own); names ``<slug>.tar``.
    pub slug: String,
    /// The name Home Assistant shows.
    pub name: String,
    /// When it was made: ISO 8601 with a UTC offset.
    pub date: String,
    /// Bytes of the backup file.
    pub size: u64,
    /// The local file, or None for a backup only an agent holds.
    pub path: Option<PathBuf>,
    /// Whether the inner archive is encrypted (securetar): restoring needs the password.
    pub protected: bool,
    /// The Home Assistant version that made it (None in a Supervisor backup without Core).
    pub homeassistant_version: Option<String>,
    /// Whether the recorder database is in it.
    pub database_included: bool,
    /// Hex digest of the whole file, when known: set by ``create_archive`` and by agents that
    /// store it; None for a file only read (hashing it would mean reading it all).
    pub sha256: Option<String>,
    /// Agent ids (``"<domain>.<name>"``) that hold a copy, from the manager.
    pub synced_agents: Vec<String>,
    /// Agent id -> why its upload failed, from the manager's create or sync.
    pub failed_agents: BTreeMap<String, String>,
    /// Agent id -> that agent's own id for its copy (what its ``async_download_backup`` and
    /// ``async_delete_backup`` take as ``id``); the manager fills it from the listings.
    pub agents: BTreeMap<String, String>,
}

impl From<BackupInfo> for Backup {
    fn from(info: BackupInfo) -> Self {
        Backup {
            slug: info.slug,
            name: info.name,
            date: info.date,
            size: info.size,
            path: info.path,
            protected: info.protected,
            homeassistant_version: info.homeassistant_version,
            database_included: info.database_included,
            sha256: info.sha256,
            synced_agents: Vec::new(),
            failed_agents: BTreeMap::new(),
            agents: BTreeMap::new(),
        }
    }
}

#[pymethods]
impl Backup {
    #[new]
    #[pyo3(signature = (*, slug, name, date, size, path=None, protected=false, homeassistant_version=None,
                        database_included=true, sha256=None, synced_agents=Vec::new(),
                        failed_agents=BTreeMap::new(), agents=BTreeMap::new()),
           text_signature = "(*, slug, name, date, size, path=None, protected=False, \
                             homeassistant_version=None, database_included=True, sha256=None, \
                             synced_agents=[], failed_agents={}, agents={})")]
    #[allow(clippy::too_many_arguments)]
    fn new(
        slug: String,
        name: String,
        date: String,
        size: u64,
        path: Option<PathBuf>,
        protected: bool,
        homeassistant_version: Option<String>,
        database_included: bool,
        sha256: Option<String>,
        synced_agents: Vec<String>,
        failed_agents: BTreeMap<String, String>,
        agents: BTreeMap<String, String>,
    ) -> Self {
        Backup {
            slug,
            name,
            date,
            size,
            path,
            protected,
            homeassistant_version,
            database_included,
            sha256,
            synced_agents,
            failed_agents,
            agents,
        }
    }

    /// A JSON-ready dict of every field (the path as a string).
    fn as_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        d.set_item("slug", &self.slug)?;
        d.set_item("name", &self.name)?;
        d.set_item("date", &self.date)?;
        d.set_item("size", self.size)?;
        d.set_item("path", self.path.as_ref().map(|p| p.display().to_string()))?;
        d.set_item("protected", self.protected)?;
        d.set_item("homeassistant_version", &self.homeassistant_version)?;
        d.set_item("database_included", self.database_included)?;
        d.set_item("sha256", &self.sha256)?;
        d.set_item("synced_agents", &self.synced_agents)?;
        d.set_item("failed_agents", &self.failed_agents)?;
        d.set_item("agents", &self.agents)?;
        Ok(d)
    }

    fn __repr__(&self) -> String {
        format!(
            "Backup(slug={}, name={}, date={}, size={}, protected={})",
            py_repr(&self.slug),
            py_repr(&self.name),
            py_repr(&self.date),
            self.size,
            if self.protected { "True" } else { "False" }
        )
    }

    fn __hash__(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.slug.hash(&mut h);
        self.sha256.hash(&mut h);
        h.finish()
    }
}

/// Python's repr of a str, for `__repr__` output that reads like Python.
fn py_repr(value: &str) -> String {
    format!("'{}'", value.replace('\\', "\\\\").replace('\'', "\\'"))
}
