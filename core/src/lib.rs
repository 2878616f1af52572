#![warn(missing_docs)]
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

mod connect;
pub mod error;
pub mod http;
mod hub;
pub mod protocol;
mod runtime;
mod transport;

pub use connect::AccessTokenFactory;
pub use error::{Error, Result};
pub use hub::arguments::{
    Argument, Arguments, FromArguments, IntoArgument, IntoArguments, UploadStream,
};
pub use hub::builder::{HubConnectionBuilder, DEFAULT_HANDSHAKE_TIMEOUT};
pub use hub::connection::HubConnection;
pub use hub::handlers::{HandlerId, HandlerOutcome, HandlerOutput};
pub use hub::lifecycle::HubConnectionState;
pub use hub::retry::{DefaultRetryPolicy, RetryContext, RetryPolicy};
pub use hub::stream::HubStream;
pub use protocol::transports::{TransferFormat, TransportKind};
pub use protocol::{HubProtocol, Payload, Timestamp, Value};
