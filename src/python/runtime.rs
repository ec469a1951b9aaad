//! The one tokio runtime, sized for small machines (a Raspberry Pi runs Home Assistant).

use std::env;

fn env_threads(name: &str, default: usize) -> usize {
    env::var(name)
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|n| *n > 0)
        .unwrap_or(default)
}

pub fn init() {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder
        .worker_threads(env_threads("HABACKUP_WORKER_THREADS", 2))
        .max_blocking_threads(env_threads("HABACKUP_BLOCKING_THREADS", 8))
        .thread_name("habackup")
        .enable_all();
    pyo3_async_runtimes::tokio::init(builder);
}

/// Waits, without the GIL, until no task is left on the runtime (at most `timeout` seconds).
///
/// Registered with `atexit`: a task that hands a result to asyncio releases the GIL inside that
/// call (waking the loop writes to a socket). If the interpreter began finalizing meanwhile, the
/// thread could never take the GIL back and the process would die after the work succeeded.
#[pyo3::pyfunction]
pub fn wait_for_idle(py: pyo3::Python<'_>, timeout: f64) -> bool {
    let handle = pyo3_async_runtimes::tokio::get_runtime().handle().clone();
    let limit = std::time::Duration::try_from_secs_f64(timeout).unwrap_or_default();
    py.detach(move || {
        let deadline = std::time::Instant::now() + limit;
        while handle.metrics().num_alive_tasks() > 0 {
            if std::time::Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        true
    })
}
