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
