//! The sans-IO protocol layer: bytes and `now` in, bytes, events and deadlines out.
//!
//! Nothing here does IO, awaits, or reads a clock, and nothing here imports from the layers
//! above it, so every rule of the SignalR protocol can be tested with plain function calls.

pub mod error;
pub mod handshake;
pub mod negotiate;
pub mod transports;

pub use error::ProtocolError;
