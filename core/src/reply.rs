//! Where the outcome of a call goes: a channel its future waits on, or a callback (bindings
//! complete their own futures that way, without a task per call).

use tokio::sync::oneshot;

use crate::error::{Error, Result};
use crate::protocol::invocations::CONNECTION_CLOSED;

/// A callback that receives a call's outcome, once.
#[cfg(not(target_arch = "wasm32"))]
pub(crate) type ReplyFn<T> = Box<dyn FnOnce(Result<T>) + Send + Sync>;
/// A callback that receives a call's outcome, once.
#[cfg(target_arch = "wasm32")]
pub(crate) type ReplyFn<T> = Box<dyn FnOnce(Result<T>)>;

/// The receiving end of a call's outcome. A reply dropped unanswered (its connection's task
/// went away) answers its callback with the connection-closed error, so a binding's future
/// never waits for good; a channel's receiver sees the drop itself.
pub(crate) struct Reply<T>(Option<Kind<T>>);

enum Kind<T> {
    /// A future waits on the other end.
    Channel(oneshot::Sender<Result<T>>),
    /// Called on the connection's task (or on the caller's thread when the call could not be
    /// submitted).
    Callback(ReplyFn<T>),
}

impl<T> Reply<T> {
    /// A reply that calls `callback`.
    pub(crate) fn callback(callback: ReplyFn<T>) -> Self {
        Reply(Some(Kind::Callback(callback)))
    }

    /// Delivers the outcome; nobody listening is not an error.
    pub(crate) fn send(mut self, outcome: Result<T>) {
        match self.0.take() {
            Some(Kind::Channel(sender)) => {
                let _ = sender.send(outcome);
            }
            Some(Kind::Callback(callback)) => callback(outcome),
            None => {}
        }
    }
}

impl<T> Drop for Reply<T> {
    fn drop(&mut self) {
        if let Some(Kind::Callback(callback)) = self.0.take() {
            callback(Err(Error::connection_closed(CONNECTION_CLOSED)));
        }
    }
}

impl<T> From<oneshot::Sender<Result<T>>> for Reply<T> {
    fn from(sender: oneshot::Sender<Result<T>>) -> Self {
        Reply(Some(Kind::Channel(sender)))
    }
}

impl<T> std::fmt::Debug for Reply<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self.0 {
            Some(Kind::Channel(_)) => "Reply::Channel",
            Some(Kind::Callback(_)) => "Reply::Callback",
            None => "Reply::Sent",
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    #[test]
    fn a_callback_is_answered_exactly_once_even_when_dropped() {
        let got = Arc::new(Mutex::new(Vec::new()));
        let log = got.clone();
        Reply::<u8>::callback(Box::new(move |r| log.lock().unwrap().push(r))).send(Ok(7));
        let log = got.clone();
        drop(Reply::<u8>::callback(Box::new(move |r| {
            log.lock().unwrap().push(r)
        })));
        let got = got.lock().unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0], Ok(7));
        assert_eq!(
            got[1].as_ref().unwrap_err().to_string(),
            CONNECTION_CLOSED,
            "a dropped reply says the connection closed"
        );
    }
}
