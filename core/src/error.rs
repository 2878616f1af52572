//! The one error type of the client.

use std::fmt;
use std::sync::Arc;

use crate::protocol::ProtocolError;

/// What kind of failure an [`Error`] is. Bindings map kinds to their own exception types, and
/// Rust callers match on it instead of on texts.
///
/// New kinds may be added, so a `match` needs a catch-all arm.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// Negotiation failed: a refused status (see [`Error::status`]), an `error` answer, too
    /// many redirects, an answer hublink cannot use, or a failing access-token factory.
    Negotiation,
    /// A transport failed to start, or failed while running.
    Transport,
    /// The server refused the hub handshake, or answered it with something unusable.
    Handshake,
    /// Something took longer than allowed: the handshake, an HTTP request, or the server's
    /// silence beyond the server timeout.
    Timeout,
    /// The hub method failed on the server; the text is the server's.
    Hub,
    /// The connection closed before the call completed, or the server closed it with an
    /// error.
    ConnectionClosed,
    /// The call is not possible in the connection's current state (not connected, already
    /// started).
    InvalidState,
    /// An option or argument cannot be used (a bad URL, an unknown transport, a value the
    /// protocol cannot carry, a result of the wrong type).
    InvalidArgument,
    /// The server sent bytes that break the SignalR protocol.
    Protocol,
    /// The operation was cancelled: `stop()` during `start()`, or a cancelled stream.
    Cancelled,
}

impl ErrorKind {
    /// The kind's name, as bindings name their exception types (`"Negotiation"`, …).
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::Negotiation => "Negotiation",
            ErrorKind::Transport => "Transport",
            ErrorKind::Handshake => "Handshake",
            ErrorKind::Timeout => "Timeout",
            ErrorKind::Hub => "Hub",
            ErrorKind::ConnectionClosed => "ConnectionClosed",
            ErrorKind::InvalidState => "InvalidState",
            ErrorKind::InvalidArgument => "InvalidArgument",
            ErrorKind::Protocol => "Protocol",
            ErrorKind::Cancelled => "Cancelled",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The underlying cause of an error, shared so that errors stay cheap to clone (one error
/// fails every pending call of a connection).
pub type Cause = Arc<dyn std::error::Error + Send + Sync + 'static>;

/// What went wrong, in words a user can act on: its [`kind`](Error::kind), the HTTP
/// [`status`](Error::status) when an HTTP answer caused it, and the underlying cause as
/// [`source`](std::error::Error::source) (an I/O, TLS, HTTP or protocol error). Where the
/// official clients have a message for the same case, the text is theirs.
///
/// ```
/// use hublink::{ErrorKind, HubConnectionBuilder};
///
/// let error = HubConnectionBuilder::new().with_url("ftp://example.com/hub").build().unwrap_err();
/// assert_eq!(error.kind(), ErrorKind::InvalidArgument);
/// assert_eq!(error.to_string(), "The URL 'ftp://example.com/hub' must use http or https.");
/// ```
#[derive(Clone)]
pub struct Error {
    inner: Box<Inner>,
}

#[derive(Clone)]
struct Inner {
    kind: ErrorKind,
    message: String,
    status: Option<u16>,
    source: Option<Cause>,
}

impl Error {
    /// An error of `kind` with `message` (for bindings and retry policies that make their
    /// own errors).
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            inner: Box::new(Inner {
                kind,
                message: message.into(),
                status: None,
                source: None,
            }),
        }
    }

    /// The same error with the HTTP status that caused it.
    pub fn with_status(mut self, status: u16) -> Self {
        self.inner.status = Some(status);
        self
    }

    /// The same error with its underlying cause.
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.inner.source = Some(Arc::new(source));
        self
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        self.inner.kind
    }

    /// The HTTP status of the answer that caused the error (a refused negotiate, a 401, a
    /// Long Polling 404), if one did.
    pub fn status(&self) -> Option<u16> {
        self.inner.status
    }

    /// Whether something took longer than allowed (the handshake, an HTTP request, the
    /// server timeout).
    pub fn is_timeout(&self) -> bool {
        self.inner.kind == ErrorKind::Timeout
    }

    /// The text of the error, without its cause.
    pub fn message(&self) -> &str {
        &self.inner.message
    }

    /// The protocol error behind an error of kind [`ErrorKind::Protocol`].
    pub fn protocol_error(&self) -> Option<&ProtocolError> {
        self.inner.source.as_deref()?.downcast_ref()
    }

    pub(crate) fn negotiation(status: Option<u16>, message: impl Into<String>) -> Self {
        let error = Error::new(ErrorKind::Negotiation, message);
        match status {
            Some(status) => error.with_status(status),
            None => error,
        }
    }

    pub(crate) fn transport(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Transport, message)
    }

    pub(crate) fn handshake(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Handshake, message)
    }

    pub(crate) fn timeout(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Timeout, message)
    }

    pub(crate) fn hub(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Hub, message)
    }

    pub(crate) fn connection_closed(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::ConnectionClosed, message)
    }

    pub(crate) fn invalid_state(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::InvalidState, message)
    }

    pub(crate) fn invalid_argument(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::InvalidArgument, message)
    }

    pub(crate) fn cancelled(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Cancelled, message)
    }
}

impl From<ProtocolError> for Error {
    fn from(error: ProtocolError) -> Self {
        Error::new(ErrorKind::Protocol, error.to_string()).with_source(error)
    }
}

/// Errors are equal when their kind, text and status are: causes are not compared.
impl PartialEq for Error {
    fn eq(&self, other: &Self) -> bool {
        self.inner.kind == other.inner.kind
            && self.inner.message == other.inner.message
            && self.inner.status == other.inner.status
    }
}

impl Eq for Error {}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.inner.message)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut debug = f.debug_struct("Error");
        debug
            .field("kind", &self.inner.kind)
            .field("message", &self.inner.message);
        if let Some(status) = self.inner.status {
            debug.field("status", &status);
        }
        if let Some(source) = &self.inner.source {
            debug.field("source", source);
        }
        debug.finish()
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.inner
            .source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// The result type of the client.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_statuses_and_causes_survive_a_clone() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let error = Error::negotiation(Some(401), "Unauthorized").with_source(io);
        let copy = error.clone();
        assert_eq!(copy.kind(), ErrorKind::Negotiation);
        assert_eq!(copy.status(), Some(401));
        assert!(!copy.is_timeout());
        assert_eq!(copy.to_string(), "Unauthorized");
        let source = std::error::Error::source(&copy).expect("a cause");
        assert_eq!(source.to_string(), "refused");
        assert!(source.downcast_ref::<std::io::Error>().is_some());
    }

    #[test]
    fn protocol_errors_keep_their_type() {
        let error = Error::from(ProtocolError::Incomplete);
        assert_eq!(error.kind(), ErrorKind::Protocol);
        assert_eq!(error.to_string(), "Message is incomplete.");
        assert_eq!(error.protocol_error(), Some(&ProtocolError::Incomplete));
        assert!(Error::timeout("slow").is_timeout());
        assert_eq!(Error::hub("x").protocol_error(), None);
    }

    #[test]
    fn errors_are_send_sync_and_small() {
        fn assert_send_sync<T: Send + Sync + 'static>() {}
        assert_send_sync::<Error>();
        assert_eq!(std::mem::size_of::<Error>(), std::mem::size_of::<usize>());
    }
}
