//! Invocation ids and the calls waiting for the server's answer.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

use super::message::{Completion, CompletionOutcome, Payload, StreamItem};

/// The error every pending call gets when the connection ends without a reason of its own.
pub const CONNECTION_CLOSED: &str =
    "Invocation canceled due to the underlying connection being closed.";

/// Allocates invocation ids and upload stream ids from one counter, as the official clients
/// do: decimal strings from `0`, never reused for the life of the connection object (not even
/// after a reconnect), so a late answer can never reach the wrong caller.
///
/// ```
/// use hublink_proto::invocations::InvocationIds;
/// let ids = InvocationIds::default();
/// assert_eq!(ids.next_id(), "0");
/// assert_eq!(ids.next_number(), 1);
/// assert_eq!(ids.next_id(), "2");
/// ```
///
/// Callers on any thread may take ids at the same time.
#[derive(Debug, Default)]
pub struct InvocationIds {
    next: AtomicU64,
}

impl InvocationIds {
    /// The next unused id.
    pub fn next_id(&self) -> String {
        itoa::Buffer::new().format(self.next_number()).to_owned()
    }

    /// The next unused id, as the number its decimal text stands for.
    pub fn next_number(&self) -> u64 {
        self.next.fetch_add(1, Ordering::Relaxed)
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
    /// Calls whose id is a canonical decimal number, as [`InvocationIds`] makes them: keyed by
    /// that number, which hashes much faster than the text.
    numbered: HashMap<u64, Pending<I, S>, BuildHasherDefault<IdHasher>>,
    /// Calls with any other id.
    named: HashMap<String, Pending<I, S>>,
}

/// Hashes a `u64` id with one multiplication (as FxHash does): ids are sequential counters,
/// not attacker-chosen keys, so SipHash's flooding resistance buys nothing here.
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x517c_c1b7_2722_0a95);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

