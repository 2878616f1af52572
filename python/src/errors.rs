//! Core errors as the `hublink` exception classes (defined in `hublink/_errors.py`), chosen
//! by the error's kind.

use hublink::{Error, ErrorKind};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyType;

static ERRORS: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

fn class<'py>(py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyType>> {
    let module = ERRORS.get_or_try_init(py, || {
        Ok::<_, PyErr>(py.import("hublink._errors")?.unbind().into_any())
    })?;
    Ok(module.bind(py).getattr(name)?.cast_into::<PyType>()?)
}

/// The Python class of each error kind.
fn class_name(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::Negotiation => "NegotiationError",
        ErrorKind::Transport => "TransportError",
        ErrorKind::Handshake => "HandshakeError",
        ErrorKind::Timeout => "TimeoutError",
        ErrorKind::Hub => "HubError",
        ErrorKind::ConnectionClosed => "ConnectionClosedError",
        ErrorKind::InvalidState => "InvalidStateError",
        ErrorKind::InvalidArgument => "InvalidArgumentError",
        ErrorKind::Protocol => "ProtocolError",
        ErrorKind::Cancelled => "AbortError",
        _ => "HubLinkError",
    }
}

/// The Python exception for a core error: its kind's class, with the core's text, the
/// HTTP status (`.status`) when one caused it, and the kind's name (`.kind`).
pub(crate) fn to_py_err(py: Python<'_>, error: Error) -> PyErr {
    match class(py, class_name(error.kind())) {
        Ok(ty) => PyErr::from_type(ty, (error.to_string(), error.status(), error.kind().name())),
        Err(e) => e,
    }
}
