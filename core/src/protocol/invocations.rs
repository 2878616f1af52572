//! Invocation ids and the calls waiting for the server's answer.

use std::collections::HashMap;

use super::message::{Completion, CompletionOutcome, Payload, StreamItem};

/// The error every pending call gets when the connection ends without a reason of its own.
pub const CONNECTION_CLOSED: &str =
    "Invocation canceled due to the underlying connection being closed.";

/// Allocates invocation ids and upload stream ids from one counter, as the official clients
/// do: decimal strings from `0`, never reused for the life of the connection object (not even
/// after a reconnect), so a late answer can never reach the wrong caller.
///
/// ```
/// use hublink::protocol::invocations::InvocationIds;
/// let mut ids = InvocationIds::default();
/// assert_eq!(ids.next_id(), "0");
/// assert_eq!(ids.next_id(), "1");
/// ```
#[derive(Debug, Default)]
pub struct InvocationIds {
    next: u64,
}

impl InvocationIds {
    /// The next unused id.
    pub fn next_id(&mut self) -> String {
        let id = self.next.to_string();
        self.next += 1;
        id
    }
}

/// What a Completion or StreamItem from the server means for the call it names.
#[derive(Debug)]
pub enum Delivery<'a, I, S> {
    /// An `invoke` finished: `Ok(Some(result))`, `Ok(None)` for a void method, or the error.
    InvokeFinished(I, Result<Option<Payload>, String>),
    /// A stream produced an item; the stream stays pending.
    StreamItem(&'a mut S, Payload),
    /// A stream ended, cleanly or with an error.
    StreamFinished(S, Result<(), String>),
    /// The id names no pending call (for example a stream the caller already cancelled):
    /// the official clients ignore such messages.
    Unknown,
}

#[derive(Debug)]
enum Pending<I, S> {
    Invoke(I),
    Stream(S),
}

/// The calls waiting for the server, keyed by invocation id.
///
/// `I` is whatever completes an `invoke` (a oneshot sender in the async driver) and `S`
/// whatever feeds a stream. The table decides what each answer means; it holds no IO.
#[derive(Debug)]
pub struct PendingCalls<I, S> {
    calls: HashMap<String, Pending<I, S>>,
}

impl<I, S> Default for PendingCalls<I, S> {
    fn default() -> Self {
        PendingCalls {
            calls: HashMap::new(),
        }
    }
}

impl<I, S> PendingCalls<I, S> {
    /// Registers an `invoke` waiting for its Completion.
    pub fn add_invoke(&mut self, id: String, handle: I) {
        self.calls.insert(id, Pending::Invoke(handle));
    }

    /// Registers a server-to-client stream.
    pub fn add_stream(&mut self, id: String, handle: S) {
        self.calls.insert(id, Pending::Stream(handle));
    }

    /// Forgets a stream the caller cancelled, so later items for it are ignored. Returns the
    /// handle if the stream was still pending.
    pub fn cancel_stream(&mut self, id: &str) -> Option<S> {
        match self.calls.remove(id)? {
            Pending::Stream(s) => Some(s),
            other => {
                self.calls.insert(id.to_owned(), other);
                None
            }
        }
    }

    /// Removes an `invoke` whose invocation could not be sent.
    pub fn remove_invoke(&mut self, id: &str) -> Option<I> {
        match self.calls.remove(id)? {
            Pending::Invoke(i) => Some(i),
            other => {
                self.calls.insert(id.to_owned(), other);
                None
            }
        }
    }

