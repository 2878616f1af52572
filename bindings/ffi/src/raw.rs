//! Invocations and sends over plain C functions, for the Kotlin layer's hot path.
//!
//! Every call of uniffi's generated Kotlin code allocates JNA structures (a call status, the
//! buffers), each with native memory that JNA tracks in a global map and frees from one
//! cleaner thread; at tens of thousands of calls a second that bookkeeping is most of a call's
//! cost. These functions take and fill only byte arrays, which JNA's direct mapping passes
//! without such structures:
//!
//! * [`hublink_raw_call`] submits a call described by one frame: the method name's length
//!   (`u32`, little-endian), its UTF-8 bytes, then the arguments as one MessagePack array;
//! * the outcomes are queued here and [`hublink_raw_next_outcomes`] copies them, many at once,
//!   into the caller's array: per call its id (`u64` LE), `0` (a value) or `1` (an error), the
//!   body's length (`u32` LE) and the body: the value in MessagePack, or the error's kind (its
//!   [`HubError`] variant's index), a status flag and the status (`u16` LE), then its text;
//! * [`hublink_raw_close`] ends a channel: calls are refused from then on, the outcomes queued
//!   until then are still read, and the read that finds it closed and empty forgets it.
//!
//! A channel is opened by [`HubConnection::open_raw_calls`](crate::HubConnection) and known by
//! an id in a registry, not by a pointer: a call on a closed or unknown id is refused, never a
//! use after free. No function panics across the boundary; a panic is an error code.

use std::collections::{HashMap, VecDeque};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, LazyLock, Mutex, MutexGuard, PoisonError, RwLock};

use hublink::{Argument, Payload, Value};

use crate::HubError;

/// Submitted; the outcome will be queued.
pub const SUBMITTED: i32 = 0;
/// No open channel has this id (closed, or never opened): nothing was submitted.
pub const CLOSED: i32 = -1;
/// The frame is not a method name and a MessagePack array of arguments: nothing was submitted.
pub const BAD_FRAME: i32 = -2;
/// A panic inside: nothing was submitted.
pub const FAILED: i32 = -3;

const VALUE: u8 = 0;
const ERROR: u8 = 1;
/// An outcome's bytes before its body: id, kind, body length.
const HEADER: usize = 8 + 1 + 4;

struct Channel {
    core: hublink::HubConnection,
    outcomes: Arc<Outcomes>,
}

#[derive(Default)]
struct Outcomes {
    queue: Mutex<Queue>,
    ready: Condvar,
}

#[derive(Default)]
struct Queue {
    /// Each entry is one encoded outcome, header included.
    entries: VecDeque<Vec<u8>>,
    closed: bool,
}

impl Outcomes {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn push(&self, id: u64, outcome: Result<Value, hublink::Error>) {
        let entry = encode_outcome(id, outcome);
        let mut queue = self.lock();
        if queue.closed {
            // Nobody reads any more; the Kotlin layer failed the calls still waiting.
            return;
        }
        queue.entries.push_back(entry);
        if queue.entries.len() == 1 {
            self.ready.notify_one();
        }
    }

    fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_all();
    }
}

fn encode_outcome(id: u64, outcome: Result<Value, hublink::Error>) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(&id.to_le_bytes());
    out.extend_from_slice(&[VALUE, 0, 0, 0, 0]);
    let encoded = match outcome {
        Ok(value) => hublink_proto::msgpack::write_value(&value, &mut out).map_err(|e| {
            out.truncate(HEADER);
            HubError::Protocol {
                reason: format!("the result cannot be passed on: {e}"),
                status: None,
            }
        }),
        Err(error) => Err(HubError::from(error)),
    };
    if let Err(error) = encoded {
        out[8] = ERROR;
        encode_error(&error, &mut out);
    }
    let body = u32::try_from(out.len() - HEADER).unwrap_or(u32::MAX);
    out[9..HEADER].copy_from_slice(&body.to_le_bytes());
    out
}

fn encode_error(error: &HubError, out: &mut Vec<u8>) {
    let (kind, reason, status) = match error {
        HubError::Negotiation { reason, status } => (0, reason, status),
        HubError::Transport { reason, status } => (1, reason, status),
        HubError::Handshake { reason, status } => (2, reason, status),
        HubError::Timeout { reason, status } => (3, reason, status),
        HubError::Hub { reason, status } => (4, reason, status),
        HubError::ConnectionClosed { reason, status } => (5, reason, status),
        HubError::InvalidState { reason, status } => (6, reason, status),
        HubError::InvalidArgument { reason, status } => (7, reason, status),
        HubError::Protocol { reason, status } => (8, reason, status),
        HubError::Cancelled { reason, status } => (9, reason, status),
        HubError::Other { reason, status } => (10, reason, status),
    };
    out.push(kind);
    out.push(u8::from(status.is_some()));
    out.extend_from_slice(&status.unwrap_or(0).to_le_bytes());
    out.extend_from_slice(reason.as_bytes());
}

