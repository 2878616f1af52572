//! The hub layer: the builder, the connection handle, handlers, streams, and the driver task.

pub mod arguments;
pub mod builder;
pub(crate) mod call_trace;
pub mod connection;
pub(crate) mod driver;
pub mod events;
pub mod handlers;
pub mod lifecycle;
pub mod retry;
pub mod stream;
