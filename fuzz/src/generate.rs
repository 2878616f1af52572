//! Structure-aware inputs: transport messages built from valid hub messages, messages cut
//! short and raw bytes, as a fuzzer picks them (`arbitrary`).

use arbitrary::Arbitrary;
use hublink_proto::{
    CancelInvocation, Close, Completion, CompletionOutcome, HubMessage, HubProtocol, Invocation,
    StreamInvocation, StreamItem, Value,
};

/// How deep generated values nest: deeper parts become null (the decoders' own depth limits
/// are reached through the raw bytes parts).
const MAX_DEPTH: usize = 8;

/// A value both protocols can carry.
#[derive(Arbitrary, Debug)]
pub enum GeneratedValue {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Text(String),
    Binary(Vec<u8>),
    Array(Vec<GeneratedValue>),
    Map(Vec<(String, GeneratedValue)>),
}

impl GeneratedValue {
    /// The value, with what nests deeper than [`MAX_DEPTH`] as null.
    pub fn to_value(&self) -> Value {
        self.to_value_at(0)
    }

    fn to_value_at(&self, depth: usize) -> Value {
        if depth >= MAX_DEPTH {
            return Value::Null;
        }
        match self {
            GeneratedValue::Null => Value::Null,
            GeneratedValue::Bool(b) => Value::Bool(*b),
            GeneratedValue::Int(n) => Value::Int(*n),
            GeneratedValue::UInt(n) => Value::from_u64(*n),
            GeneratedValue::Float(f) => Value::F64(*f),
            GeneratedValue::Text(s) => Value::String(s.clone()),
            GeneratedValue::Binary(b) => Value::Binary(b.clone()),
            GeneratedValue::Array(items) => {
                Value::Array(items.iter().map(|v| v.to_value_at(depth + 1)).collect())
            }
            GeneratedValue::Map(entries) => Value::Map(
                entries
                    .iter()
                    .map(|(k, v)| (Value::String(k.clone()), v.to_value_at(depth + 1)))
                    .collect(),
            ),
        }
    }
}

/// An invocation id out of a few (0–15), so that the messages of one input refer to each other
/// and to the calls the driver target makes.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub struct SmallId(pub u8);

impl SmallId {
    /// The id's text.
    pub fn text(self) -> String {
        (self.0 % 16).to_string()
    }
}

/// A hub message a server may send (and a few it may not).
#[derive(Arbitrary, Debug)]
pub enum GeneratedMessage {
    Invocation {
        id: Option<SmallId>,
        target: String,
        arguments: Vec<GeneratedValue>,
    },
    StreamItem {
        id: SmallId,
        item: GeneratedValue,
    },
    CompletionResult {
        id: SmallId,
        result: GeneratedValue,
    },
    CompletionError {
        id: SmallId,
        error: String,
    },
    CompletionVoid {
        id: SmallId,
    },
    StreamInvocation {
        id: SmallId,
        target: String,
    },
    CancelInvocation {
        id: SmallId,
    },
    Ping,
    Close {
        error: Option<String>,
        allow_reconnect: Option<bool>,
    },
    Ack {
        sequence_id: u64,
    },
    Sequence {
        sequence_id: u64,
    },
}

impl GeneratedMessage {
    /// The message, or `None` when a value does not fit the protocol (JSON has no NaN).
    pub fn to_message(&self, protocol: HubProtocol) -> Option<HubMessage> {
        let payload = |value: &GeneratedValue| protocol.payload(&value.to_value()).ok();
        Some(match self {
            GeneratedMessage::Invocation {
                id,
                target,
                arguments,
            } => HubMessage::Invocation(Invocation {
                invocation_id: id.map(SmallId::text),
                target: target.clone(),
                arguments: arguments.iter().map(payload).collect::<Option<_>>()?,
                stream_ids: None,
                headers: vec![],
            }),
            GeneratedMessage::StreamItem { id, item } => HubMessage::StreamItem(StreamItem {
                invocation_id: id.text(),
                item: payload(item)?,
                headers: vec![],
            }),
            GeneratedMessage::CompletionResult { id, result } => {
                completion(*id, CompletionOutcome::Result(payload(result)?))
            }
            GeneratedMessage::CompletionError { id, error } => {
                completion(*id, CompletionOutcome::Error(error.clone()))
            }
            GeneratedMessage::CompletionVoid { id } => completion(*id, CompletionOutcome::Void),
            GeneratedMessage::StreamInvocation { id, target } => {
                HubMessage::StreamInvocation(StreamInvocation {
                    invocation_id: id.text(),
                    target: target.clone(),
                    arguments: vec![],
                    stream_ids: None,
                    headers: vec![],
                })
            }
            GeneratedMessage::CancelInvocation { id } => {
                HubMessage::CancelInvocation(CancelInvocation {
                    invocation_id: id.text(),
                    headers: vec![],
                })
            }
            GeneratedMessage::Ping => HubMessage::Ping,
            GeneratedMessage::Close {
                error,
                allow_reconnect,
            } => HubMessage::Close(Close {
                error: error.clone(),
                allow_reconnect: *allow_reconnect,
            }),
            GeneratedMessage::Ack { sequence_id } => HubMessage::Ack {
                sequence_id: *sequence_id,
            },
            GeneratedMessage::Sequence { sequence_id } => HubMessage::Sequence {
                sequence_id: *sequence_id,
            },
        })
    }
}

fn completion(id: SmallId, outcome: CompletionOutcome) -> HubMessage {
    HubMessage::Completion(Completion {
        invocation_id: id.text(),
        outcome,
        headers: vec![],
    })
}

/// One part of a transport message.
#[derive(Arbitrary, Debug)]
pub enum Part {
    /// A whole hub message, framed.
    Message(GeneratedMessage),
    /// The first `keep` bytes of a framed hub message (modulo its length).
    Truncated(GeneratedMessage, u16),
    /// Anything.
    Bytes(Vec<u8>),
}

/// A transport message (a WebSocket message, an SSE event, a poll's body) as parts.
#[derive(Arbitrary, Debug)]
pub struct GeneratedTransportMessage {
    pub parts: Vec<Part>,
}

impl GeneratedTransportMessage {
    /// The bytes, with the parts framed in `protocol`.
    pub fn to_bytes(&self, protocol: HubProtocol) -> Vec<u8> {
        let mut out = Vec::new();
        for part in &self.parts {
            match part {
                Part::Message(message) => {
                    if let Some(message) = message.to_message(protocol) {
                        write(protocol, &message, &mut out);
                    }
                }
                Part::Truncated(message, keep) => {
                    if let Some(message) = message.to_message(protocol) {
                        let mut framed = Vec::new();
                        write(protocol, &message, &mut framed);
                        framed.truncate(usize::from(*keep) % framed.len().max(1));
                        out.extend_from_slice(&framed);
                    }
                }
                Part::Bytes(bytes) => out.extend_from_slice(bytes),
            }
        }
        out
    }
}

fn write(protocol: HubProtocol, message: &HubMessage, out: &mut Vec<u8>) {
    // A message the writer refuses (an empty id in JSON) is left out.
    let start = out.len();
    if protocol.write_message(message, out).is_err() {
        out.truncate(start);
    }
}
