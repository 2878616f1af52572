//! Server-to-client streams as a `futures::Stream`.

use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_util::Stream;
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;

use super::driver::Command;
use crate::error::{Error, Result};
use crate::protocol::Payload;

/// The items of a server-to-client stream, in order, then its end. An error ends it.
///
/// Dropping the stream before its end cancels it on the server (a CancelInvocation is sent),
/// as disposing a subscription does in the official clients.
pub struct HubStream<T> {
    id: String,
    items: mpsc::UnboundedReceiver<Result<Payload>>,
    commands: mpsc::Sender<Command>,
    finished: bool,
    item_type: PhantomData<fn() -> T>,
}

impl<T> HubStream<T> {
    pub(crate) fn new(
        id: String,
        items: mpsc::UnboundedReceiver<Result<Payload>>,
        commands: mpsc::Sender<Command>,
    ) -> Self {
        HubStream {
            id,
            items,
            commands,
            finished: false,
            item_type: PhantomData,
        }
    }

    /// The invocation id of the stream.
    pub fn invocation_id(&self) -> &str {
        &self.id
    }
}

impl<T: DeserializeOwned> Stream for HubStream<T> {
    type Item = Result<T>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<T>>> {
        if self.finished {
            return Poll::Ready(None);
        }
        match self.items.poll_recv(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(None) => {
                self.finished = true;
                Poll::Ready(None)
            }
            Poll::Ready(Some(Err(e))) => {
                self.finished = true;
                Poll::Ready(Some(Err(e)))
            }
            Poll::Ready(Some(Ok(payload))) => Poll::Ready(Some(
                payload
                    .deserialize()
                    .map_err(|e| Error::InvalidArgument(format!("stream item: {e}"))),
            )),
        }
    }
}

impl<T> Drop for HubStream<T> {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        let cancel = Command::CancelStream {
            id: std::mem::take(&mut self.id),
        };
        if let Err(mpsc::error::TrySendError::Full(cancel)) = self.commands.try_send(cancel) {
            let commands = self.commands.clone();
            crate::runtime::spawn(async move {
                let _ = commands.send(cancel).await;
            });
        }
    }
}
