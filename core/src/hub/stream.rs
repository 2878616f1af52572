//! Server-to-client streams as a `futures::Stream`, with batch reads and explicit cancel for
//! bindings.
//!
//! Each stream buffers a bounded number of received items (the stream buffer capacity). When
//! a stream's buffer is full, the driver stops reading from the transport until the reader
//! makes room (see `driver.rs`): the server then feels TCP backpressure, nothing is dropped
//! and nothing grows. How a stream ended travels beside the items, so an error is never held
//! up (or lost) by a full buffer.

use std::pin::Pin;
use std::task::{Context, Poll};

use futures_util::Stream;
use tokio::sync::{mpsc, oneshot};

use super::driver::Command;
use crate::error::{Error, Result};
use crate::protocol::Payload;

/// Turns a received item into the stream's item type.
pub(crate) type Decode<T> = fn(Payload) -> Result<T>;

/// The items of a server-to-client stream, in order, then its end. An error ends it.
///
/// Read it as a [`Stream`], or with [`next_batch`](Self::next_batch) to take every item
/// already received at once. Dropping it before its end cancels it on the server (a
/// CancelInvocation is sent), as disposing a subscription does in the official clients;
/// [`cancel`](Self::cancel) does the same explicitly.
///
/// Received items wait in a bounded buffer
/// ([`ConnectionOptions::stream_buffer_capacity`](crate::ConnectionOptions::stream_buffer_capacity)).
/// While it is full the connection reads nothing more from the server, so the other calls'
/// answers and the server's invocations wait too, until this stream is read, cancelled or
/// dropped.
#[must_use = "a stream is cancelled on the server when dropped"]
pub struct HubStream<T> {
    id: String,
    items: mpsc::Receiver<Payload>,
    /// The error that ended the stream, read once its items are.
    failure: oneshot::Receiver<Error>,
    commands: Option<mpsc::UnboundedSender<Command>>,
    decode: Decode<T>,
    finished: bool,
    /// The call's tracing span: it ends when the stream is dropped.
    span: tracing::Span,
}

impl<T> std::fmt::Debug for HubStream<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubStream")
            .field("invocation_id", &self.id)
            .field("finished", &self.finished)
            .finish()
    }
}

impl<T> HubStream<T> {
    pub(crate) fn new(
        id: String,
        receiver: StreamReceiver,
        commands: mpsc::UnboundedSender<Command>,
        decode: Decode<T>,
    ) -> Self {
        HubStream {
            id,
            items: receiver.items,
            failure: receiver.failure,
            commands: Some(commands),
            decode,
            finished: false,
            span: tracing::Span::none(),
        }
    }

    /// Keeps the call's tracing span open as long as the stream.
    pub(crate) fn with_span(mut self, span: tracing::Span) -> Self {
        self.span = span;
        self
    }

    /// The invocation id of the stream.
    pub fn invocation_id(&self) -> &str {
        &self.id
    }

    /// Whether the stream has ended (completed, failed or cancelled): reads return nothing
    /// more.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// Up to `max` items at once: waits for the first, then takes those already received
    /// (one crossing of a language boundary for many items). An empty batch means the
    /// stream has ended; an error ends it (the items received before the error come first,
    /// in the batch before).
    pub async fn next_batch(&mut self, max: usize) -> Result<Vec<T>> {
        let mut batch = Vec::new();
        if self.finished || max == 0 {
            return Ok(batch);
        }
        let first = self.items.recv().await;
        let Some(first) = self.take(first)? else {
            return Ok(batch);
        };
        batch.push(first);
        // The end (or the error) is the next read's.
        while batch.len() < max {
            match self.items.try_recv() {
                Ok(payload) => batch.push((self.decode)(payload)?),
                Err(_) => break,
            }
        }
        Ok(batch)
    }

    /// Cancels the stream: the server gets a CancelInvocation and stops producing; reads
    /// return nothing more. Does nothing once the stream has ended.
    pub fn cancel(&mut self) {
        if self.finished {
            return;
        }
        self.finished = true;
        self.items.close();
        if let Some(commands) = self.commands.take() {
            let _ = commands.send(Command::CancelStream {
                id: self.id.clone(),
            });
        }
    }

    /// A handle that cancels this stream from anywhere (another task or thread, a binding's
    /// cancellation callback), also while a read is waiting: the read then ends.
    pub fn cancel_handle(&self) -> StreamCancel {
        StreamCancel {
            id: self.id.clone(),
            commands: self.commands.clone(),
        }
    }

