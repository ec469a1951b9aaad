//! Runs engine work off the Python thread with the GIL released.

use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use pyo3::prelude::*;

use crate::archive::{ArchiveError, CancelFlag};

/// For the sync twins: runs `work` on its own thread, waits without the GIL and checks for signals
/// every 100 ms, so Ctrl-C cancels the work (which cleans up) instead of waiting for it.
pub fn run_interruptible<T, F>(
    py: Python<'_>,
    cancel: &CancelFlag,
    work: F,
) -> PyResult<Result<T, ArchiveError>>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, ArchiveError> + Send + 'static,
{
    let (tx, rx) = mpsc::channel();
    let handle = thread::Builder::new()
        .name("habackup-work".into())
        .spawn(move || {
            let _ = tx.send(work());
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
                return Ok(result);
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

/// Sets the flag when dropped: a Rust future dropped because its Python awaitable was cancelled
/// stops the blocking work it started.
pub struct CancelOnDrop(pub CancelFlag);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}