static CHANNELS: LazyLock<RwLock<HashMap<u64, Arc<Channel>>>> = LazyLock::new(Default::default);
static LAST_ID: AtomicU64 = AtomicU64::new(0);

fn channel(id: u64) -> Option<Arc<Channel>> {
    CHANNELS
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .get(&id)
        .cloned()
}

/// Opens a channel for `core`'s calls; its id is never 0.
pub(crate) fn open(core: hublink::HubConnection) -> u64 {
    let id = LAST_ID.fetch_add(1, Ordering::Relaxed) + 1;
    let channel = Arc::new(Channel {
        core,
        outcomes: Arc::default(),
    });
    CHANNELS
        .write()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(id, channel);
    id
}

/// Closes channel `id`, if open: calls on it are refused, reads return what is queued.
pub(crate) fn close(id: u64) {
    if let Some(channel) = channel(id) {
        channel.outcomes.close();
    }
}

fn forget(id: u64) {
    CHANNELS
        .write()
        .unwrap_or_else(PoisonError::into_inner)
        .remove(&id);
}

/// The method name and the arguments of a frame, or `None` when it is not one.
fn parse_frame(frame: &[u8]) -> Option<(&str, Vec<Argument>)> {
    let len = u32::from_le_bytes(frame.get(..4)?.try_into().ok()?) as usize;
    let method = std::str::from_utf8(frame.get(4..4usize.checked_add(len)?)?).ok()?;
    let Value::Array(values) = hublink_proto::msgpack::read_value(&frame[4 + len..]).ok()? else {
        return None;
    };
    let arguments = values
        .into_iter()
        .map(|v| Argument::Value(Payload::Value(v)))
        .collect();
    Some((method, arguments))
}

fn submit(channel_id: u64, call_id: u64, send: bool, frame: &[u8]) -> i32 {
    let Some(channel) = channel(channel_id) else {
        return CLOSED;
    };
    let Some((method, arguments)) = parse_frame(frame) else {
        return BAD_FRAME;
    };
    let outcomes = channel.outcomes.clone();
    if outcomes.lock().closed {
        return CLOSED;
    }
    if send {
        channel.core.send_then(method, arguments, move |outcome| {
            outcomes.push(call_id, outcome.map(|()| Value::Null))
        });
    } else {
        channel.core.invoke_then(method, arguments, move |outcome| {
            outcomes.push(call_id, outcome)
        });
    }
    SUBMITTED
}

/// Submits call `call_id` (an invocation, or a send when `send` is not 0) on channel
/// `channel`, described by the `len` bytes at `frame`; its outcome is queued for
/// [`hublink_raw_next_outcomes`]. Returns [`SUBMITTED`], or [`CLOSED`], [`BAD_FRAME`] or
/// [`FAILED`] when nothing was submitted (and nothing will be queued).
///
/// # Safety
/// `frame` must point to `len` readable bytes (or `len` be 0).
#[no_mangle]
pub unsafe extern "C" fn hublink_raw_call(
    channel: u64,
    call_id: u64,
    send: i32,
    frame: *const u8,
    len: u64,
) -> i32 {
    let Ok(len) = usize::try_from(len) else {
        return BAD_FRAME;
    };
    if frame.is_null() && len > 0 {
        return BAD_FRAME;
    }
    let frame: &[u8] = if len == 0 {
        &[]
    } else {
        // SAFETY: the caller passes `len` readable bytes at `frame`.
        unsafe { std::slice::from_raw_parts(frame, len) }
    };
    catch_unwind(|| submit(channel, call_id, send != 0, frame)).unwrap_or(FAILED)
}

/// Waits until channel `channel` has outcomes queued, then moves as many whole outcomes as fit
/// into the `capacity` bytes at `out` (the format is in the module's documentation). Returns
/// the bytes written; 0 once the channel is closed and empty (it is then forgotten) or unknown;
/// `-n` when the next
/// outcome alone needs `n` bytes, more than `capacity` (nothing is taken).
///
/// # Safety
/// `out` must point to `capacity` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn hublink_raw_next_outcomes(
    channel_id: u64,
    out: *mut u8,
    capacity: u64,
) -> i64 {
    let Some(channel) = channel(channel_id) else {
        return 0;
    };
    let capacity = if out.is_null() {
        0
    } else {
        usize::try_from(capacity).unwrap_or(usize::MAX)
    };
    let outcomes = &channel.outcomes;
    let taken = catch_unwind(AssertUnwindSafe(|| {
        let mut queue = outcomes.lock();
        while queue.entries.is_empty() && !queue.closed {
            queue = outcomes
                .ready
                .wait(queue)
                .unwrap_or_else(PoisonError::into_inner);
        }
        let mut written = 0usize;
        while let Some(entry) = queue.entries.front() {
            if written + entry.len() > capacity {
                if written == 0 {
                    return -i64::try_from(entry.len()).unwrap_or(i64::MAX);
                }
                break;
            }
            // SAFETY: `written + entry.len() <= capacity`, and the caller passes `capacity`
            // writable bytes at `out`.
            unsafe {
                std::ptr::copy_nonoverlapping(entry.as_ptr(), out.add(written), entry.len());
            }
            written += entry.len();
            queue.entries.pop_front();
        }
        i64::try_from(written).unwrap_or(i64::MAX)
    }));
    let taken = taken.unwrap_or(0);
    if taken == 0 {
        forget(channel_id);
    }
    taken
}

