//! Awaiting Python coroutines from tokio.
//!
//! pyo3-async-runtimes' `into_future` leaves the coroutine running when the Rust future is dropped.
//! Here every call runs as an asyncio Task created on the caller's loop, in the caller's context
//! (the `TaskLocals` captured at the entry point), its outcome is handed to Rust through a oneshot,
//! and dropping the Rust side cancels the Task. The GIL is only taken to start, finish or cancel.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use pyo3::exceptions::asyncio::CancelledError;
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::{PyCFunction, PyDict, PyTuple};
use pyo3_async_runtimes::TaskLocals;
use tokio::sync::{oneshot, watch};

type Outcome = PyResult<Py<PyAny>>;
type Sender = Arc<Mutex<Option<oneshot::Sender<Outcome>>>>;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Cancellation of one manager operation: set from Python, awaited by the Rust orchestration so
/// it can cancel what runs, run what must still run (post hooks) and clean up before returning.
#[pyclass(module = "habackup._core", frozen)]
#[derive(Clone)]
pub struct AbortToken {
    tx: Arc<watch::Sender<bool>>,
}

impl AbortToken {
    pub fn is_aborted(&self) -> bool {
        *self.tx.borrow()
    }

    /// Completes once the operation is aborted (at once if it already is).
    pub async fn aborted(&self) {
        let mut rx = self.tx.subscribe();
        // The sender lives in `self`, so the channel cannot close while we wait.
        let _ = rx.wait_for(|aborted| *aborted).await;
    }
}

#[pymethods]
impl AbortToken {
    #[new]
    pub fn new() -> Self {
        AbortToken {
            tx: Arc::new(watch::channel(false).0),
        }
    }

    fn cancel(&self) {
        self.tx.send_replace(true);
    }

    #[getter]
    fn cancelled(&self) -> bool {
        self.is_aborted()
    }
}

impl Default for AbortToken {
    fn default() -> Self {
        Self::new()
    }
}

#[derive(Default)]
struct TaskSlot {
    task: Option<Py<PyAny>>,
    cancel_requested: bool,
}

/// One Python call awaited from Rust. Dropping it before it finished cancels its Task.
pub struct PyCall {
    rx: oneshot::Receiver<Outcome>,
    slot: Arc<Mutex<TaskSlot>>,
    event_loop: Option<Py<PyAny>>,
    finished: bool,
}

fn send(sender: &Sender, outcome: Outcome) {
    if let Some(tx) = lock(sender).take() {
        let _ = tx.send(outcome);
    }
}

impl PyCall {
    /// Schedules `obj.<method>(*args, **kwargs)` on the caller's loop, in the caller's context, and
    /// wraps the awaitable it returns in a Task. A method that raises at once fails the call.
    pub fn start(
        py: Python<'_>,
        locals: &TaskLocals,
        obj: &Bound<'_, PyAny>,
        method: &str,
        args: Bound<'_, PyTuple>,
        kwargs: Option<Bound<'_, PyDict>>,
    ) -> PyCall {
        let (tx, rx) = oneshot::channel();
        let sender: Sender = Arc::new(Mutex::new(Some(tx)));
        let slot = Arc::new(Mutex::new(TaskSlot::default()));
        let event_loop = locals.event_loop(py);
        let scheduled = obj.getattr(method).and_then(|func| {
            schedule(
                py,
                locals,
                func.unbind(),
                args.unbind(),
                kwargs.map(Bound::unbind),
                slot.clone(),
                sender.clone(),
            )
        });
        if let Err(err) = scheduled {
            send(&sender, Err(err));
        }
        PyCall {
            rx,
            slot,
            event_loop: Some(event_loop.unbind()),
            finished: false,
        }
    }

    /// A call that failed before it could start.
    pub fn failed(err: PyErr) -> PyCall {
        let (tx, rx) = oneshot::channel();
        let _ = tx.send(Err(err));
        PyCall {
            rx,
            slot: Arc::new(Mutex::new(TaskSlot::default())),
            event_loop: None,
            finished: false,
        }
    }

    /// Asks the Task to cancel (from any thread); the call then completes with `CancelledError`
    /// once the coroutine has handled it.
    pub fn cancel(&self) {
        let task = {
            let mut slot = lock(&self.slot);
            if slot.cancel_requested {
                return;
            }
            slot.cancel_requested = true;
            slot.task.take()
        };
        let (Some(task), Some(event_loop)) = (task, self.event_loop.as_ref()) else {
            return;
        };
        Python::attach(|py| {
            let scheduled = task.bind(py).getattr("cancel").and_then(|cancel| {
                event_loop
                    .bind(py)
                    .call_method1("call_soon_threadsafe", (cancel,))
            });
            if let Err(err) = scheduled {
                // Only a closed loop refuses; its tasks are gone with it.
                log::debug!(target: "habackup.bridge", "cannot cancel a task: {err}");
            }
        });
    }
}

