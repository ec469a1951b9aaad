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
use tokio::sync::oneshot;

use crate::common::CancelToken;

type Outcome = PyResult<Py<PyAny>>;
/// `(object, method, args, kwargs)` of one call to start.
pub type CallSpec<'py, 'm> = (
    Bound<'py, PyAny>,
    &'m str,
    Bound<'py, PyTuple>,
    Option<Bound<'py, PyDict>>,
);
type Sender = Arc<Mutex<Option<oneshot::Sender<Outcome>>>>;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
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
    /// Shared by a batch, so a thousand calls hold one reference to the loop.
    event_loop: Option<Arc<Py<PyAny>>>,
    finished: bool,
}

fn send(sender: &Sender, outcome: Outcome) {
    if let Some(tx) = lock(sender).take() {
        let _ = tx.send(outcome);
    }
}

impl PyCall {
    /// Schedules `obj.<method>(*args, **kwargs)` for every item on the caller's loop, in the
    /// caller's context, each wrapped in a Task; a method that raises at once fails its call.
    /// They are started by one callback on the loop, so a stage
    /// of a thousand hooks costs one wake-up of the loop, not a thousand.
    pub fn start_batch<'py>(
        py: Python<'py>,
        locals: &TaskLocals,
        items: Vec<CallSpec<'py, '_>>,
    ) -> Vec<PyCall> {
        let event_loop = Arc::new(locals.event_loop(py).unbind());
        let mut calls = Vec::with_capacity(items.len());
        let mut pending = Vec::with_capacity(items.len());
        for (obj, method, args, kwargs) in items {
            let (tx, rx) = oneshot::channel();
            let sender: Sender = Arc::new(Mutex::new(Some(tx)));
            let slot = Arc::new(Mutex::new(TaskSlot::default()));
            match obj.getattr(method) {
                Ok(func) => pending.push(PendingCall {
                    func: func.unbind(),
                    args: args.unbind(),
                    kwargs: kwargs.map(Bound::unbind),
                    slot: slot.clone(),
                    sender,
                }),
                Err(err) => send(&sender, Err(err)),
            }
            calls.push(PyCall {
                rx,
                slot,
                event_loop: Some(Arc::clone(&event_loop)),
                finished: false,
            });
        }
        if let Err(err) = schedule(py, locals, &pending) {
            for call in &pending {
                send(&call.sender, Err(err.clone_ref(py)));
            }
        }
        calls
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
            // Only the batch's last reference takes the GIL to decref the loop.
            if let Some(event_loop) = Arc::into_inner(event_loop) {
                Python::attach(|_py| drop(event_loop));
            }
        }
    }
}

/// One call waiting for the loop to start it.
struct PendingCall {
    func: Py<PyAny>,
    args: Py<PyTuple>,
    kwargs: Option<Py<PyDict>>,
    slot: Arc<Mutex<TaskSlot>>,
    sender: Sender,
}

fn schedule(py: Python<'_>, locals: &TaskLocals, pending: &[PendingCall]) -> PyResult<()> {
    if pending.is_empty() {
        return Ok(());
    }
    let calls: Vec<PendingCall> = pending
        .iter()
        .map(|c| PendingCall {
            func: c.func.clone_ref(py),
            args: c.args.clone_ref(py),
            kwargs: c.kwargs.as_ref().map(|k| k.clone_ref(py)),
            slot: c.slot.clone(),
            sender: c.sender.clone(),
        })
        .collect();
    let starter = PyCFunction::new_closure(
        py,
        Some(c"habackup_start_calls"),
        None,
        move |call_args: &Bound<'_, PyTuple>, _: Option<&Bound<'_, PyDict>>| -> PyResult<()> {
            let py = call_args.py();
            for call in &calls {
                if lock(&call.slot).cancel_requested {
                    send(
                        &call.sender,
                        Err(CancelledError::new_err("cancelled before it started")),
                    );
                    continue;
                }
                let started = start_task(
                    py,
                    &call.func,
                    &call.args,
                    call.kwargs.as_ref(),
                    &call.slot,
                    &call.sender,
                );
                if let Err(err) = started {
                    send(&call.sender, Err(err));
                }
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

/// `result()` returns the value, or raises the stored exception (its type, message, traceback and
/// chained causes intact) or `CancelledError`.
fn task_outcome(task: &Bound<'_, PyAny>) -> Outcome {
    task.call_method0("result").map(Bound::unbind)
}

/// How long a cancelled coroutine may take to unwind before the operation goes on without it: one
/// that swallows `CancelledError` must not hang a cancelled backup forever.
const CANCEL_GRACE: Duration = Duration::from_secs(10);

/// Why an awaited call did not return a value.
pub enum CallError {
    /// The coroutine raised (or could not be started).
    Raised(PyErr),
    /// It ran past the per-call limit and was cancelled.
    TimedOut(Duration),
    /// The operation was cancelled; so was the Task, and it has finished.
    Cancelled,
}

/// Awaits a call under the operation's token and an optional time limit. On cancellation the
/// Task is cancelled and awaited to its end, so nothing of the call outlives the operation.
pub async fn run(
    mut call: PyCall,
    cancel: &CancelToken,
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
        () = cancel.cancelled() => {
            call.cancel();
            let _ = tokio::time::timeout(CANCEL_GRACE, &mut call).await;
            Err(CallError::Cancelled)
        }
        () = deadline => {
            call.cancel();
            // Let the coroutine unwind (close its files) before the caller cleans up after it.
            let _ = tokio::time::timeout(CANCEL_GRACE, &mut call).await;
            Err(CallError::TimedOut(timeout.unwrap_or_default()))
        }
    }
}
