//! Progress from the engine's threads to Python.
//!
//! The archiver's threads run in the background (`SCHED_BATCH` with long slices, or `SCHED_IDLE`):
//! if one of them took the GIL it could be descheduled while holding it and stall the event loop
//! for milliseconds. Instead they only store the latest figures; a tokio task at normal priority
//! takes the GIL and hands them to the loop.

use std::sync::Arc;

use pyo3::prelude::*;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::common::Progress;

/// Returns the callback for the engine and the relay task. The task ends once the callback is
/// dropped, after delivering the last figures: await it before reporting the result, so the
/// final progress call reaches the loop first.
pub fn relay<D>(deliver: D) -> (Progress, JoinHandle<()>)
where
    D: Fn(Python<'_>, u64, u64) + Send + 'static,
{
    let (tx, mut rx) = watch::channel(None::<(u64, u64)>);
    let task = pyo3_async_runtimes::tokio::get_runtime().spawn(async move {
        while rx.changed().await.is_ok() {
            let latest = *rx.borrow_and_update();
            if let Some((done, total)) = latest {
                Python::attach(|py| deliver(py, done, total));
            }
        }
    });
    let progress: Progress = Arc::new(move |done, total| {
        tx.send_replace(Some((done, total)));
    });
    (progress, task)
}

/// A Python `on_progress(done, total)` callback, called on the running loop's thread like every
/// asyncio callback. `None` in, `None` out.
pub fn on_loop(
    py: Python<'_>,
    callback: Option<Py<PyAny>>,
) -> PyResult<(Option<Progress>, Option<JoinHandle<()>>)> {
    let Some(callback) = callback else {
        return Ok((None, None));
    };
    let event_loop = pyo3_async_runtimes::tokio::get_current_loop(py)?.unbind();
    let (progress, task) = relay(move |py, done, total| {
        if let Err(err) =
            event_loop.call_method1(py, "call_soon_threadsafe", (&callback, done, total))
        {
            err.print(py);
        }
    });
    Ok((Some(progress), Some(task)))
}

/// A Python callback called right from the engine's thread (the sync twins, where no loop runs).
/// A failing callback is printed, never fatal.
pub fn on_thread(callback: Py<PyAny>) -> Progress {
    Arc::new(move |done, total| {
        Python::attach(|py| {
            if let Err(err) = callback.call1(py, (done, total)) {
                err.print(py);
            }
        });
    })
}