/// Closes channel `channel` (as the connection's end does): further calls on it are refused; a
/// waiting [`hublink_raw_next_outcomes`] returns what is queued, then 0.
#[no_mangle]
pub extern "C" fn hublink_raw_close(channel: u64) {
    let _ = catch_unwind(|| close(channel));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(method: &str, args: &Value) -> Vec<u8> {
        let mut out = (method.len() as u32).to_le_bytes().to_vec();
        out.extend_from_slice(method.as_bytes());
        hublink_proto::msgpack::write_value(args, &mut out).unwrap();
        out
    }

    #[test]
    fn a_frame_is_a_method_and_an_argument_array() {
        let good = frame("Echo", &Value::Array(vec![Value::String("x".into())]));
        let (method, arguments) = parse_frame(&good).unwrap();
        assert_eq!(method, "Echo");
        assert_eq!(arguments.len(), 1);
        assert!(parse_frame(&[]).is_none());
        assert!(parse_frame(&good[..6]).is_none(), "a cut name");
        assert!(
            parse_frame(&good[..good.len() - 1]).is_none(),
            "a cut value"
        );
        assert!(
            parse_frame(&frame("Echo", &Value::Int(1))).is_none(),
            "not an array"
        );
        let mut bad_name = good.clone();
        bad_name[4] = 0xff;
        assert!(parse_frame(&bad_name).is_none(), "not UTF-8");
        let mut long_name = good;
        long_name[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(parse_frame(&long_name).is_none());
    }

    #[test]
    fn outcomes_are_read_whole_and_in_order() {
        let outcomes = Outcomes::default();
        outcomes.push(7, Ok(Value::String("x".into())));
        outcomes.push(8, Err(hublink::Error::new(hublink::ErrorKind::Hub, "boom")));
        let entries: Vec<_> = outcomes.lock().entries.iter().cloned().collect();
        assert_eq!(&entries[0][..8], &7u64.to_le_bytes());
        assert_eq!(entries[0][8], VALUE);
        assert_eq!(&entries[0][HEADER..], &[0xa1, b'x']);
        assert_eq!(entries[1][8], ERROR);
        assert_eq!(&entries[1][HEADER..HEADER + 4], &[4, 0, 0, 0]);
        assert!(entries[1].ends_with(b"boom"));
    }

    #[test]
    fn a_closed_or_unknown_channel_refuses_calls_and_ends_reads() {
        let options = hublink::ConnectionOptions::new("http://localhost:1/hub");
        let id = open(hublink::HubConnection::new(options).unwrap());
        channel(id).unwrap().outcomes.push(1, Ok(Value::Null));
        channel(id).unwrap().outcomes.push(2, Ok(Value::Null));
        close(id);
        let good = frame("Echo", &Value::Array(vec![]));
        let mut out = [0u8; 64];
        // SAFETY: valid pointers and lengths.
        unsafe {
            assert_eq!(
                hublink_raw_call(id, 3, 0, good.as_ptr(), good.len() as u64),
                CLOSED
            );
            assert_eq!(hublink_raw_call(0, 3, 0, std::ptr::null(), 5), BAD_FRAME);
            let one = HEADER as i64 + 1;
            assert_eq!(
                hublink_raw_next_outcomes(id, out.as_mut_ptr(), 4),
                -one,
                "too small"
            );
            assert_eq!(
                hublink_raw_next_outcomes(id, out.as_mut_ptr(), one as u64 + 3),
                one
            );
            assert_eq!(hublink_raw_next_outcomes(id, out.as_mut_ptr(), 64), one);
            assert_eq!(hublink_raw_next_outcomes(id, out.as_mut_ptr(), 64), 0);
        }
        assert!(channel(id).is_none(), "forgotten once read to its end");
        // SAFETY: as above.
        unsafe {
            assert_eq!(
                hublink_raw_call(id, 3, 0, good.as_ptr(), good.len() as u64),
                CLOSED
            );
            assert_eq!(hublink_raw_next_outcomes(id, out.as_mut_ptr(), 64), 0);
        }
    }
}
