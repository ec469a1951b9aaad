//! `ObjectStoreClient`: the Rust half of `habackup.ObjectStoreBackupSyncAgent`. Every transfer
//! runs on tokio; Python only starts it and gets the result.

use std::path::PathBuf;
use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::PyDict;
use serde_json::Value;

use super::backup::Backup;
use super::runtime::awaitable::future_into_py;
use super::runtime::cancel::{token, CancelToken};
use super::runtime::progress;
use super::streams::{pump, DownloadStream};
use crate::store::{Kind, Metadata, StoreAgent, StoreError};

#[pyclass(module = "habackup._core", frozen)]
pub struct ObjectStoreClient {
    agent: Arc<StoreAgent>,
}

fn to_metadata(value: &Bound<'_, PyAny>) -> PyResult<Metadata> {
    let value: Value = pythonize::depythonize(value).map_err(|e| {
        StoreError::InvalidConfig(format!("metadata must be a JSON-compatible dict: {e}"))
    })?;
    match value {
        Value::Object(map) => Ok(map),
        _ => Err(StoreError::InvalidConfig("metadata must be a dict".into()).into()),
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
        let agent = StoreAgent::new(url, &options)?;
        Ok(ObjectStoreClient {
            agent: Arc::new(agent),
        })
    }

    /// The URL without credentials or query string.
    #[getter]
    fn url(&self) -> &str {
        self.agent.display_url()
    }

    /// The folder of a `file://` store (None for the others), for callers that want to tell a
    /// missing folder from an empty one: the agent lists both as holding no backups.
    #[getter]
    fn local_dir(&self) -> Option<PathBuf> {
        self.agent.local_dir()
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
        let cancel = token(cancel);
        let (progress, relay) = progress::on_loop(py, on_progress)?;
        let agent = self.agent.clone();
        future_into_py(py, async move {
            let guard = cancel.cancel_on_drop();
            let result = agent.upload(&path, metadata, progress, &cancel).await;
            guard.disarm();
            if let Some(relay) = relay {
                let _ = relay.await;
            }
            pythonized(&Value::Object(result?))
        })
    }

    /// Uploads a backup whose bytes come from the async iterable `stream` (`metadata` names
    /// its slug and, when known, its size: a stream of another length fails), pulling chunks
    /// as the upload can take them. An exception from the stream fails the upload, as it is.
    #[pyo3(signature = (metadata, stream, on_progress=None, cancel=None))]
    fn upload_stream<'py>(
        &self,
        py: Python<'py>,
        metadata: Bound<'py, PyAny>,
        stream: Bound<'py, PyAny>,
        on_progress: Option<Py<PyAny>>,
        cancel: Option<PyRef<'_, CancelToken>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let metadata = to_metadata(&metadata)?;
        let aiter = stream.call_method0("__aiter__")?.unbind();
        let locals = pyo3_async_runtimes::tokio::get_current_locals(py)?;
        let cancel = token(cancel);
        let (progress, relay) = progress::on_loop(py, on_progress)?;
        let agent = self.agent.clone();
        future_into_py(py, async move {
            let guard = cancel.cancel_on_drop();
            let (tx, rx) = tokio::sync::mpsc::channel(2);
            let pumping = async {
                let pumped = pump(aiter, locals, tx, &cancel).await;
                if pumped.is_err() {
                    // A stream that failed must not end up stored as a shorter backup.
                    cancel.cancel();
                }
                pumped
            };
            let (pumped, uploaded) = tokio::join!(
                pumping,
                agent.upload_stream(metadata, rx, progress, &cancel)
            );
            guard.disarm();
            if let Some(relay) = relay {
                let _ = relay.await;
            }
            pumped?;
            pythonized(&Value::Object(uploaded?))
        })
    }

    /// The stored backup `id` as a `DownloadStream` of verified chunks.
    fn open_download<'py>(&self, py: Python<'py>, id: String) -> PyResult<Bound<'py, PyAny>> {
        let agent = self.agent.clone();
        future_into_py(py, async move {
            let download = agent.open_download(&id).await?;
            Ok(DownloadStream::new(download))
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
        let cancel = token(cancel);
        let (progress, relay) = progress::on_loop(py, on_progress)?;
        let agent = self.agent.clone();
        future_into_py(py, async move {
            let guard = cancel.cancel_on_drop();
            let result = agent.download(&id, &path, progress, &cancel).await;
            guard.disarm();
            if let Some(relay) = relay {
                let _ = relay.await;
            }
            Ok(Backup::from(result?))
        })
    }

    fn list<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let agent = self.agent.clone();
        future_into_py(py, async move {
            let listed = agent.list().await?;
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
        let cancel = token(cancel);
        let agent = self.agent.clone();
        future_into_py(py, async move {
            Ok(cancel
                .run(agent.delete(&id))
                .await
                .map_err(StoreError::from)??)
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
