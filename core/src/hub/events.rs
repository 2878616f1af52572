//! The connection's lifecycle events, for listeners (callbacks) and as a pull-style stream.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use futures_util::Stream;
use tokio::sync::mpsc;

use crate::error::Error;

/// Something that happened to a connection.
#[non_exhaustive]
#[derive(Debug, Clone)]
pub enum ConnectionEvent {
    /// The connection is over, with the error that ended it (`None` after `stop()` or a
    /// clean server close). Pending calls have failed.
    Closed {
        /// What ended the connection.
        error: Option<Error>,
    },
    /// The connection was lost and automatic reconnect began.
    Reconnecting {
        /// What broke the connection.
        error: Option<Error>,
    },
    /// Automatic reconnect succeeded.
    Reconnected {
        /// The new connection id (`None` when negotiation is skipped).
        connection_id: Option<String>,
    },
}

impl ConnectionEvent {
    /// The event's name as the official clients name their callbacks: `"close"`,
    /// `"reconnecting"` or `"reconnected"` (`onclose`, `onreconnecting`, `onreconnected`).
    pub fn name(&self) -> &'static str {
        match self {
            ConnectionEvent::Closed { .. } => "close",
            ConnectionEvent::Reconnecting { .. } => "reconnecting",
            ConnectionEvent::Reconnected { .. } => "reconnected",
        }
    }

    /// The error of a close or reconnecting event.
    pub fn error(&self) -> Option<&Error> {
        match self {
            ConnectionEvent::Closed { error } | ConnectionEvent::Reconnecting { error } => {
                error.as_ref()
            }
            ConnectionEvent::Reconnected { .. } => None,
        }
    }

    /// The new connection id of a reconnected event.
    pub fn connection_id(&self) -> Option<&str> {
        match self {
            ConnectionEvent::Reconnected { connection_id } => connection_id.as_deref(),
            _ => None,
        }
    }
}

#[cfg(not(target_arch = "wasm32"))]
pub(crate) type Listener = Arc<dyn Fn(&ConnectionEvent) + Send + Sync>;
#[cfg(target_arch = "wasm32")]
pub(crate) type Listener = Arc<dyn Fn(&ConnectionEvent)>;

/// Where a connection's events go: listeners, then the pull streams still read.
#[derive(Default)]
pub(crate) struct Events {
    listeners: Mutex<Vec<Listener>>,
    streams: Mutex<Vec<mpsc::UnboundedSender<ConnectionEvent>>>,
}

impl Events {
    pub(crate) fn listen(&self, listener: Listener) {
        self.listeners.lock().expect("listeners").push(listener);
    }

    pub(crate) fn stream(&self) -> ConnectionEvents {
        let (sender, receiver) = mpsc::unbounded_channel();
        self.streams.lock().expect("event streams").push(sender);
        ConnectionEvents { receiver }
    }

    /// Tells every listener (in registration order, outside the lock, so a listener may
    /// register another) and every open stream.
    pub(crate) fn fire(&self, event: ConnectionEvent) {
        let listeners = self.listeners.lock().expect("listeners").clone();
        for listener in listeners {
            listener(&event);
        }
        self.streams
            .lock()
            .expect("event streams")
            .retain(|stream| stream.send(event.clone()).is_ok());
    }
}

/// A connection's events, in order, from the moment it was asked for
/// ([`HubConnection::events`](crate::HubConnection::events)). It ends when the connection
/// is dropped; events wait here until read.
#[must_use = "events wait in the stream until it is read or dropped"]
#[derive(Debug)]
pub struct ConnectionEvents {
    receiver: mpsc::UnboundedReceiver<ConnectionEvent>,
}

impl ConnectionEvents {
    /// The next event; `None` once the connection is gone.
    pub async fn next(&mut self) -> Option<ConnectionEvent> {
        self.receiver.recv().await
    }

    /// The next event if one is waiting.
    pub fn try_next(&mut self) -> Option<ConnectionEvent> {
        self.receiver.try_recv().ok()
    }
}

impl Stream for ConnectionEvents {
    type Item = ConnectionEvent;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.receiver.poll_recv(cx)
    }
}