    /// Routes a Completion to the call it ends.
    pub fn complete(&mut self, completion: Completion) -> Delivery<'_, I, S> {
        let Some(pending) = self.calls.remove(&completion.invocation_id) else {
            return Delivery::Unknown;
        };
        match (pending, completion.outcome) {
            (Pending::Invoke(i), CompletionOutcome::Result(p)) => {
                Delivery::InvokeFinished(i, Ok(Some(p)))
            }
            (Pending::Invoke(i), CompletionOutcome::Void) => Delivery::InvokeFinished(i, Ok(None)),
            (Pending::Invoke(i), CompletionOutcome::Error(e)) => {
                Delivery::InvokeFinished(i, Err(e))
            }
            (Pending::Stream(s), CompletionOutcome::Void) => Delivery::StreamFinished(s, Ok(())),
            (Pending::Stream(s), CompletionOutcome::Error(e)) => {
                Delivery::StreamFinished(s, Err(e))
            }
            (Pending::Stream(s), CompletionOutcome::Result(_)) => Delivery::StreamFinished(
                s,
                Err("The server sent a result for a streaming invocation.".into()),
            ),
        }
    }

    /// Routes a StreamItem to its stream. An item for an `invoke` fails that call, as the
    /// official client does.
    pub fn stream_item(&mut self, item: StreamItem) -> Delivery<'_, I, S> {
        match self.calls.get(&item.invocation_id) {
            None => Delivery::Unknown,
            Some(Pending::Invoke(_)) => match self.calls.remove(&item.invocation_id) {
                Some(Pending::Invoke(i)) => {
                    Delivery::InvokeFinished(i, Err("Unexpected message type: 2".into()))
                }
                _ => unreachable!("just checked"),
            },
            Some(Pending::Stream(_)) => match self.calls.get_mut(&item.invocation_id) {
                Some(Pending::Stream(s)) => Delivery::StreamItem(s, item.item),
                _ => unreachable!("just checked"),
            },
        }
    }

    /// Takes every pending call, to fail them all when the connection ends.
    pub fn drain(&mut self) -> (Vec<I>, Vec<S>) {
        let mut invokes = Vec::new();
        let mut streams = Vec::new();
        for (_, pending) in self.calls.drain() {
            match pending {
                Pending::Invoke(i) => invokes.push(i),
                Pending::Stream(s) => streams.push(s),
            }
        }
        (invokes, streams)
    }

    /// How many calls are waiting.
    pub fn len(&self) -> usize {
        self.calls.len()
    }

    /// Whether no call is waiting.
    pub fn is_empty(&self) -> bool {
        self.calls.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::value::Value;

    fn completion(id: &str, outcome: CompletionOutcome) -> Completion {
        Completion {
            invocation_id: id.into(),
            outcome,
            headers: vec![],
        }
    }

    fn item(id: &str, n: i64) -> StreamItem {
        StreamItem {
            invocation_id: id.into(),
            item: Payload::Value(Value::Int(n)),
            headers: vec![],
        }
    }

    #[test]
    fn ids_are_shared_and_monotonic() {
        let mut ids = InvocationIds::default();
        let got: Vec<String> = (0..3).map(|_| ids.next_id()).collect();
        assert_eq!(got, ["0", "1", "2"]);
    }

    #[test]
    fn completions_reach_their_invoke_once() {
        let mut calls: PendingCalls<&str, Vec<i64>> = PendingCalls::default();
        calls.add_invoke("1".into(), "a");
        calls.add_invoke("2".into(), "b");
        match calls.complete(completion("2", CompletionOutcome::Error("boom".into()))) {
            Delivery::InvokeFinished("b", Err(e)) => assert_eq!(e, "boom"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            calls.complete(completion("2", CompletionOutcome::Void)),
            Delivery::Unknown
        ));
        match calls.complete(completion("1", CompletionOutcome::Void)) {
            Delivery::InvokeFinished("a", Ok(None)) => {}
            other => panic!("{other:?}"),
        }
        assert!(calls.is_empty());
    }

    #[test]
    fn streams_take_items_until_completion() {
        let mut calls: PendingCalls<(), Vec<i64>> = PendingCalls::default();
        calls.add_stream("0".into(), Vec::new());
        for n in 0..3 {
            match calls.stream_item(item("0", n)) {
                Delivery::StreamItem(items, p) => items.push(match p.to_value().unwrap() {
                    Value::Int(n) => n,
                    v => panic!("{v:?}"),
                }),
                other => panic!("{other:?}"),
            }
        }
        match calls.complete(completion("0", CompletionOutcome::Void)) {
            Delivery::StreamFinished(items, Ok(())) => assert_eq!(items, [0, 1, 2]),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn wrong_kinds_fail_the_call() {
        let mut calls: PendingCalls<u8, u8> = PendingCalls::default();
        calls.add_invoke("1".into(), 1);
        calls.add_stream("2".into(), 2);
        assert!(matches!(
            calls.stream_item(item("1", 5)),
            Delivery::InvokeFinished(1, Err(e)) if e == "Unexpected message type: 2"
        ));
        let result = CompletionOutcome::Result(Payload::Value(Value::Null));
        assert!(matches!(
            calls.complete(completion("2", result)),
            Delivery::StreamFinished(2, Err(_))
        ));
    }

    #[test]
    fn cancelled_streams_ignore_late_items() {
        let mut calls: PendingCalls<(), u8> = PendingCalls::default();
        calls.add_stream("4".into(), 4);
        assert_eq!(calls.cancel_stream("4"), Some(4));
        assert!(matches!(calls.stream_item(item("4", 1)), Delivery::Unknown));
        assert!(matches!(
            calls.complete(completion("4", CompletionOutcome::Void)),
            Delivery::Unknown
        ));
    }

    #[test]
    fn drain_takes_everything() {
        let mut calls: PendingCalls<u8, u8> = PendingCalls::default();
        calls.add_invoke("1".into(), 1);
        calls.add_stream("2".into(), 2);
        let (invokes, streams) = calls.drain();
        assert_eq!((invokes, streams), (vec![1], vec![2]));
        assert!(calls.is_empty());
    }
}
