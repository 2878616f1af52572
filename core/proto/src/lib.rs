#![warn(missing_docs)]
//! The sans-IO protocol layer: bytes and `now` in, bytes, events and deadlines out.
//!
//! Nothing here does IO, awaits, or reads a clock, and nothing here imports from the layers
//! above it, so every rule of the SignalR protocol can be tested with plain function calls.

pub mod error;
pub mod handshake;
pub mod hub_protocol;
pub mod invocations;
pub mod json;
pub mod keep_alive;
pub mod message;
#[cfg(feature = "messagepack")]
pub mod msgpack;
#[cfg(not(feature = "messagepack"))]
#[path = "msgpack_off.rs"]
pub mod msgpack;
pub mod negotiate;
pub mod stateful_reconnect;
pub mod timestamp;
pub mod transports;
pub mod value;

pub use error::ProtocolError;
pub use hub_protocol::{HubProtocol, MessageDecoder, DEFAULT_MAX_MESSAGE_SIZE};
pub use message::{
    CancelInvocation, Close, Completion, CompletionOutcome, Headers, HubMessage, Invocation,
    Payload, StreamInvocation, StreamItem,
};
pub use timestamp::Timestamp;
pub use value::Value;
