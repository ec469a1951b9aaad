//! `ObjectStoreClient`: the Rust half of `habackup.ObjectStoreBackupSyncAgent`. Every transfer
//! runs on tokio; Python only starts it and gets the result.

use std::path::PathBuf;
use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::PyDict;
use serde_json::Value;

use super::archive::{loop_progress, CancelToken};
use super::blocking::CancelOnDrop;
use super::errors::store_to_py;
use crate::archive::CancelFlag;
use crate::store::{Kind, Metadata, Progress, StoreAgent, StoreError};

#[pyclass(module = "habackup._core", frozen)]
pub struct ObjectStoreClient {
    agent: Arc<StoreAgent>,
}

fn err(e: StoreError) -> PyErr {
    Python::attach(|py| store_to_py(py, e))
}

fn to_metadata(value: &Bound<'_, PyAny>) -> PyResult<Metadata> {
    let value: Value = pythonize::depythonize(value).map_err(|e| {
        Python::attach(|py| {
            store_to_py(
                py,
                StoreError::InvalidConfig(format!("metadata must be a JSON-compatible dict: {e}")),
            )
        })
    })?;
    match value {
        Value::Object(map) => Ok(map),
        _ => Err(err(StoreError::InvalidConfig(
            "metadata must be a dict".into(),
        ))),
    }
}

/// The loop-side progress callback, plus the relay task to await before returning.
fn progress(
    py: Python<'_>,
    on_progress: Option<Py<PyAny>>,
) -> PyResult<(Option<Progress>, Option<tokio::task::JoinHandle<()>>)> {
    match on_progress {
        Some(callback) => {
            let event_loop = pyo3_async_runtimes::tokio::get_current_loop(py)?.unbind();
            let (progress, task) = loop_progress(event_loop, callback);
            Ok((Some(progress), Some(task)))
        }
        None => Ok((None, None)),
    }
}

fn pythonized(value: &Value) -> PyResult<Py<PyAny>> {
    Python::attach(|py| {
        pythonize::pythonize(py, value)
            .map(Bound::unbind)
            .map_err(|e| pyo3::exceptions::PyRuntimeError::new_err(e.to_string()))
    })
}

#[pymethods]
impl ObjectStoreClient {
    #[new]
    #[pyo3(signature = (url, options=None))]
    fn new(url: &str, options: Option<Vec<(String, String)>>) -> PyResult<Self> {
        let options = options.unwrap_or_default();
        let agent = StoreAgent::new(url, &options).map_err(err)?;
        Ok(ObjectStoreClient {
            agent: Arc::new(agent),
        })
    }

    /// The URL without credentials or query string.
    #[getter]
    fn url(&self) -> &str {
        self.agent.display_url()
    }

    #[getter]
    fn kind(&self) -> &'static str {
        match self.agent.kind() {
            Kind::Local => "file",
            Kind::Memory => "memory",
            Kind::S3 => "s3",
            Kind::Gcs => "gs",
            Kind::Azure => "az",
            Kind::WebDav => "webdav",
            Kind::Sftp => "sftp",
            Kind::Smb => "smb",
        }
    }

    #[pyo3(signature = (path, metadata=None, on_progress=None, cancel=None))]
    fn upload<'py>(
        &self,
        py: Python<'py>,
        path: PathBuf,
        metadata: Option<Bound<'py, PyAny>>,
        on_progress: Option<Py<PyAny>>,
        cancel: Option<PyRef<'_, CancelToken>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let metadata = match metadata {
            Some(m) if !m.is_none() => Some(to_metadata(&m)?),
            _ => None,
        };
        let cancel = cancel.map(|c| c.flag()).unwrap_or_default();
        let (progress, relay) = progress(py, on_progress)?;
        let agent = self.agent.clone();
        let guard = CancelOnDrop(cancel.clone());
        super::awaitable::future_into_py(py, async move {
            let _guard = guard;
            let result = agent.upload(&path, metadata, progress, &cancel).await;
            if let Some(relay) = relay {
                let _ = relay.await;
            }
            pythonized(&Value::Object(result.map_err(err)?))
        })
    }

    #[pyo3(signature = (id, path, on_progress=None, cancel=None))]
    fn download<'py>(
        &self,
        py: Python<'py>,
        id: String,
        path: PathBuf,
        on_progress: Option<Py<PyAny>>,
        cancel: Option<PyRef<'_, CancelToken>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let cancel = cancel.map(|c| c.flag()).unwrap_or_default();
        let (progress, relay) = progress(py, on_progress)?;
        let agent = self.agent.clone();
        let guard = CancelOnDrop(cancel.clone());
        super::awaitable::future_into_py(py, async move {
            let _guard = guard;
            let result = agent.download(&id, &path, progress, &cancel).await;
            if let Some(relay) = relay {
                let _ = relay.await;
            }
            result.map_err(err)
        })
    }

    fn list<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let agent = self.agent.clone();
        super::awaitable::future_into_py(py, async move {
            let listed = agent.list().await.map_err(err)?;
            let items: Vec<Value> = listed
                .into_iter()
                .map(|l| Value::Object(l.metadata))
                .collect();
            pythonized(&Value::Array(items))
        })
    }

    #[pyo3(signature = (id, cancel=None))]
    fn delete<'py>(
        &self,
        py: Python<'py>,
        id: String,
        cancel: Option<PyRef<'_, CancelToken>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let cancel: CancelFlag = cancel.map(|c| c.flag()).unwrap_or_default();
        let agent = self.agent.clone();
        super::awaitable::future_into_py(py, async move {
            let work = agent.delete(&id);
            tokio::select! {
                result = work => result.map_err(err),
                () = async { while !cancel.is_cancelled() {
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                } } => Err(err(StoreError::Cancelled)),
            }
        })
    }

    fn __repr__(&self) -> String {
        format!("<ObjectStoreClient {}>", self.agent.display_url())
    }

    /// Tuning in effect (for diagnostics and tests): part size, threshold, concurrency, retries.
    fn tuning<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let tuning = self.agent.tuning();
        let dict = PyDict::new(py);
        dict.set_item("multipart_threshold", tuning.multipart_threshold)?;
        dict.set_item("part_size", tuning.part_size)?;
        dict.set_item("max_concurrency", tuning.max_concurrency)?;
        dict.set_item("max_retries", tuning.retry.max_retries)?;
        Ok(dict)
    }
}