fn deliver_item<K, I, S>(entry: Entry<'_, K, Pending<I, S>>, item: Payload) -> Delivery<'_, I, S> {
    let Entry::Occupied(entry) = entry else {
        return Delivery::Unknown;
    };
    match entry.get() {
        Pending::Invoke(_) => match entry.remove() {
            Pending::Invoke(i) => {
                Delivery::InvokeFinished(i, Err("Unexpected message type: 2".into()))
            }
            Pending::Stream(_) => unreachable!("just checked"),
        },
        Pending::Stream(_) => match entry.into_mut() {
            Pending::Stream(s) => Delivery::StreamItem(s, item),
            Pending::Invoke(_) => unreachable!("just checked"),
        },
    }
}

/// The number a canonical decimal id stands for: digits only, no leading zero, within `u64`.
/// Any other text ("01", "+1", "x") is keyed as text, so it never matches a numbered call.
fn number(id: &str) -> Option<u64> {
    let bytes = id.as_bytes();
    if bytes.is_empty() || bytes.len() > 20 || (bytes[0] == b'0' && bytes.len() > 1) {
        return None;
    }
    let mut n: u64 = 0;
    for &b in bytes {
        if !b.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    Some(n)
}

impl<I, S> Default for PendingCalls<I, S> {
    fn default() -> Self {
        PendingCalls {
            numbered: HashMap::default(),
            named: HashMap::new(),
        }
    }
}

impl<I, S> PendingCalls<I, S> {
    fn insert(&mut self, id: String, pending: Pending<I, S>) {
        match number(&id) {
            Some(n) => self.numbered.insert(n, pending),
            None => self.named.insert(id, pending),
        };
    }

    fn remove(&mut self, id: &str) -> Option<Pending<I, S>> {
        match number(id) {
            Some(n) => self.numbered.remove(&n),
            None => self.named.remove(id),
        }
    }

    /// Registers an `invoke` waiting for its Completion.
    pub fn add_invoke(&mut self, id: String, handle: I) {
        self.insert(id, Pending::Invoke(handle));
    }

    /// Registers an `invoke` whose id is the decimal text of `id` (as [`InvocationIds`]
    /// makes them), without the text.
    pub fn add_numbered_invoke(&mut self, id: u64, handle: I) {
        self.numbered.insert(id, Pending::Invoke(handle));
    }

    /// Registers a server-to-client stream.
    pub fn add_stream(&mut self, id: String, handle: S) {
        self.insert(id, Pending::Stream(handle));
    }

    /// The handle of a pending stream.
    pub fn stream(&self, id: &str) -> Option<&S> {
        let pending = match number(id) {
            Some(n) => self.numbered.get(&n),
            None => self.named.get(id),
        };
        match pending? {
            Pending::Stream(s) => Some(s),
            Pending::Invoke(_) => None,
        }
    }

    /// Forgets a stream the caller cancelled, so later items for it are ignored. Returns the
    /// handle if the stream was still pending.
    pub fn cancel_stream(&mut self, id: &str) -> Option<S> {
        match self.remove(id)? {
            Pending::Stream(s) => Some(s),
            other => {
                self.insert(id.to_owned(), other);
                None
            }
        }
    }

    /// Removes an `invoke` whose invocation could not be sent.
    pub fn remove_invoke(&mut self, id: &str) -> Option<I> {
        match self.remove(id)? {
            Pending::Invoke(i) => Some(i),
            other => {
                self.insert(id.to_owned(), other);
                None
            }
        }
    }

    /// Routes a Completion to the call it ends.
    pub fn complete(&mut self, completion: Completion) -> Delivery<'_, I, S> {
        let Some(pending) = self.remove(&completion.invocation_id) else {
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
        match number(&item.invocation_id) {
            Some(n) => deliver_item(self.numbered.entry(n), item.item),
            None => deliver_item(self.named.entry(item.invocation_id), item.item),
        }
    }

    /// Takes every pending call, to fail them all when the connection ends.
    pub fn drain(&mut self) -> (Vec<I>, Vec<S>) {
        let mut invokes = Vec::new();
        let mut streams = Vec::new();
        let numbered = self.numbered.drain().map(|(_, p)| p);
        for pending in numbered.chain(self.named.drain().map(|(_, p)| p)) {
            match pending {
                Pending::Invoke(i) => invokes.push(i),
                Pending::Stream(s) => streams.push(s),
            }
        }
        (invokes, streams)
    }

    /// How many calls are waiting.
    pub fn len(&self) -> usize {
        self.numbered.len() + self.named.len()
    }

    /// Whether no call is waiting.
    pub fn is_empty(&self) -> bool {
        self.numbered.is_empty() && self.named.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::Value;

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
        let ids = InvocationIds::default();
        let got: Vec<String> = (0..3).map(|_| ids.next_id()).collect();
        assert_eq!(got, ["0", "1", "2"]);
    }

    #[test]
    fn a_numbered_invoke_is_completed_by_its_decimal_id_only() {
        let mut calls: PendingCalls<&str, Vec<i64>> = PendingCalls::default();
        calls.add_numbered_invoke(12, "a");
        assert!(matches!(
            calls.complete(completion("012", CompletionOutcome::Void)),
            Delivery::Unknown
        ));
        assert!(matches!(
            calls.complete(completion("12", CompletionOutcome::Void)),
            Delivery::InvokeFinished("a", Ok(None))
        ));
        assert!(calls.is_empty());
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
    fn a_stream_is_found_by_its_id_an_invoke_is_not() {
        let mut calls: PendingCalls<&str, &str> = PendingCalls::default();
        calls.add_stream("3".into(), "numbered");
        calls.add_stream("x".into(), "named");
        calls.add_invoke("4".into(), "invoke");
        assert_eq!(calls.stream("3"), Some(&"numbered"));
        assert_eq!(calls.stream("x"), Some(&"named"));
        assert_eq!(calls.stream("03"), None);
        assert_eq!(calls.stream("4"), None);
        calls.cancel_stream("3");
        assert_eq!(calls.stream("3"), None);
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
    fn ids_match_as_text_whether_numeric_or_not() {
        let mut calls: PendingCalls<u8, u8> = PendingCalls::default();
        calls.add_invoke("1".into(), 1);
        calls.add_invoke("a".into(), 2);
        calls.add_stream("18446744073709551616".into(), 3);
        for id in ["01", "+1", "1 ", "", "b"] {
            assert!(matches!(
                calls.complete(completion(id, CompletionOutcome::Void)),
                Delivery::Unknown
            ));
        }
        assert!(matches!(
            calls.stream_item(item("18446744073709551616", 1)),
            Delivery::StreamItem(3, _)
        ));
        assert!(matches!(
            calls.complete(completion("a", CompletionOutcome::Void)),
            Delivery::InvokeFinished(2, Ok(None))
        ));
        assert!(matches!(
            calls.complete(completion("1", CompletionOutcome::Void)),
            Delivery::InvokeFinished(1, Ok(None))
        ));
        assert_eq!(calls.len(), 1);
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
