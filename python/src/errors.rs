//! Core errors as the `hublink` exception classes (defined in `hublink/_errors.py`).

use hublink::Error;
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

/// The Python exception for a core error: `HubError` with the server's text,
/// `NegotiationError` with `.status`, and so on.
pub(crate) fn to_py_err(py: Python<'_>, error: Error) -> PyErr {
    let (name, message, status) = match error {
        Error::Protocol(e) => ("ProtocolError", e.to_string(), None),
        Error::Negotiation { status, message } => ("NegotiationError", message, status),
        Error::Transport(m) => ("TransportError", m, None),
        Error::Handshake(m) => ("HandshakeError", m, None),
        Error::Hub(m) => ("HubError", m, None),
        Error::ConnectionClosed(m) => ("ConnectionClosedError", m, None),
        Error::InvalidState(m) => ("InvalidStateError", m, None),
        Error::InvalidArgument(m) => ("InvalidArgumentError", m, None),
        #[allow(unreachable_patterns)]
        other => ("HubLinkError", other.to_string(), None),
    };
    match class(py, name) {
        Ok(ty) if name == "NegotiationError" => PyErr::from_type(ty, (message, status)),
        Ok(ty) => PyErr::from_type(ty, (message,)),
        Err(e) => e,
    }
}
