//! Server-to-client streams as a `futures::Stream`, with batch reads and explicit cancel for
//! bindings.

use std::pin::Pin;
use std::task::{Context, Poll};

use futures_util::Stream;
use tokio::sync::mpsc;

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
#[must_use = "a stream is cancelled on the server when dropped"]
pub struct HubStream<T> {
    id: String,
    items: mpsc::UnboundedReceiver<Result<Payload>>,
    commands: Option<mpsc::UnboundedSender<Command>>,
    decode: Decode<T>,
    finished: bool,
    /// An error that ended a batch early: the next read's.
    failed: Option<Error>,
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
        items: mpsc::UnboundedReceiver<Result<Payload>>,
        commands: mpsc::UnboundedSender<Command>,
        decode: Decode<T>,
    ) -> Self {
        HubStream {
            id,
            items,
            commands: Some(commands),
            decode,
            finished: false,
            failed: None,
        }
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
        if let Some(error) = self.failed.take() {
            return Err(error);
        }
        if self.finished || max == 0 {
            return Ok(batch);
        }
        let first = self.items.recv().await;
        let Some(first) = self.take(first)? else {
            return Ok(batch);
        };
        batch.push(first);
        while batch.len() < max {
            match self.items.try_recv() {
                Ok(Ok(payload)) => batch.push((self.decode)(payload)?),
                Ok(Err(error)) => {
                    // Deliver what came before; the error is the next read's.
                    self.finished = true;
                    self.failed = Some(error);
                    break;
                }
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

    /// One received entry as the next read: an item, the end (`None`), or the error.
    fn take(&mut self, entry: Option<Result<Payload>>) -> Result<Option<T>> {
        match entry {
            None => {
                self.finished = true;
                Ok(None)
            }
            Some(Err(e)) => {
                self.finished = true;
                Err(e)
            }
            Some(Ok(payload)) => (self.decode)(payload).map(Some),
        }
    }
}

impl<T> Stream for HubStream<T> {
    type Item = Result<T>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<T>>> {
        if let Some(error) = self.failed.take() {
            return Poll::Ready(Some(Err(error)));
        }
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
