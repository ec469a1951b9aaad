//! Backups as Python async streams: a Python async iterator of bytes pumped into a Rust upload
//! (Home Assistant's `open_stream`), and a stored backup handed to Python as an async iterator
//! of verified chunks (Home Assistant's download view). No temp file either way.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use pyo3::exceptions::{PyStopAsyncIteration, PyTypeError};
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use pyo3::types::{PyBytes, PyTuple};
use pyo3_async_runtimes::TaskLocals;
use tokio::sync::{mpsc, Mutex};

use super::runtime::awaitable::future_into_py;
use super::runtime::bridge::{run, CallError, PyCall};
use crate::common::CancelToken;
use crate::store::{Download, StoreError};

/// Chunks handed to Python at least this big (the last excepted): a store's HTTP body arrives in
/// pieces of a few KiB, and each `__anext__` costs a round trip through the event loop.
const YIELD_CHUNK: usize = 1024 * 1024;

/// Awaits `aiter.__anext__()` on the caller's loop until it is exhausted, sending each chunk
/// (bytes-like) into `tx`. `Ok` at the end of the iterator or when the receiver is gone; the
/// iterator's own exception, or `CancelledError`, otherwise.
pub async fn pump(
    aiter: Py<PyAny>,
    locals: TaskLocals,
    tx: mpsc::Sender<Bytes>,
    cancel: &CancelToken,
) -> PyResult<()> {
    loop {
        let call = Python::attach(|py| {
            let spec = (
                aiter.bind(py).clone(),
                "__anext__",
                PyTuple::empty(py),
                None,
            );
            PyCall::start_batch(py, &locals, vec![spec])
                .pop()
                .unwrap_or_else(|| PyCall::failed(PyTypeError::new_err("cannot read the stream")))
        });
        let chunk = match run(call, cancel, None).await {
            Ok(value) => Python::attach(|py| -> PyResult<Bytes> {
                let value = value.bind(py);
                // Borrowed, not copied: the bytes object lives until the chunk is dropped (its
                // bytes copied into a part).
                let chunk: PyBackedBytes = value.extract().map_err(|_| {
                    PyTypeError::new_err(format!(
                        "a backup stream must yield bytes, not {}",
                        value
                            .get_type()
                            .name()
                            .map_or_else(|_| "?".into(), |n| n.to_string())
                    ))
                })?;
                Ok(Bytes::from_owner(chunk))
            })?,
            Err(CallError::Raised(err))
                if Python::attach(|py| err.is_instance_of::<PyStopAsyncIteration>(py)) =>
            {
                return Ok(());
            }
            Err(CallError::Raised(err)) => return Err(err),
            Err(CallError::TimedOut(_) | CallError::Cancelled) => {
                return Err(StoreError::Cancelled.into())
            }
        };
        if chunk.is_empty() {
            continue;
        }
        if tx.send(chunk).await.is_err() {
            // The upload stopped; it reports why.
            return Ok(());
        }
    }
}

/// A stored backup's bytes as an async iterator of `bytes` chunks, checked against the
/// sidecar's size and sha256 as they arrive: a mismatch raises `BackupAgentError` before the
/// iteration ends. `aclose()` (or dropping it) stops the transfer.
#[pyclass(module = "habackup._core", frozen)]
pub struct DownloadStream {
    inner: Arc<Mutex<Option<Download>>>,
    size: u64,
    sha256: Option<String>,
}

impl DownloadStream {
    pub fn new(download: Download) -> Self {
        DownloadStream {
            size: download.size,
            sha256: download.sha256.clone(),
            inner: Arc::new(Mutex::new(Some(download))),
        }
    }
}

#[pymethods]
impl DownloadStream {
    /// The size of the stored backup, in bytes.
    #[getter]
    fn size(&self) -> u64 {
        self.size
    }

    /// The sha256 the stored backup is checked against (`None` without a sidecar).
    #[getter]
    fn sha256(&self) -> Option<String> {
        self.sha256.clone()
    }

    fn __aiter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __anext__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let inner = self.inner.clone();
        future_into_py(py, async move {
            let mut guard = inner.lock().await;
            let Some(download) = guard.as_mut() else {
                return Err(PyStopAsyncIteration::new_err(()));
            };
            let mut chunk = BytesMut::new();
            while chunk.len() < YIELD_CHUNK {
                match download.next().await {
                    Some(Ok(piece)) => chunk.extend_from_slice(&piece),
                    Some(Err(err)) => {
                        *guard = None;
                        return Err(err.into());
                    }
                    None => {
                        *guard = None;
                        break;
                    }
                }
            }
            if chunk.is_empty() {
                return Err(PyStopAsyncIteration::new_err(()));
            }
            Ok(Python::attach(|py| PyBytes::new(py, &chunk).unbind()))
        })
    }

    /// Stops the transfer; the iterator ends.
    fn aclose<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let inner = self.inner.clone();
        future_into_py(py, async move {
            inner.lock().await.take();
            Ok(())
        })
    }
}
