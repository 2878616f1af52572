//! Transports: WebSockets, Server-Sent Events and Long Polling behind one contract.
//!
//! A started transport talks to the hub driver through a [`TransportLink`]: frames go out
//! through its sender (bounded, so a slow network slows the caller instead of growing
//! memory), events come back through its receiver (`link.rs`). Each outgoing frame may carry
//! a `written` signal that completes once the frame is on the wire (or failed), so nothing a
//! user sends is dropped without an error they can see.
//!
//! Dropping the link's sender stops the transport gracefully (WebSocket close 1000, Long
//! Polling DELETE); the transport then reports [`TransportEvent::Closed`] and ends.

use bytes::Bytes;
use tokio::sync::oneshot;
use url::Url;

use crate::error::Result;
use crate::http::HttpClient;
use crate::protocol::transports::{TransferFormat, TransportKind};

pub(crate) use link::{LinkReceiver, LinkSender, TransportGone};

/// How many frames may wait for a transport before senders wait too.
pub(crate) const OUTGOING_CAPACITY: usize = 64;

/// How many received messages may wait for the hub driver before the transport stops reading.
pub(crate) const INCOMING_CAPACITY: usize = 64;

#[cfg(not(target_arch = "wasm32"))]
pub(crate) type BoxFuture<'a, T> = futures_util::future::BoxFuture<'a, T>;
#[cfg(target_arch = "wasm32")]
pub(crate) type BoxFuture<'a, T> = futures_util::future::LocalBoxFuture<'a, T>;

/// Everything a transport needs to connect.
#[derive(Clone)]
pub(crate) struct ConnectRequest {
    /// The connect URL (`http`/`https`, with `id=` unless negotiation was skipped).
    pub url: Url,
    /// Text for JSON, binary for MessagePack.
    pub format: TransferFormat,
    /// The bearer token of this connection attempt, if any.
    pub access_token: Option<String>,
    /// The connection's HTTP client (cookies, headers, user agent, timeouts).
    pub http: HttpClient,
}

/// One frame for the transport to send.
#[derive(Debug)]
pub(crate) struct OutgoingFrame {
    /// The bytes (for text transports, UTF-8 text).
    pub data: Bytes,
    /// Completed once the frame is written, or with the error that stopped it.
    pub written: Option<oneshot::Sender<Result<()>>>,
}

/// What a running transport reports.
#[derive(Debug)]
pub(crate) enum TransportEvent {
    /// A transport message: one or more whole hub messages (or a part, on byte streams).
    Message(Bytes),
    /// The transport ended: `None` when it closed cleanly.
    Closed(Option<crate::error::Error>),
}

/// A started transport.
#[derive(Debug)]
pub(crate) struct TransportLink {
    /// Which transport this is.
    pub kind: TransportKind,
    /// Frames to send; drop it to stop the transport.
    pub outgoing: LinkSender,
    /// Received messages, then one `Closed`.
    pub incoming: LinkReceiver,
}

/// A transport implementation: the native ones here, a browser one in the wasm binding.
pub(crate) trait Transport: Send + Sync {
    /// Which transport this is.
    fn kind(&self) -> TransportKind;

    /// Connects; resolves once the transport is open (WebSocket `open`, the first SSE event
    /// stream response, the first successful poll).
    fn connect(&self, request: ConnectRequest) -> BoxFuture<'static, Result<TransportLink>>;
}

/// The built-in implementation of `kind` on this platform, if there is one.
pub(crate) fn builtin(kind: TransportKind) -> Option<Box<dyn Transport>> {
    match kind {
        #[cfg(not(target_arch = "wasm32"))]
        TransportKind::WebSockets => Some(Box::new(websocket::WebSocketTransport)),
        #[cfg(target_arch = "wasm32")]
        TransportKind::WebSockets => None,
        TransportKind::ServerSentEvents => {
            Some(Box::new(server_sent_events::ServerSentEventsTransport))
        }
        TransportKind::LongPolling => Some(Box::new(long_polling::LongPollingTransport)),
    }
}

mod link;
pub(crate) mod long_polling;
mod send_queue;
pub(crate) mod server_sent_events;
#[cfg(not(target_arch = "wasm32"))]
pub(crate) mod websocket;
