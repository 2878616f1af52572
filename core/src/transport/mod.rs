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

use crate::reply::Reply;
use bytes::Bytes;
use url::Url;

use crate::access_token::AccessToken;
use crate::error::Result;
use crate::http::HttpClient;
use crate::protocol::transports::{TransferFormat, TransportKind, TransportSet};

pub(crate) use link::{LinkReceiver, LinkSender, TransportGone};

/// How many frames may wait for a transport before senders wait too.
pub(crate) const OUTGOING_CAPACITY: usize = 64;

/// How many received messages may wait for the hub driver before the transport stops reading.
pub(crate) const INCOMING_CAPACITY: usize = 64;

pub(crate) use crate::maybe_send::BoxFuture;

/// Everything a transport needs to connect.
#[derive(Clone)]
pub(crate) struct ConnectRequest {
    /// The connect URL (`http`/`https`, with `id=` unless negotiation was skipped).
    pub url: Url,
    /// Text for JSON, binary for MessagePack.
    pub format: TransferFormat,
    /// The bearer token of this connection attempt (renewed on a 401 when a factory made it).
    pub access_token: AccessToken,
    /// The connection's HTTP client (cookies, headers, user agent, timeouts).
    pub http: HttpClient,
    /// The largest hub message accepted; transport messages are capped at
    /// [`transport_message_limit`] of it.
    pub max_message_size: usize,
}

/// Room a transport message has beyond one message of the maximum size: servers write what
/// is queued as one transport message (a WebSocket message, an SSE event, a poll's body), so a
/// message at the limit may come with others, plus their framing.
pub(crate) const TRANSPORT_MESSAGE_SLACK: usize = 64 * 1024;

/// The largest transport message read for a connection whose maximum message size is
/// `max_message_size`: twice that plus [`TRANSPORT_MESSAGE_SLACK`]. Larger ones fail the
/// connection with `MessageTooLarge` once that many bytes arrived, without reading the rest;
/// smaller ones reach the decoder, which checks each message against the maximum itself.
pub(crate) fn transport_message_limit(max_message_size: usize) -> usize {
    max_message_size
        .saturating_mul(2)
        .saturating_add(TRANSPORT_MESSAGE_SLACK)
}

/// The error of a transport message above [`transport_message_limit`]: `size` bytes (so far).
pub(crate) fn transport_message_too_large(size: usize, max_message_size: usize) -> crate::Error {
    crate::Error::from(crate::protocol::ProtocolError::MessageTooLarge {
        size,
        max: max_message_size,
    })
}

/// One frame for the transport to send.
#[derive(Debug)]
pub(crate) struct OutgoingFrame {
    /// The bytes (for text transports, UTF-8 text).
    pub data: Bytes,
    /// Completed once the frame is written, or with the error that stopped it.
    pub written: Option<Reply<()>>,
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

/// A transport implementation: WebSockets (native or the browser's), SSE and Long Polling.
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
        TransportKind::WebSockets => Some(Box::new(browser_websocket::BrowserWebSocketTransport)),
        TransportKind::ServerSentEvents => {
            Some(Box::new(server_sent_events::ServerSentEventsTransport))
        }
        TransportKind::LongPolling => Some(Box::new(long_polling::LongPollingTransport)),
    }
}

/// The transports this platform implements: all three, natively and in the browser.
pub(crate) fn available() -> TransportSet {
    let kinds: Vec<_> = TransportSet::all()
        .iter()
        .filter(|kind| builtin(*kind).is_some())
        .collect();
    TransportSet::from_kinds(&kinds)
}

#[cfg(target_arch = "wasm32")]
mod browser_websocket;
pub(crate) mod event_stream;
mod link;
pub(crate) mod long_polling;
mod send_queue;
pub(crate) mod server_sent_events;
#[cfg(not(target_arch = "wasm32"))]
pub(crate) mod websocket;
mod websocket_texts;
