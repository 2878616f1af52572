//! `hublink._native`: the Python binding of the hublink core.
//!
//! Everything protocol-related happens in the `hublink` crate. This crate only
//! - converts values between Python objects and [`hublink::Value`] ([`convert`]),
//! - adapts async: core futures run on one tokio runtime, and their results reach the
//!   asyncio loop that asked for them through a [`bridge::Bridge`] (the Rust threads never
//!   take the GIL; the loop thread does all Python work),
//! - maps core errors to the `hublink` exception classes ([`errors`]),
//! - forwards the core's log records to Python's `logging` ([`logging`]).

use std::sync::LazyLock;

use pyo3::prelude::*;

mod bridge;
mod connection;
mod convert;
mod errors;
mod logging;
mod stream;

/// The runtime every core future and task runs on.
pub(crate) static RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    let workers = std::env::var("HUBLINK_WORKER_THREADS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(2);
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .thread_name("hublink-rt")
        .enable_all()
        .build()
        .expect("the hublink tokio runtime")
});

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    logging::install();
    m.add_class::<bridge::Bridge>()?;
    m.add_class::<bridge::Reply>()?;
    m.add_class::<connection::HubConnection>()?;
    m.add_class::<stream::StreamReader>()?;
    m.add_class::<convert::Extension>()?;
    m.add_function(wrap_pyfunction!(logging::sync_log_level, m)?)?;
    m.add_function(wrap_pyfunction!(convert::roundtrip, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
