//! The one error type of the client.

use thiserror::Error;

use crate::protocol::ProtocolError;

/// What went wrong, in words a user can act on. Where the official clients have a message for
/// the same case, the text is theirs.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Error {
    /// The server sent bytes that break the protocol.
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    /// Negotiation failed: a refused status, an `error` answer, too many redirects, or an
    /// answer hublink cannot use. `status` is the HTTP status when there was one.
    #[error("{message}")]
    Negotiation {
        /// The HTTP status of the negotiate answer, if the failure came from one.
        status: Option<u16>,
        /// What happened, in the official client's words where it has them.
        message: String,
    },
    /// A transport failed to start, or failed while running.
    #[error("{0}")]
    Transport(String),
    /// The server refused the handshake ("Server returned handshake error: …") or never
    /// answered it.
    #[error("{0}")]
    Handshake(String),
    /// The hub method failed on the server; the text is the server's.
    #[error("{0}")]
    Hub(String),
    /// The connection closed; pending calls fail with this and the close reason.
    #[error("{0}")]
    ConnectionClosed(String),
    /// A call is not possible in the connection's current state.
    #[error("{0}")]
    InvalidState(String),
    /// The caller's configuration or arguments cannot be used.
    #[error("{0}")]
    InvalidArgument(String),
}

/// The result type of the client.
pub type Result<T, E = Error> = std::result::Result<T, E>;
