//! Blocking engine work (file I/O, compression, hashing) off the Python thread, the GIL released.

use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use pyo3::prelude::*;

use crate::common::CancelToken;

/// For the sync twins: runs `work` on its own thread, waits without the GIL and checks for signals
/// every 100 ms, so Ctrl-C cancels the work (which cleans up) instead of waiting for it.
pub fn run_interruptible<T, E, F>(py: Python<'_>, work: F) -> PyResult<T>
where
    T: Send + 'static,
    E: Into<PyErr> + Send + 'static,
    F: FnOnce(CancelToken) -> Result<T, E> + Send + 'static,
{
    let cancel = CancelToken::new();
    let work_cancel = cancel.clone();
    let (tx, rx) = mpsc::channel();
    let handle = thread::Builder::new()
        .name("habackup-work".into())
        .spawn(move || {
            let _ = tx.send(work(work_cancel));
        })
        .map_err(|e| {
            pyo3::exceptions::PyRuntimeError::new_err(format!("cannot start a thread: {e}"))
        })?;
    let mut rx = rx;
    loop {
        let (received, back) = py.detach(move || (rx.recv_timeout(Duration::from_millis(100)), rx));
        rx = back;
        match received {
            Ok(result) => {
                let _ = py.detach(|| handle.join());
                return result.map_err(Into::into);
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if let Err(signal) = py.check_signals() {
                    cancel.cancel();
                    let _ = py.detach(|| handle.join());
                    return Err(signal);
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                return Err(pyo3::exceptions::PyRuntimeError::new_err(
                    "habackup worker thread panicked",
                ));
            }
        }
    }
}

/// For async work: runs `work` on tokio's blocking pool and waits for it to end, also when the
/// awaiting future is dropped half way (the token is cancelled then, and the work, which polls
/// it, cleans up and stops). A panic comes back as an error, never as a hang.
pub async fn run_cancellable<T, E, F>(cancel: &CancelToken, work: F) -> Result<T, PyErr>
where
    T: Send + 'static,
    E: Into<PyErr> + Send + 'static,
    F: FnOnce(CancelToken) -> Result<T, E> + Send + 'static,
{
    let guard = cancel.cancel_on_drop();
    let token = cancel.clone();
    let joined = tokio::task::spawn_blocking(move || work(token)).await;
    guard.disarm();
    match joined {
        Ok(result) => result.map_err(Into::into),
        Err(e) => Err(pyo3::exceptions::PyRuntimeError::new_err(format!(
            "habackup worker task failed: {e}"
        ))),
    }
}
