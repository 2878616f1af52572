//! The core's log records (tracing events, through tracing's `log` feature) go to Python's
//! `logging`, on loggers named after the Rust module: `hublink.hub.connection`, …
//!
//! Only records of the `hublink` crates are forwarded, and only at levels the `hublink`
//! logger enables: `sync_log_level()` reads that level (the package calls it on import and
//! before every `start()`), so a disabled record costs an atomic load, never the GIL.

use log::{Level, LevelFilter, Log, Metadata, Record};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;

struct PythonLogger;

static LOGGER: PythonLogger = PythonLogger;
static GET_LOGGER: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

fn ours(target: &str) -> bool {
    target == "hublink" || target.starts_with("hublink::") || target.starts_with("hublink_")
}

impl Log for PythonLogger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        ours(metadata.target()) && metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let level = match record.level() {
            Level::Error => 40,
            Level::Warn => 30,
            Level::Info => 20,
            Level::Debug => 10,
            Level::Trace => 5,
        };
        let name = record.target().replace("::", ".");
        let message = record.args().to_string();
        // Never attaches while the interpreter shuts down (try_attach refuses then).
        let _ = Python::try_attach(|py| {
            let result = GET_LOGGER
                .get_or_try_init(py, || {
                    Ok::<_, PyErr>(py.import("logging")?.getattr("getLogger")?.unbind())
                })
                .and_then(|get| get.bind(py).call1((name,)))
                .and_then(|logger| logger.call_method1("log", (level, message)));
            if let Err(e) = result {
                e.write_unraisable(py, None);
            }
        });
    }

    fn flush(&self) {}
}

/// Installs the forwarding logger (once; a no-op if another `log` logger is installed).
pub(crate) fn install() {
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(LevelFilter::Warn);
    }
}

/// Reads the effective level of the `hublink` Python logger and forwards records from
/// that level up.
#[pyfunction]
pub fn sync_log_level(py: Python<'_>) -> PyResult<()> {
    let level: i32 = py
        .import("logging")?
        .call_method1("getLogger", ("hublink",))?
        .call_method0("getEffectiveLevel")?
        .extract()?;
    log::set_max_level(match level {
        l if l <= 5 => LevelFilter::Trace,
        l if l <= 10 => LevelFilter::Debug,
        l if l <= 20 => LevelFilter::Info,
        l if l <= 30 => LevelFilter::Warn,
        l if l <= 40 => LevelFilter::Error,
        _ => LevelFilter::Off,
    });
    Ok(())
}
