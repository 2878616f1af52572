#![warn(missing_docs)]
// In the browser the same `Arc`s hold JavaScript values (neither `Send` nor `Sync`) on the
// page's one thread: one code path for both targets instead of `Rc` copies.
#![cfg_attr(target_arch = "wasm32", allow(clippy::arc_with_non_send_sync))]
//! hublink: one SignalR client for Rust, Python, Kotlin, Swift and the browser.
//!
//! ```no_run
//! # async fn demo() -> hublink::Result<()> {
//! use hublink::HubConnectionBuilder;
//!
//! let connection = HubConnectionBuilder::new()
//!     .with_url("http://localhost:5000/chat")
//!     .build()?;
//! connection.on("ReceiveMessage", |(user, text): (String, String)| async move {
//!     println!("{user}: {text}");
//! });
//! connection.start().await?;
//! connection.invoke::<()>("SendMessage", ("me", "hello")).await?;
//! connection.stop().await?;
//! # Ok(()) }
//! ```

mod access_token;
mod connect;
pub mod error;
// The fuzz targets' entry points (fuzz/): built only by cargo-fuzz, which sets `--cfg fuzzing`.
#[cfg(fuzzing)]
#[doc(hidden)]
pub mod fuzzing;
mod http;
mod hub;
mod maybe_send;
mod options;
#[cfg(not(target_arch = "wasm32"))]
mod proxy;
mod reply;
mod runtime;
#[cfg(not(target_arch = "wasm32"))]
mod shared_runtime;
#[cfg(not(target_arch = "wasm32"))]
mod tls;
mod transport;

// The sans-IO protocol layer is its own crate; inside hublink it keeps its old path. Users who
// want it depend on `hublink-proto` themselves: only what the API below needs is re-exported.
use hublink_proto as protocol;

pub use error::{Cause, Error, ErrorKind, Result};
pub use hub::arguments::{
    Argument, Arguments, FromArguments, IntoArgument, IntoArguments, UploadSender, UploadStream,
};
pub use hub::builder::HubConnectionBuilder;
pub use hub::call_trace::{with_trace_context, TraceContext, CALL_SPAN_TARGET};
pub use hub::connection::HubConnection;
pub use hub::events::{ConnectionEvent, ConnectionEvents};
pub use hub::handlers::{Handler, HandlerId, HandlerOutcome, HandlerOutput};
pub use hub::lifecycle::HubConnectionState;
pub use hub::retry::{DefaultRetryPolicy, RetryContext, RetryPolicy};
pub use hub::stream::{HubStream, StreamCancel};
pub use maybe_send::{BoxFuture, MaybeSend, MaybeSync};
pub use options::{
    parse_transport, parse_transports, AccessTokenFactory, ConnectionOptions,
    DEFAULT_HANDSHAKE_TIMEOUT, DEFAULT_HTTP_TIMEOUT, DEFAULT_STREAM_BUFFER_CAPACITY,
};
pub use protocol::transports::{TransferFormat, TransportKind};
pub use protocol::{HubProtocol, Payload, ProtocolError, Timestamp, Value};
#[cfg(not(target_arch = "wasm32"))]
pub use proxy::Proxy;
#[cfg(not(target_arch = "wasm32"))]
pub use shared_runtime::{SharedRuntime, DEFAULT_WORKER_THREADS};
