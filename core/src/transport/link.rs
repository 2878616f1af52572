//! The two ends of a started transport that the hub driver holds: a [`LinkSender`] for frames
//! going out and a [`LinkReceiver`] for what comes in.
//!
//! The HTTP transports (and a browser one) run as background tasks behind channels. The
//! native WebSocket is driven by the hub driver's own task instead (no task in between, so a
//! call costs no extra thread hand-off): its sender writes to the socket and its receiver reads
//! from it. Both kinds keep the same contract: frames are taken in order and each `written`
//! completes once its frame is on the wire (or failed); dropping the sender stops the transport
//! gracefully, after which the receiver reports [`TransportEvent::Closed`] once and then `None`.

use std::future::poll_fn;
use std::task::{Context, Poll};

#[cfg(not(target_arch = "wasm32"))]
use futures_util::FutureExt;
use tokio::sync::mpsc;

use super::{OutgoingFrame, TransportEvent};

/// The transport no longer takes frames: it closed, and its receiver says why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TransportGone;

/// Where a transport's frames go.
pub(crate) enum LinkSender {
    /// A transport running as tasks behind a bounded channel.
    Channel(ChannelSender),
    /// The native WebSocket, written by the caller's task.
    #[cfg(not(target_arch = "wasm32"))]
    WebSocket(super::websocket::SocketWriter),
}

/// The sending half of a channel transport, holding a slot once one was reserved.
pub(crate) struct ChannelSender {
    sender: mpsc::Sender<OutgoingFrame>,
    slot: Option<mpsc::OwnedPermit<OutgoingFrame>>,
}

impl From<mpsc::Sender<OutgoingFrame>> for LinkSender {
    fn from(sender: mpsc::Sender<OutgoingFrame>) -> Self {
        LinkSender::Channel(ChannelSender { sender, slot: None })
    }
}

impl std::fmt::Debug for LinkSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LinkSender::Channel(_) => f.write_str("LinkSender::Channel"),
            #[cfg(not(target_arch = "wasm32"))]
            LinkSender::WebSocket(_) => f.write_str("LinkSender::WebSocket"),
        }
    }
}

impl LinkSender {
    /// Resolves once the transport can take a frame. Cancel-safe.
    pub(crate) async fn ready(&mut self) -> Result<(), TransportGone> {
        match self {
            LinkSender::Channel(channel) => {
                if channel.slot.is_none() {
                    let permit = channel.sender.clone().reserve_owned().await;
                    channel.slot = Some(permit.map_err(|_| TransportGone)?);
                }
                Ok(())
            }
            #[cfg(not(target_arch = "wasm32"))]
            LinkSender::WebSocket(socket) => poll_fn(|cx| socket.poll_ready(cx)).await,
        }
    }

    /// Whether the transport can take a frame now, without waiting.
    pub(crate) fn try_ready(&mut self) -> bool {
        match self {
            LinkSender::Channel(channel) => {
                if channel.slot.is_none() {
                    channel.slot = channel.sender.clone().try_reserve_owned().ok();
                }
                channel.slot.is_some()
            }
            #[cfg(not(target_arch = "wasm32"))]
            LinkSender::WebSocket(_) => matches!(self.ready().now_or_never(), Some(Ok(()))),
        }
    }

    /// Hands a frame to the transport. Call it only once [`ready`](Self::ready) or
    /// [`try_ready`](Self::try_ready) said yes; the frame's `written` gets the outcome.
    pub(crate) fn start_send(&mut self, frame: OutgoingFrame) {
        match self {
            LinkSender::Channel(channel) => match channel.slot.take() {
                Some(permit) => {
                    permit.send(frame);
                }
                None => unreachable!("start_send without a ready transport"),
            },
            #[cfg(not(target_arch = "wasm32"))]
            LinkSender::WebSocket(socket) => socket.start_send(frame),
        }
    }

    /// Whether frames were handed over that [`flush`](Self::flush) still has to push out.
    pub(crate) fn needs_flush(&self) -> bool {
        match self {
            LinkSender::Channel(_) => false,
            #[cfg(not(target_arch = "wasm32"))]
            LinkSender::WebSocket(socket) => socket.needs_flush(),
        }
    }

    /// Pushes the frames handed over so far onto the wire. Cancel-safe.
    pub(crate) async fn flush(&mut self) -> Result<(), TransportGone> {
        match self {
            LinkSender::Channel(_) => Ok(()),
            #[cfg(not(target_arch = "wasm32"))]
            LinkSender::WebSocket(socket) => poll_fn(|cx| socket.poll_flush(cx)).await,
        }
    }

    /// Waits for room, hands `frame` over and flushes: for the handshake and for tests.
    pub(crate) async fn send(&mut self, frame: OutgoingFrame) -> Result<(), TransportGone> {
        self.ready().await?;
        self.start_send(frame);
        // A failed flush reaches the frame's `written`.
        let _ = self.flush().await;
        Ok(())
    }
}

/// Where a transport's events come from.
pub(crate) enum LinkReceiver {
    /// A transport running as tasks behind a bounded channel.
    Channel(mpsc::Receiver<TransportEvent>),
    /// The native WebSocket, read by the caller's task.
    #[cfg(not(target_arch = "wasm32"))]
    WebSocket(super::websocket::SocketReader),
}

impl From<mpsc::Receiver<TransportEvent>> for LinkReceiver {
    fn from(receiver: mpsc::Receiver<TransportEvent>) -> Self {
        LinkReceiver::Channel(receiver)
    }
}

impl std::fmt::Debug for LinkReceiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LinkReceiver::Channel(_) => f.write_str("LinkReceiver::Channel"),
            #[cfg(not(target_arch = "wasm32"))]
            LinkReceiver::WebSocket(_) => f.write_str("LinkReceiver::WebSocket"),
        }
    }
}

impl LinkReceiver {
    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<TransportEvent>> {
        match self {
            LinkReceiver::Channel(receiver) => receiver.poll_recv(cx),
            #[cfg(not(target_arch = "wasm32"))]
            LinkReceiver::WebSocket(socket) => socket.poll_recv(cx),
        }
    }

    /// The next event: messages, then one `Closed`, then `None`. Cancel-safe.
    pub(crate) async fn recv(&mut self) -> Option<TransportEvent> {
        poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// The next event if one is there already.
    pub(crate) fn try_recv(&mut self) -> Option<TransportEvent> {
        match self {
            LinkReceiver::Channel(receiver) => receiver.try_recv().ok(),
            #[cfg(not(target_arch = "wasm32"))]
            LinkReceiver::WebSocket(socket) => socket.try_recv(),
        }
    }
}
