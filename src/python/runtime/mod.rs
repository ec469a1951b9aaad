//! What every binding shares to run engine work for Python: the one tokio runtime, asyncio
//! futures for Rust futures (`awaitable`), Python coroutines awaited from Rust (`bridge`), the
//! cancellation token Python holds (`cancel`), blocking work off the Python thread (`blocking`),
//! progress and log records handed back to Python (`progress`, `logging`).

pub mod awaitable;
pub mod blocking;
pub mod bridge;
pub mod cancel;
pub mod logging;
pub mod progress;

use std::env;

fn env_threads(name: &str, default: usize) -> usize {
    env::var(name)
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|n| *n > 0)
        .unwrap_or(default)
}

/// The one tokio runtime, sized for small machines (a Raspberry Pi runs Home Assistant).
pub fn init() {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder
        .worker_threads(env_threads("HABACKUP_WORKER_THREADS", 2))
        .max_blocking_threads(env_threads("HABACKUP_BLOCKING_THREADS", 8))
        .thread_name("habackup")
        .enable_all();
    pyo3_async_runtimes::tokio::init(builder);
}
