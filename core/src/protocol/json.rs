//! The JSON hub protocol: one JSON object per message, each followed by 0x1E.

use std::fmt;

use bytes::Bytes;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

use super::error::ProtocolError;
use super::message::*;
use super::msgpack;
use super::value::Value;

/// The record separator that ends every JSON message.
pub const RECORD_SEPARATOR: u8 = 0x1e;

/// Writes one message followed by the record separator.
pub fn write_message(message: &HubMessage, out: &mut Vec<u8>) -> Result<(), ProtocolError> {
    out.extend_from_slice(b"{\"type\":");
    out.extend_from_slice(itoa_u8(message.type_id()).as_bytes());
    match message {
        HubMessage::Invocation(m) => {
            if let Some(id) = &m.invocation_id {
                write_field_str(out, "invocationId", id);
            }
            write_call(out, &m.target, &m.arguments, &m.stream_ids)?;
            write_headers(out, &m.headers);
        }
        HubMessage::StreamInvocation(m) => {
            write_field_str(out, "invocationId", &m.invocation_id);
            write_call(out, &m.target, &m.arguments, &m.stream_ids)?;
            write_headers(out, &m.headers);
        }
        HubMessage::StreamItem(m) => {
            write_field_str(out, "invocationId", &m.invocation_id);
            out.extend_from_slice(b",\"item\":");
            write_payload(out, &m.item)?;
            write_headers(out, &m.headers);
        }
        HubMessage::Completion(m) => {
            write_field_str(out, "invocationId", &m.invocation_id);
            match &m.outcome {
                CompletionOutcome::Void => {}
                CompletionOutcome::Result(p) => {
                    out.extend_from_slice(b",\"result\":");
                    write_payload(out, p)?;
                }
                CompletionOutcome::Error(e) => write_field_str(out, "error", e),
            }
            write_headers(out, &m.headers);
        }
        HubMessage::CancelInvocation(m) => {
            write_field_str(out, "invocationId", &m.invocation_id);
            write_headers(out, &m.headers);
        }
        HubMessage::Ping => {}
        HubMessage::Close(c) => {
            if let Some(e) = &c.error {
                write_field_str(out, "error", e);
            }
            if let Some(allow) = c.allow_reconnect {
                out.extend_from_slice(b",\"allowReconnect\":");
                out.extend_from_slice(if allow { b"true" } else { b"false" });
            }
        }
        HubMessage::Ack { sequence_id } | HubMessage::Sequence { sequence_id } => {
            out.extend_from_slice(b",\"sequenceId\":");
            out.extend_from_slice(sequence_id.to_string().as_bytes());
        }
    }
    out.push(b'}');
    out.push(RECORD_SEPARATOR);
    Ok(())
}

fn itoa_u8(n: u8) -> &'static str {
    ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"][usize::from(n)]
}

fn write_str(out: &mut Vec<u8>, s: &str) {
    serde_json::to_writer(&mut *out, s).expect("writing a string to a Vec cannot fail");
}

fn write_field_str(out: &mut Vec<u8>, name: &str, value: &str) {
    out.extend_from_slice(b",\"");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\":");
    write_str(out, value);
}

fn write_call(
    out: &mut Vec<u8>,
    target: &str,
    arguments: &[Payload],
    stream_ids: &Option<Vec<String>>,
) -> Result<(), ProtocolError> {
    write_field_str(out, "target", target);
    out.extend_from_slice(b",\"arguments\":[");
    for (i, arg) in arguments.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_payload(out, arg)?;
    }
    out.push(b']');
    if let Some(ids) = stream_ids {
        out.extend_from_slice(b",\"streamIds\":[");
        for (i, id) in ids.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write_str(out, id);
        }
        out.push(b']');
    }
    Ok(())
}

fn write_headers(out: &mut Vec<u8>, headers: &Headers) {
    if headers.is_empty() {
        return;
    }
    out.extend_from_slice(b",\"headers\":{");
    for (i, (k, v)) in headers.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_str(out, k);
        out.push(b':');
        write_str(out, v);
    }
    out.push(b'}');
}

