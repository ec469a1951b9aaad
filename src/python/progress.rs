//! Progress from the archiver's threads to Python.
//!
//! Those threads run as `SCHED_IDLE`: if one of them took the GIL it could be descheduled while
//! holding it and stall the event loop for milliseconds. Instead they only store the latest figures;
//! a tokio task at normal priority takes the GIL and hands them to the loop.

use std::sync::Arc;

use pyo3::prelude::*;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub type Progress = Arc<dyn Fn(u64, u64) + Send + Sync>;

/// Returns the callback for the archiver and the relay task. The task ends once the callback is
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
