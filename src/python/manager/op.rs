//! One running operation: the caller's loop and context, its cancellation token, its events,
//! and the fan-out that calls many hooks or agents at once.

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;
use pyo3::exceptions::asyncio::CancelledError;
use pyo3::prelude::*;
use pyo3::types::{PyCFunction, PyDict, PyTuple};
use pyo3_async_runtimes::TaskLocals;

use super::events::{Event, Events};
use super::state::{Inner, Targets};
use crate::common::{CancelToken, Progress};
use crate::python::errors::is_fatal;
use crate::python::runtime::bridge::{run, CallError, CallSpec, PyCall};
use crate::python::runtime::progress::relay;

/// Why a called hook or agent gave no value.
pub enum Failure {
    /// It ran past the manager's `agent_timeout` and was cancelled.
    TimedOut(Duration),
    /// It raised (anything but a fatal exception, which the fan-out raises itself).
    Raised(PyErr),
}

/// Every target's answer, in the order given; targets cancelled with the operation are absent.
pub type Answers = Vec<(String, Result<Py<PyAny>, Failure>)>;

/// `(args, kwargs)` of a call.
pub type CallArgs<'py> = (Bound<'py, PyTuple>, Option<Bound<'py, PyDict>>);

pub struct Op {
    pub inner: Arc<Inner>,
    pub locals: TaskLocals,
    pub cancel: CancelToken,
    pub events: Events,
}

/// `12.5`, not `12.500`: how a time limit reads in a message.
pub fn seconds(limit: Duration) -> String {
    format!("{:.3}", limit.as_secs_f64())
        .trim_end_matches('0')
        .trim_end_matches('.')
        .to_string()
}

pub fn cancelled() -> PyErr {
    CancelledError::new_err("backup operation cancelled")
}

impl Op {
    pub fn emit(&self, event: &Event<'_>) {
        self.events.emit(event);
    }

    /// `Err(CancelledError)` once the operation was cancelled.
    pub fn check_cancelled(&self) -> PyResult<()> {
        if self.cancel.is_cancelled() {
            Err(cancelled())
        } else {
            Ok(())
        }
    }

    /// Calls `method` on every target concurrently, started by one callback on the loop, each
    /// under `cancel` and `timeout`, and waits for all. A fatal exception (KeyboardInterrupt,
    /// SystemExit) is raised once every call has ended.
    pub async fn fan_out<A>(
        &self,
        targets: &Targets,
        method: &str,
        cancel: &CancelToken,
        timeout: Option<Duration>,
        args: A,
    ) -> PyResult<Answers>
    where
        A: for<'py> Fn(Python<'py>, &str, &Bound<'py, PyAny>) -> PyResult<CallArgs<'py>>,
    {
        let calls: Vec<(String, PyCall)> = Python::attach(|py| {
            let mut specs: Vec<CallSpec<'_, '_>> = Vec::with_capacity(targets.len());
            let mut prepared = Vec::with_capacity(targets.len());
            for (id, target) in targets {
                let target = target.bind(py);
                match args(py, id, target) {
                    Ok((a, k)) => {
                        specs.push((target.clone(), method, a, k));
                        prepared.push(None);
                    }
                    Err(err) => prepared.push(Some(err)),
                }
            }
            let mut started = PyCall::start_batch(py, &self.locals, specs).into_iter();
            targets
                .iter()
                .zip(prepared)
                .map(|((id, _), failed)| {
                    let call = match failed {
                        Some(err) => PyCall::failed(err),
                        None => started.next().unwrap_or_else(|| {
                            PyCall::failed(pyo3::exceptions::PyRuntimeError::new_err(
                                "a call could not be scheduled",
                            ))
                        }),
                    };
                    (id.clone(), call)
                })
                .collect()
        });
        let results = join_all(
            calls
                .into_iter()
                .map(|(id, call)| async move { (id, run(call, cancel, timeout).await) }),
        )
        .await;
        let mut answers = Vec::with_capacity(results.len());
        let mut fatal = None;
        for (id, result) in results {
            match result {
                Ok(value) => answers.push((id, Ok(value))),
                Err(CallError::Cancelled) => {}
                Err(CallError::TimedOut(limit)) => {
                    answers.push((id, Err(Failure::TimedOut(limit))))
                }
                Err(CallError::Raised(err)) => {
                    if Python::attach(|py| is_fatal(py, &err)) {
                        fatal.get_or_insert(err);
                    } else {
                        answers.push((id, Err(Failure::Raised(err))));
                    }
                }
            }
        }
        match fatal {
            Some(fatal) => Err(fatal),
            None => Ok(answers),
        }
    }

    /// The agent calls of this operation: the operation's token, the manager's time limit.
    pub async fn call_agents<A>(&self, agents: &Targets, method: &str, args: A) -> PyResult<Answers>
    where
        A: for<'py> Fn(Python<'py>, &str, &Bound<'py, PyAny>) -> PyResult<CallArgs<'py>>,
    {
        self.fan_out(agents, method, &self.cancel, self.inner.agent_timeout, args)
            .await
    }

    /// Archive progress as events, relayed at normal priority (see `runtime::progress`).
    pub fn archive_progress(
        &self,
        manager_state: &'static str,
    ) -> (Progress, tokio::task::JoinHandle<()>) {
        let events = Python::attach(|py| self.events.clone_ref(py));
        relay(move |py, done, total| {
            events.deliver(
                py,
                &Event::ArchiveProgress {
                    manager_state,
                    done,
                    total,
                },
            );
        })
    }

    /// `on_progress(done, total)` for an agent's upload: called on the loop thread, it turns the
    /// figures into `upload_to_agents` events.
    pub fn upload_progress<'py>(
        &self,
        py: Python<'py>,
        manager_state: &'static str,
        agent_id: &str,
    ) -> PyResult<Bound<'py, PyCFunction>> {
        let events = self.events.clone_ref(py);
        let agent_id = agent_id.to_string();
        PyCFunction::new_closure(
            py,
            Some(c"habackup_upload_progress"),
            None,
            move |args: &Bound<'_, PyTuple>, _: Option<&Bound<'_, PyDict>>| -> PyResult<()> {
                let (uploaded, total): (u64, u64) = args.extract()?;
                events.deliver(
                    args.py(),
                    &Event::UploadProgress {
                        manager_state,
                        agent_id: &agent_id,
                        uploaded,
                        total,
                    },
                );
                Ok(())
            },
        )
    }
}

/// No positional arguments, these keyword arguments.
pub fn kwargs<'py>(
    py: Python<'py>,
    items: &[(&str, &Bound<'py, PyAny>)],
) -> PyResult<CallArgs<'py>> {
    let kw = PyDict::new(py);
    for (key, value) in items {
        kw.set_item(key, value)?;
    }
    Ok((PyTuple::empty(py), Some(kw)))
}