impl Future for PyCall {
    type Output = Outcome;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Outcome> {
        match Pin::new(&mut self.rx).poll(cx) {
            Poll::Ready(received) => {
                self.finished = true;
                Poll::Ready(received.unwrap_or_else(|_| {
                    Err(PyRuntimeError::new_err(
                        "the event loop dropped a call before it finished",
                    ))
                }))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Drop for PyCall {
    fn drop(&mut self) {
        if !self.finished {
            self.cancel();
        }
        if let Some(event_loop) = self.event_loop.take() {
            // Decref with the GIL rather than leaving it to pyo3's pending pool.
            Python::attach(|_py| drop(event_loop));
        }
    }
}

fn schedule(
    py: Python<'_>,
    locals: &TaskLocals,
    func: Py<PyAny>,
    args: Py<PyTuple>,
    kwargs: Option<Py<PyDict>>,
    slot: Arc<Mutex<TaskSlot>>,
    sender: Sender,
) -> PyResult<()> {
    let starter = PyCFunction::new_closure(
        py,
        Some(c"habackup_start_call"),
        None,
        move |call_args: &Bound<'_, PyTuple>, _: Option<&Bound<'_, PyDict>>| -> PyResult<()> {
            let py = call_args.py();
            if lock(&slot).cancel_requested {
                send(
                    &sender,
                    Err(CancelledError::new_err("cancelled before it started")),
                );
                return Ok(());
            }
            let started = start_task(py, &func, &args, kwargs.as_ref(), &slot, &sender);
            if let Err(err) = started {
                send(&sender, Err(err));
            }
            Ok(())
        },
    )?;
    let kwargs = PyDict::new(py);
    kwargs.set_item("context", locals.context(py))?;
    locals
        .event_loop(py)
        .call_method("call_soon_threadsafe", (starter,), Some(&kwargs))?;
    Ok(())
}

/// Runs on the loop thread inside the caller's context, so the Task copies that context.
fn start_task(
    py: Python<'_>,
    func: &Py<PyAny>,
    args: &Py<PyTuple>,
    kwargs: Option<&Py<PyDict>>,
    slot: &Arc<Mutex<TaskSlot>>,
    sender: &Sender,
) -> PyResult<()> {
    let awaitable = func
        .bind(py)
        .call(args.bind(py), kwargs.map(|k| k.bind(py)))?;
    let task = py
        .import("asyncio")?
        .call_method1("ensure_future", (awaitable,))?;
    let done_sender = sender.clone();
    let on_done = PyCFunction::new_closure(
        py,
        Some(c"habackup_call_done"),
        None,
        move |done_args: &Bound<'_, PyTuple>, _: Option<&Bound<'_, PyDict>>| -> PyResult<()> {
            let outcome = done_args.get_item(0).and_then(|t| task_outcome(&t));
            send(&done_sender, outcome);
            Ok(())
        },
    )?;
    task.call_method1("add_done_callback", (on_done,))?;
    let cancel_now = {
        let mut slot = lock(slot);
        slot.task = Some(task.clone().unbind());
        slot.cancel_requested
    };
    if cancel_now {
        task.call_method0("cancel")?;
    }
    Ok(())
}

fn task_outcome(task: &Bound<'_, PyAny>) -> Outcome {
    if task.call_method0("cancelled")?.is_truthy()? {
        return Err(CancelledError::new_err("the task was cancelled"));
    }
    let exception = task.call_method0("exception")?;
    if exception.is_none() {
        Ok(task.call_method0("result")?.unbind())
    } else {
        // The exception object keeps its type, message, traceback and chained causes.
        Err(PyErr::from_value(exception))
    }
}

/// Why an awaited call did not return a value.
pub enum CallError {
    /// The coroutine raised (or could not be started).
    Raised(PyErr),
    /// It ran past the per-call limit and was cancelled.
    TimedOut(Duration),
    /// The operation was aborted; the Task was cancelled and has finished.
    Aborted,
}

/// Awaits a call under the operation's abort token and an optional time limit. On abort the
/// Task is cancelled and awaited to its end, so nothing of the call outlives the operation.
pub async fn run(
    mut call: PyCall,
    abort: &AbortToken,
    timeout: Option<Duration>,
) -> Result<Py<PyAny>, CallError> {
    let deadline = async {
        match timeout {
            Some(limit) => tokio::time::sleep(limit).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        outcome = &mut call => outcome.map_err(CallError::Raised),
        () = abort.aborted() => {
            call.cancel();
            let _ = (&mut call).await;
            Err(CallError::Aborted)
        }
        () = deadline => {
            call.cancel();
            Err(CallError::TimedOut(timeout.unwrap_or_default()))
        }
    }
}