    /// One received entry as the next read: an item, or once the items ended, the end
    /// (`None`) or the error that ended them.
    fn take(&mut self, entry: Option<Payload>) -> Result<Option<T>> {
        match entry {
            None => {
                self.finished = true;
                match self.failure.try_recv() {
                    Ok(error) => Err(error),
                    Err(_) => Ok(None),
                }
            }
            Some(payload) => (self.decode)(payload).map(Some),
        }
    }
}

impl<T> Stream for HubStream<T> {
    type Item = Result<T>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<T>>> {
        if self.finished {
            return Poll::Ready(None);
        }
        match self.items.poll_recv(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(entry) => Poll::Ready(self.take(entry).transpose()),
        }
    }
}

impl<T> Unpin for HubStream<T> {}

impl<T> Drop for HubStream<T> {
    fn drop(&mut self) {
        self.cancel();
    }
}

/// The two ends of a stream's buffer: the driver's and the [`HubStream`]'s.
pub(crate) fn stream_buffer(capacity: usize) -> (StreamFeed, StreamReceiver) {
    let (items_tx, items) = mpsc::channel(capacity);
    let (failure_tx, failure) = oneshot::channel();
    (
        StreamFeed {
            items: items_tx,
            failure: failure_tx,
        },
        StreamReceiver { items, failure },
    )
}

/// The [`HubStream`]'s end of its buffer.
pub(crate) struct StreamReceiver {
    items: mpsc::Receiver<Payload>,
    failure: oneshot::Receiver<Error>,
}

#[cfg(fuzzing)]
impl StreamReceiver {
    /// The next item, or (once) the error that ended the stream, or `None`; call no more
    /// after anything but an item.
    pub(crate) async fn next(&mut self) -> Option<Result<Payload>> {
        match self.items.recv().await {
            Some(item) => Some(Ok(item)),
            None => (&mut self.failure).await.ok().map(Err),
        }
    }
}

/// The driver's end of a stream's buffer: it is the only sender, so room it saw stays room
/// until it pushes.
pub(crate) struct StreamFeed {
    items: mpsc::Sender<Payload>,
    failure: oneshot::Sender<Error>,
}

impl StreamFeed {
    /// Whether [`push`](Self::push) takes an item now: the buffer has room, or its reader is
    /// gone (the item then goes nowhere, as for a cancelled stream).
    pub(crate) fn has_room(&self) -> bool {
        self.items.capacity() > 0 || self.items.is_closed()
    }

    /// Resolves once half the buffer is free again (or its reader is gone), so that a reader
    /// draining a full buffer wakes the driver once per half buffer, not once per item. Holds
    /// no room itself once resolved.
    pub(crate) fn room(&self) -> crate::transport::BoxFuture<'static, ()> {
        let items = self.items.clone();
        let half = (items.max_capacity() / 2).max(1);
        Box::pin(async move {
            // The slots go back when the permits drop; it is enough to know they were free.
            let _ = items.reserve_many(half).await;
        })
    }

    /// Buffers an item; call it only after [`has_room`](Self::has_room), or while stopping
    /// (then an item that finds the buffer full is dropped: the stream ends with the
    /// connection's error anyway).
    pub(crate) fn push(&self, item: Payload) {
        if let Err(mpsc::error::TrySendError::Full(_)) = self.items.try_send(item) {
            tracing::debug!("a stream item arrived after stop() for a full buffer: dropped");
        }
    }

    /// Ends the stream with `error`, after the items already buffered.
    pub(crate) fn fail(self, error: Error) {
        let _ = self.failure.send(error);
    }
}

/// A stream item as `T`, through serde.
pub(crate) fn deserialize<T: serde::de::DeserializeOwned>(payload: Payload) -> Result<T> {
    payload
        .deserialize()
        .map_err(|e| Error::invalid_argument(format!("stream item: {e}")))
}

/// A stream item as a dynamic value, exactly.
pub(crate) fn to_value(payload: Payload) -> Result<crate::protocol::Value> {
    payload.to_value().map_err(Error::from)
}

/// Cancels a [`HubStream`] from outside it ([`HubStream::cancel_handle`]).
#[derive(Debug, Clone)]
pub struct StreamCancel {
    id: String,
    commands: Option<mpsc::UnboundedSender<Command>>,
}

impl StreamCancel {
    /// Cancels the stream: the server gets a CancelInvocation (unless the stream has ended
    /// already), and a waiting or later read ends.
    pub fn cancel(&self) {
        if let Some(commands) = &self.commands {
            let _ = commands.send(Command::CancelStream {
                id: self.id.clone(),
            });
        }
    }
}
