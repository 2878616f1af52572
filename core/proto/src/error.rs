//! The one error type of the protocol layer.

use thiserror::Error;

/// Why bytes from a peer (or a value from a caller) could not be turned into protocol data.
///
/// Where the official TypeScript client has a message for the same case, the text is its text,
/// so users searching for an error find the same answers.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ProtocolError {
    /// A text buffer ended without the record separator of its last message.
    #[error("Message is incomplete.")]
    Incomplete,
    /// A MessagePack buffer ended before the body its length prefix announced.
    #[error("Incomplete message.")]
    IncompleteFrame,
    /// A MessagePack length prefix could not be read.
    #[error("Cannot read message size.")]
    BadLengthPrefix,
    /// A MessagePack length prefix above 2 GB.
    #[error("Messages bigger than 2GB are not supported.")]
    LengthPrefixTooLarge,
    /// A message larger than the configured maximum; nothing of the claimed size was allocated.
    #[error("The message is {size} bytes, more than the maximum of {max} bytes.")]
    MessageTooLarge {
        /// The size the peer claimed, or the bytes buffered so far without a message end.
        size: usize,
        /// The configured maximum message size.
        max: usize,
    },
    /// The message is not a valid hub message (wrong shape, wrong types, missing fields).
    #[error("{0}")]
    InvalidMessage(String),
    /// The handshake answer was not a valid handshake response.
    #[error("{0}")]
    InvalidHandshake(String),
    /// The negotiate answer could not be used.
    #[error("{0}")]
    InvalidNegotiate(String),
    /// A value could not be encoded for the wire (for example a NaN in JSON).
    #[error("Cannot encode the value: {0}")]
    Encode(String),
    /// A payload could not be converted to the type the caller asked for.
    #[error("Cannot convert the payload: {0}")]
    Payload(String),
}

impl ProtocolError {
    pub(crate) fn invalid(text: impl Into<String>) -> Self {
        ProtocolError::InvalidMessage(text.into())
    }
}
