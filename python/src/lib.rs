//! `hublink._native`: the Python binding of the hublink core.
//!
//! Everything protocol-related happens in the `hublink` crate, behind its binding surface
//! (`hublink::HubConnection` with dynamic values, handler objects and events). This crate only
//! - converts values between Python objects and [`hublink::Value`] ([`convert`]),
//! - adapts async: core operations run on the core's shared runtime, and their results reach
//!   the asyncio loop that asked for them through a [`bridge::Bridge`] (the Rust threads never
//!   take the GIL; the loop thread does all Python work),
//! - maps core error kinds to the `hublink` exception classes ([`errors`]),
//! - forwards the core's log records to Python's `logging` ([`logging`]).

use pyo3::prelude::*;

mod bridge;
mod connection;
mod convert;
mod errors;
mod logging;
mod stream;

/// Stops the shared runtime (`atexit`): connections still open are cut.
#[pyfunction]
fn shutdown(py: Python<'_>) {
    py.detach(|| hublink::SharedRuntime::shutdown(std::time::Duration::from_secs(1)));
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    logging::install();
    if let Some(workers) = std::env::var("HUBLINK_WORKER_THREADS")
        .ok()
        .and_then(|n| n.parse().ok())
    {
        // Refused only when the runtime already runs (a second import): nothing to do then.
        let _ = hublink::SharedRuntime::set_worker_threads(workers);
    }
    m.add_class::<bridge::Bridge>()?;
    m.add_class::<bridge::Reply>()?;
    m.add_class::<connection::HubConnection>()?;
    m.add_class::<stream::StreamReader>()?;
    m.add_class::<convert::Extension>()?;
    m.add_function(wrap_pyfunction!(logging::sync_log_level, m)?)?;
    m.add_function(wrap_pyfunction!(convert::roundtrip, m)?)?;
    m.add_function(wrap_pyfunction!(shutdown, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
