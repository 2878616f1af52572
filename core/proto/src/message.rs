//! The nine hub messages and the payloads they carry.

use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::error::ProtocolError;
use super::value::Value;
use super::{json, msgpack};

/// Message headers: string pairs in the order they were received or added.
pub type Headers = Vec<(String, String)>;

/// One argument, stream item or result, as it travels in a hub message.
///
/// A decoded message keeps each payload as the encoded bytes of exactly that value, sliced
/// from the received frame without copying, so a typed caller deserializes it once, straight
/// into its own type. Bindings turn it into a [`Value`] instead.
///
/// ```
/// use hublink_proto::message::Payload;
/// let p = Payload::json(&vec![1, 2, 3]).unwrap();
/// let back: Vec<u32> = p.deserialize().unwrap();
/// assert_eq!(back, [1, 2, 3]);
/// ```
#[derive(Debug, Clone)]
pub enum Payload {
    /// The JSON text of one value.
    Json(Bytes),
    /// The MessagePack encoding of one value.
    MessagePack(Bytes),
    /// A dynamic value, encoded by whichever protocol sends it.
    Value(Value),
}

impl Payload {
    /// Serializes `value` as JSON text now, so sending it later costs only a copy.
    pub fn json<T: Serialize + ?Sized>(value: &T) -> Result<Payload, ProtocolError> {
        serde_json::to_vec(value)
            .map(|v| Payload::Json(v.into()))
            .map_err(|e| ProtocolError::Encode(e.to_string()))
    }

    /// Serializes `value` as MessagePack now (structs as maps with their field names, like
    /// the .NET and JavaScript servers expect).
    pub fn messagepack<T: Serialize + ?Sized>(value: &T) -> Result<Payload, ProtocolError> {
        let mut out = Vec::new();
        msgpack::write_serialized(value, &mut out)?;
        Ok(Payload::MessagePack(out.into()))
    }

    /// Deserializes the payload into `T`.
    pub fn deserialize<T: DeserializeOwned>(&self) -> Result<T, ProtocolError> {
        match self {
            Payload::Json(text) => {
                serde_json::from_slice(text).map_err(|e| ProtocolError::Payload(e.to_string()))
            }
            #[cfg(feature = "messagepack")]
            Payload::MessagePack(bytes) => {
                rmp_serde::from_slice(bytes).map_err(|e| ProtocolError::Payload(e.to_string()))
            }
            #[cfg(not(feature = "messagepack"))]
            Payload::MessagePack(_) => Err(ProtocolError::Encode(msgpack::UNAVAILABLE.into())),
            #[cfg(feature = "messagepack")]
            Payload::Value(value) => {
                let mut bytes = Vec::new();
                msgpack::write_value(value, &mut bytes)?;
                rmp_serde::from_slice(&bytes).map_err(|e| ProtocolError::Payload(e.to_string()))
            }
            // Without MessagePack, through JSON (which has no binary or extension values).
            #[cfg(not(feature = "messagepack"))]
            Payload::Value(value) => {
                let text =
                    serde_json::to_vec(value).map_err(|e| ProtocolError::Encode(e.to_string()))?;
                serde_json::from_slice(&text).map_err(|e| ProtocolError::Payload(e.to_string()))
            }
        }
    }

    /// The payload as a dynamic [`Value`].
    pub fn to_value(&self) -> Result<Value, ProtocolError> {
        match self {
            Payload::Json(text) => json::read_value(text),
            Payload::MessagePack(bytes) => msgpack::read_value(bytes),
            Payload::Value(value) => Ok(value.clone()),
        }
    }

    /// Whether both payloads hold the same value, whatever their encodings (numbers compare
    /// by value: JSON `1.5e3` is MessagePack `1500`).
    pub fn same_value(&self, other: &Payload) -> bool {
        match (self.to_value(), other.to_value()) {
            (Ok(a), Ok(b)) => a.same_as(&b),
            _ => false,
        }
    }
}

impl From<Value> for Payload {
    fn from(value: Value) -> Payload {
        Payload::Value(value)
    }
}

/// Invokes a method on the other side (type 1). Without an id it is fire-and-forget.
#[derive(Debug, Clone)]
pub struct Invocation {
    /// `None` for a non-blocking invocation: the callee must not answer.
    pub invocation_id: Option<String>,
    /// The method name.
    pub target: String,
    /// The arguments, without the upload streams (those are named in `stream_ids`).
    pub arguments: Vec<Payload>,
    /// Ids of client-to-server streams that stand for further arguments. `None` and an empty
    /// list mean the same; they differ only on the wire (MessagePack writes 5 or 6 elements).
    pub stream_ids: Option<Vec<String>>,
    /// Message headers.
    pub headers: Headers,
}

/// Starts a server-to-client stream (type 4).
#[derive(Debug, Clone)]
pub struct StreamInvocation {
    /// The id every StreamItem and the Completion of this stream carry.
    pub invocation_id: String,
    /// The method name.
    pub target: String,
    /// The arguments, without the upload streams.
    pub arguments: Vec<Payload>,
    /// Ids of client-to-server streams, as in [`Invocation::stream_ids`].
    pub stream_ids: Option<Vec<String>>,
    /// Message headers.
    pub headers: Headers,
}

