//! `CancelToken`: the engine's cancellation token, held by Python. The Python wrappers cancel it
//! when their await is cancelled and then wait for the work to wind down (`habackup._cancel`).

use pyo3::prelude::*;

use crate::common;

#[pyclass(module = "habackup._core", frozen)]
#[derive(Clone, Default)]
pub struct CancelToken(common::CancelToken);

#[pymethods]
impl CancelToken {
    #[new]
    fn new() -> Self {
        Self::default()
    }

    fn cancel(&self) {
        self.0.cancel();
    }

    #[getter]
    fn cancelled(&self) -> bool {
        self.0.is_cancelled()
    }
}

/// The engine token behind an optional Python one (a fresh one when the caller gave none).
pub fn token(given: Option<PyRef<'_, CancelToken>>) -> common::CancelToken {
    given.map(|t| t.0.clone()).unwrap_or_default()
}