/// Writes a payload as JSON text, transcoding it when it was encoded for the other protocol.
pub fn write_payload(out: &mut Vec<u8>, payload: &Payload) -> Result<(), ProtocolError> {
    match payload {
        Payload::Json(text) => {
            out.extend_from_slice(text);
            Ok(())
        }
        Payload::Value(v) => write_value(v, out),
        Payload::MessagePack(bytes) => write_value(&msgpack::read_value(bytes)?, out),
    }
}

/// Writes a [`Value`] as JSON: bytes as base64 and timestamps as ISO-8601 text, as .NET does.
pub fn write_value(value: &Value, out: &mut Vec<u8>) -> Result<(), ProtocolError> {
    serde_json::to_writer(&mut *out, value).map_err(|e| ProtocolError::Encode(e.to_string()))
}

/// Reads the JSON text of one value into a [`Value`], keeping the order of object keys.
pub fn read_value(text: &[u8]) -> Result<Value, ProtocolError> {
    serde_json::from_slice(text).map_err(|e| ProtocolError::Payload(e.to_string()))
}

/// The fields of any JSON hub message, borrowed from the received text.
///
/// Scalars stay raw until the message type is known, so a field of the wrong type gets the
/// official client's error for that message type rather than a generic one.
#[derive(Deserialize)]
struct WireMessage<'a> {
    #[serde(rename = "type", borrow)]
    message_type: Option<&'a RawValue>,
    #[serde(rename = "invocationId", borrow)]
    invocation_id: Option<&'a RawValue>,
    #[serde(borrow)]
    target: Option<&'a RawValue>,
    #[serde(borrow)]
    arguments: Option<Vec<&'a RawValue>>,
    #[serde(rename = "streamIds", borrow)]
    stream_ids: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    item: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    result: Option<&'a RawValue>,
    #[serde(borrow)]
    error: Option<&'a RawValue>,
    #[serde(borrow)]
    headers: Option<&'a RawValue>,
    #[serde(rename = "allowReconnect", borrow)]
    allow_reconnect: Option<&'a RawValue>,
    #[serde(rename = "sequenceId", borrow)]
    sequence_id: Option<&'a RawValue>,
}

/// A raw field read as `T`, `None` when it has another type.
fn field<T: for<'de> Deserialize<'de>>(raw: Option<&RawValue>) -> Option<Option<T>> {
    match raw {
        None => Some(None),
        Some(raw) => serde_json::from_str(raw.get()).ok().map(Some),
    }
}

/// Keeps `null` as a present value: a `"result": null` is a result, not a void completion.
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&RawValue>::deserialize(d).map(Some)
}

fn ordered_headers(raw: Option<&RawValue>) -> Option<Headers> {
    struct OrderedHeaders(Headers);
    impl<'de> Deserialize<'de> for OrderedHeaders {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct HeadersVisitor;
            impl<'de> Visitor<'de> for HeadersVisitor {
                type Value = Headers;
                fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                    f.write_str("an object of string values")
                }
                fn visit_unit<E>(self) -> Result<Headers, E> {
                    Ok(Headers::new())
                }
                fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Headers, A::Error> {
                    let mut headers = Headers::new();
                    while let Some(entry) = map.next_entry::<String, String>()? {
                        headers.push(entry);
                    }
                    Ok(headers)
                }
            }
            d.deserialize_any(HeadersVisitor).map(OrderedHeaders)
        }
    }
    match raw {
        None => Some(Headers::new()),
        Some(raw) => serde_json::from_str::<OrderedHeaders>(raw.get())
            .ok()
            .map(|h| h.0),
    }
}

