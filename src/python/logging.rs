//! Forwards the engine's `log` records to Python's `logging`, under the `habackup` logger tree, so
//! Home Assistant's log configuration applies.

use pyo3::prelude::*;

struct PythonLogger;

static LOGGER: PythonLogger = PythonLogger;

impl log::Log for PythonLogger {
    fn enabled(&self, _metadata: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &log::Record<'_>) {
        let level = match record.level() {
            log::Level::Error => 40,
            log::Level::Warn => 30,
            log::Level::Info => 20,
            log::Level::Debug | log::Level::Trace => 10,
        };
        let name = if record.target().starts_with("habackup") {
            record.target().to_string()
        } else {
            format!("habackup.{}", record.target())
        };
        let message = record.args().to_string();
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
