//! Rust futures as asyncio futures, with every completion accounted for.
//!
//! pyo3-async-runtimes' `future_into_py` hands the result to asyncio from a detached blocking
//! task. Waking the loop releases the GIL inside that call; when a short script's `asyncio.run`
//! returns right then, the interpreter starts finalizing and the thread can never take the GIL
//! back: the process dies after the work succeeded. Here each completion is counted until its
//! Python call has returned, and `wait_for_idle` (run by `atexit`) waits for the count to drop.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use pyo3::prelude::*;
use pyo3::types::{PyCFunction, PyDict, PyTuple};
use pyo3::IntoPyObjectExt;
use pyo3_async_runtimes::TaskLocals;
use std::future::Future;
use tokio::sync::oneshot;

static PENDING: AtomicUsize = AtomicUsize::new(0);

/// One future whose result has not been handed to Python yet.
struct Pending;

impl Pending {
    fn new() -> Pending {
        PENDING.fetch_add(1, Ordering::SeqCst);
        Pending
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        PENDING.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Sets the future's outcome on the loop thread unless it was cancelled meanwhile.
fn completer(py: Python<'_>) -> PyResult<Bound<'_, PyCFunction>> {
    PyCFunction::new_closure(
        py,
        Some(c"habackup_complete"),
        None,
        |args: &Bound<'_, PyTuple>, _: Option<&Bound<'_, PyDict>>| -> PyResult<()> {
            let (future, method, value): (Bound<'_, PyAny>, String, Bound<'_, PyAny>) =
                args.extract()?;
            if !future.call_method0("done")?.is_truthy()? {
                future.call_method1(method.as_str(), (value,))?;
            }
            Ok(())
        },
    )
}

/// `fut` as an asyncio future on the loop of `locals`; cancelling that future drops `fut`.
pub fn future_into_py_with_locals<F, T>(
    py: Python<'_>,
    locals: TaskLocals,
    fut: F,
) -> PyResult<Bound<'_, PyAny>>
where
    F: Future<Output = PyResult<T>> + Send + 'static,
    T: for<'py> IntoPyObject<'py> + Send + 'static,
{
    let event_loop = locals.event_loop(py);
    let py_future = event_loop.call_method0("create_future")?;
    let (cancel_tx, cancel_rx) = oneshot::channel::<()>();
    let cancel_tx = Mutex::new(Some(cancel_tx));
    let on_done = PyCFunction::new_closure(
        py,
        Some(c"habackup_on_done"),
        None,
        move |_: &Bound<'_, PyTuple>, _: Option<&Bound<'_, PyDict>>| -> PyResult<()> {
            if let Some(tx) = cancel_tx.lock().ok().and_then(|mut tx| tx.take()) {
                let _ = tx.send(());
            }
            Ok(())
        },
    )?;
    py_future.call_method1("add_done_callback", (on_done,))?;
    let pending = Pending::new();
    let target = py_future.clone().unbind();
    let loop_ref = event_loop.unbind();
    pyo3_async_runtimes::tokio::get_runtime().spawn(async move {
        // A panic must reach the awaiting caller as an exception, not leave it waiting forever.
        let scoped = std::panic::AssertUnwindSafe(pyo3_async_runtimes::tokio::scope(locals, fut))
            .catch_unwind()
            .map(|outcome| {
                outcome.unwrap_or_else(|panic| {
                    let what = panic
                        .downcast_ref::<&str>()
                        .map(|s| (*s).to_string())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| "unknown panic".into());
                    Err(pyo3::exceptions::PyRuntimeError::new_err(format!(
                        "habackup engine panicked: {what}"
                    )))
                })
            });
        let result = tokio::select! {
            result = scoped => result,
            // Done before we finished: cancelled from Python. Dropping `fut` stops the work.
            _ = cancel_rx => {
                // Python references may be released without the GIL (pyo3 defers the decref).
                drop((target, loop_ref, pending));
                return;
            }
        };
        // On the blocking pool: waiting for the GIL must not hold up a runtime worker.
        // Detached: the JoinHandle is not needed, the count tracks completion.
        drop(tokio::task::spawn_blocking(move || {
            Python::attach(move |py| {
                let delivered = (|| -> PyResult<()> {
                    let (method, value) = match result.and_then(|v| v.into_py_any(py)) {
                        Ok(value) => ("set_result", value.into_bound(py)),
                        Err(err) => (
                            "set_exception",
                            err.into_value(py).into_any().into_bound(py),
                        ),
                    };
                    loop_ref.bind(py).call_method1(
                        "call_soon_threadsafe",
                        (completer(py)?, target.bind(py), method, value),
                    )?;
                    Ok(())
                })();
                if let Err(err) = delivered {
                    // The loop is closed: nobody is waiting for this result any more.
                    log::debug!(target: "habackup.bridge", "cannot deliver a result: {err}");
                }
                drop((target, loop_ref));
            });
            // Only now has this thread left Python for good.
            drop(pending);
        }));
    });
    Ok(py_future)
}

/// `future_into_py_with_locals` on the running loop of the calling thread.
pub fn future_into_py<F, T>(py: Python<'_>, fut: F) -> PyResult<Bound<'_, PyAny>>
where
    F: Future<Output = PyResult<T>> + Send + 'static,
    T: for<'py> IntoPyObject<'py> + Send + 'static,
{
    let locals = pyo3_async_runtimes::tokio::get_current_locals(py)?;
    future_into_py_with_locals(py, locals, fut)
}

/// Waits, without the GIL, until every result has been handed over and no task is left on the
/// runtime (at most `timeout` seconds). Registered with `atexit`, which runs before the
/// interpreter starts finalizing.
#[pyfunction]
pub fn wait_for_idle(py: Python<'_>, timeout: f64) -> bool {
    let handle = pyo3_async_runtimes::tokio::get_runtime().handle().clone();
    let limit = Duration::try_from_secs_f64(timeout).unwrap_or_default();
    py.detach(move || {
        let deadline = Instant::now() + limit;
        while PENDING.load(Ordering::SeqCst) > 0 || handle.metrics().num_alive_tasks() > 0 {
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        true
    })
}