/// Parses one record (the text between separators, without the 0x1E).
///
/// Returns `Ok(None)` for a message type this client does not know: future protocol versions
/// may add types, and the official clients ignore them.
pub fn parse_record(record: &Bytes) -> Result<Option<HubMessage>, ProtocolError> {
    // serde's derived struct visitor would also read a JSON array as the fields in order.
    if record.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(ProtocolError::invalid("Invalid payload."));
    }
    // serde_json skips unknown string properties without checking their UTF-8: check the
    // whole record first (parsing from the checked text keeps the payload slices in place).
    let text = std::str::from_utf8(record)
        .map_err(|_| ProtocolError::invalid("Invalid payload: the message is not valid UTF-8."))?;
    let wire: WireMessage = serde_json::from_str(text).map_err(|e| {
        ProtocolError::invalid(if e.is_data() {
            "Invalid payload.".to_owned()
        } else {
            format!("Invalid payload: {e}.")
        })
    })?;
    let payload = |raw: &RawValue| Payload::Json(record.slice_ref(raw.get().as_bytes()));
    let message_type = wire
        .message_type
        .and_then(|raw| serde_json::from_str::<u64>(raw.get()).ok())
        .ok_or_else(|| ProtocolError::invalid("Invalid payload."))?;
    let kind = match message_type {
        1 => "Invocation",
        2 => "StreamItem",
        3 => "Completion",
        4 => "StreamInvocation",
        5 => "CancelInvocation",
        6 => "Ping",
        7 => "Close",
        8 => "Ack",
        9 => "Sequence",
        _ => return Ok(None),
    };
    let invalid = || invalid_for(kind);
    let non_empty = |raw: Option<&RawValue>| -> Result<Option<String>, ProtocolError> {
        match field::<String>(raw).ok_or_else(invalid)? {
            Some(s) if s.is_empty() => Err(invalid()),
            other => Ok(other),
        }
    };
    let required_id = || non_empty(wire.invocation_id)?.ok_or_else(invalid);
    let headers = || ordered_headers(wire.headers).ok_or_else(invalid);
    let message = match message_type {
        1 | 4 => {
            let target = non_empty(wire.target)?.ok_or_else(invalid)?;
            let arguments: Vec<Payload> = wire
                .arguments
                .as_ref()
                .ok_or_else(invalid)?
                .iter()
                .map(|raw| payload(raw))
                .collect();
            let stream_ids = field::<Vec<String>>(wire.stream_ids).ok_or_else(invalid)?;
            if message_type == 1 {
                HubMessage::Invocation(Invocation {
                    invocation_id: non_empty(wire.invocation_id)?,
                    target,
                    arguments,
                    stream_ids,
                    headers: headers()?,
                })
            } else {
                HubMessage::StreamInvocation(StreamInvocation {
                    invocation_id: required_id()?,
                    target,
                    arguments,
                    stream_ids,
                    headers: headers()?,
                })
            }
        }
        2 => HubMessage::StreamItem(StreamItem {
            invocation_id: required_id()?,
            item: payload(wire.item.ok_or_else(invalid)?),
            headers: headers()?,
        }),
        3 => {
            let invocation_id = required_id()?;
            let error = field::<Option<String>>(wire.error)
                .ok_or_else(invalid)?
                .flatten()
                .filter(|e| !e.is_empty());
            let outcome = match (error, wire.result) {
                (Some(_), Some(result)) if is_truthy(result) => return Err(invalid()),
                (Some(error), _) => CompletionOutcome::Error(error),
                (None, Some(result)) => CompletionOutcome::Result(payload(result)),
                (None, None) => CompletionOutcome::Void,
            };
            HubMessage::Completion(Completion {
                invocation_id,
                outcome,
                headers: headers()?,
            })
        }
        5 => HubMessage::CancelInvocation(CancelInvocation {
            invocation_id: required_id()?,
            headers: headers()?,
        }),
        6 => HubMessage::Ping,
        7 => HubMessage::Close(Close {
            error: field::<Option<String>>(wire.error)
                .ok_or_else(invalid)?
                .flatten()
                .filter(|e| !e.is_empty()),
            allow_reconnect: field::<bool>(wire.allow_reconnect).ok_or_else(invalid)?,
        }),
        _ => {
            let sequence_id = field::<u64>(wire.sequence_id).flatten().ok_or_else(|| {
                ProtocolError::invalid(format!("Invalid SequenceId for {kind} message."))
            })?;
            if message_type == 8 {
                HubMessage::Ack { sequence_id }
            } else {
                HubMessage::Sequence { sequence_id }
            }
        }
    };
    Ok(Some(message))
}

fn invalid_for(kind: &str) -> ProtocolError {
    ProtocolError::invalid(format!("Invalid payload for {kind} message."))
}

/// JavaScript truthiness of a JSON value, which the official client uses to reject a
/// Completion that carries both a result and an error.
fn is_truthy(raw: &RawValue) -> bool {
    !matches!(
        raw.get().trim(),
        "null" | "false" | "0" | "\"\"" | "-0" | "0.0"
    )
}
