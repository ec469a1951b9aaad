use std::collections::BTreeMap;
use std::path::PathBuf;

use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::archive::BackupInfo;

/// One backup: what its backup.json says, where it is and which agents hold it.
#[pyclass(frozen, eq, module = "habackup", get_all)]
#[derive(Debug, Clone, PartialEq)]
pub struct Backup {
    pub slug: String,
    pub name: String,
    pub date: String,
    pub size: u64,
    pub path: Option<PathBuf>,
    pub protected: bool,
    pub homeassistant_version: Option<String>,
    pub database_included: bool,
    pub sha256: Option<String>,
    pub synced_agents: Vec<String>,
    pub failed_agents: BTreeMap<String, String>,
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
                        failed_agents=BTreeMap::new(), agents=BTreeMap::new()))]
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

    /// A JSON-ready dict (the path as a string).
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
