//! Forwards the engine's `log` records to Python's `logging`, under the `habackup` logger tree, so
//! Home Assistant's log configuration applies.

use pyo3::prelude::*;

struct PythonLogger;

static LOGGER: PythonLogger = PythonLogger;

fn is_ours(target: &str) -> bool {
    target.starts_with("habackup")
}

impl log::Log for PythonLogger {
    /// Libraries below us (hyper, reqwest, rustls) log every connection at debug level; each
    /// record costs a GIL round trip, and their details are not the user's concern. Their
    /// warnings and errors still come through.
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        is_ours(metadata.target()) || metadata.level() <= log::Level::Warn
    }

    fn log(&self, record: &log::Record<'_>) {
        let level = match record.level() {
            log::Level::Error => 40,
            log::Level::Warn => 30,
            log::Level::Info => 20,
            log::Level::Debug | log::Level::Trace => 10,
        };
        if !self.enabled(record.metadata()) {
            return;
        }
        let name = if is_ours(record.target()) {
            record.target().replace("::", ".")
        } else {
            format!("habackup.deps.{}", record.target().replace("::", "."))
        };
        // A library's message may quote a URL with credentials or a signed query string, ours a
        // backup's name or a file's bytes: one printable line reaches the log.
        let message = crate::common::text::escape(&crate::common::redact::redact_urls(
            &record.args().to_string(),
        ));
        Python::attach(|py| {
            let logged = py
                .import("logging")
                .and_then(|logging| logging.call_method1("getLogger", (name,)))
                .and_then(|logger| logger.call_method1("log", (level, message)));
            // A broken logging setup must not break a backup.
            if let Err(err) = logged {
                err.print(py);
            }
        });
    }

    fn flush(&self) {}
}

pub fn init() {
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(log::LevelFilter::Debug);
    }
}