/// One item of a stream (type 2), in either direction.
#[derive(Debug, Clone)]
pub struct StreamItem {
    /// The streaming invocation's id, or an upload stream id.
    pub invocation_id: String,
    /// The item.
    pub item: Payload,
    /// Message headers.
    pub headers: Headers,
}

/// How an invocation or stream ended.
#[derive(Debug, Clone)]
pub enum CompletionOutcome {
    /// Finished without a value (a void method, or the end of a stream).
    Void,
    /// Finished with a value, which may be null.
    Result(Payload),
    /// Failed with this text.
    Error(String),
}

/// Ends an invocation or a stream (type 3).
#[derive(Debug, Clone)]
pub struct Completion {
    /// The id of the invocation or stream that ended.
    pub invocation_id: String,
    /// Result, void, or error.
    pub outcome: CompletionOutcome,
    /// Message headers.
    pub headers: Headers,
}

/// Asks the other side to stop a stream (type 5).
#[derive(Debug, Clone)]
pub struct CancelInvocation {
    /// The stream's invocation id.
    pub invocation_id: String,
    /// Message headers.
    pub headers: Headers,
}

/// Announces the end of the connection (type 7).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Close {
    /// Why the connection closes, if it is an error.
    pub error: Option<String>,
    /// Whether a client with automatic reconnect should reconnect. `None` is not sent.
    pub allow_reconnect: Option<bool>,
}

/// A hub message of any of the nine types.
#[derive(Debug, Clone)]
pub enum HubMessage {
    /// Type 1.
    Invocation(Invocation),
    /// Type 2.
    StreamItem(StreamItem),
    /// Type 3.
    Completion(Completion),
    /// Type 4.
    StreamInvocation(StreamInvocation),
    /// Type 5.
    CancelInvocation(CancelInvocation),
    /// Type 6.
    Ping,
    /// Type 7.
    Close(Close),
    /// Type 8: the highest sequence id the sender has received (stateful reconnect).
    Ack {
        /// The acknowledged sequence id.
        sequence_id: u64,
    },
    /// Type 9: the sequence id of the next message the sender will (re)send.
    Sequence {
        /// The sequence id.
        sequence_id: u64,
    },
}

impl HubMessage {
    /// The message type number on the wire.
    pub fn type_id(&self) -> u8 {
        match self {
            HubMessage::Invocation(_) => 1,
            HubMessage::StreamItem(_) => 2,
            HubMessage::Completion(_) => 3,
            HubMessage::StreamInvocation(_) => 4,
            HubMessage::CancelInvocation(_) => 5,
            HubMessage::Ping => 6,
            HubMessage::Close(_) => 7,
            HubMessage::Ack { .. } => 8,
            HubMessage::Sequence { .. } => 9,
        }
    }

    /// Whether stateful reconnect numbers, buffers and replays this message (types 1 to 5).
    pub fn is_sequenced(&self) -> bool {
        self.type_id() <= 5
    }

    /// Whether two messages are the same, comparing payloads by value whatever their encoding.
    pub fn same_as(&self, other: &HubMessage) -> bool {
        fn same_args(a: &[Payload], b: &[Payload]) -> bool {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.same_value(y))
        }
        fn same_ids(a: &Option<Vec<String>>, b: &Option<Vec<String>>) -> bool {
            a.as_deref().unwrap_or_default() == b.as_deref().unwrap_or_default()
        }
        use HubMessage as M;
        match (self, other) {
            (M::Invocation(a), M::Invocation(b)) => {
                a.invocation_id == b.invocation_id
                    && a.target == b.target
                    && same_args(&a.arguments, &b.arguments)
                    && same_ids(&a.stream_ids, &b.stream_ids)
                    && a.headers == b.headers
            }
            (M::StreamInvocation(a), M::StreamInvocation(b)) => {
                a.invocation_id == b.invocation_id
                    && a.target == b.target
                    && same_args(&a.arguments, &b.arguments)
                    && same_ids(&a.stream_ids, &b.stream_ids)
                    && a.headers == b.headers
            }
            (M::StreamItem(a), M::StreamItem(b)) => {
                a.invocation_id == b.invocation_id
                    && a.item.same_value(&b.item)
                    && a.headers == b.headers
            }
            (M::Completion(a), M::Completion(b)) => {
                a.invocation_id == b.invocation_id
                    && a.headers == b.headers
                    && match (&a.outcome, &b.outcome) {
                        (CompletionOutcome::Void, CompletionOutcome::Void) => true,
                        (CompletionOutcome::Result(x), CompletionOutcome::Result(y)) => {
                            x.same_value(y)
                        }
                        (CompletionOutcome::Error(x), CompletionOutcome::Error(y)) => x == y,
                        _ => false,
                    }
            }
            (M::CancelInvocation(a), M::CancelInvocation(b)) => {
                a.invocation_id == b.invocation_id && a.headers == b.headers
            }
            (M::Ping, M::Ping) => true,
            (M::Close(a), M::Close(b)) => a == b,
            (M::Ack { sequence_id: a }, M::Ack { sequence_id: b }) => a == b,
            (M::Sequence { sequence_id: a }, M::Sequence { sequence_id: b }) => a == b,
            _ => false,
        }
    }
}
