//! The JSON hub protocol: one JSON object per message, each followed by 0x1E.

use std::borrow::Cow;
use std::fmt;

use bytes::Bytes;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
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
    let (ty, id, target, arguments, stream_ids, headers) = match message {
        HubMessage::Invocation(m) => (
            1,
            m.invocation_id.as_deref(),
            &m.target,
            &m.arguments,
            &m.stream_ids,
            &m.headers,
        ),
        HubMessage::StreamInvocation(m) => (
            4,
            Some(m.invocation_id.as_str()),
            &m.target,
            &m.arguments,
            &m.stream_ids,
            &m.headers,
        ),
        _ => return write_other(message, out),
    };
    write_call_head(out, ty, id, target);
    for (i, arg) in arguments.iter().enumerate() {
        write_argument_separator(out, i);
        write_payload(out, arg)?;
    }
    write_call_tail(out, stream_ids.as_deref(), headers);
    Ok(())
}

/// An invocation (type 1) or stream invocation (type 4) up to its first argument.
pub(crate) fn write_call_head(
    out: &mut Vec<u8>,
    ty: u8,
    invocation_id: Option<&str>,
    target: &str,
) {
    out.extend_from_slice(b"{\"type\":");
    out.extend_from_slice(itoa_u8(ty).as_bytes());
    if let Some(id) = invocation_id {
        write_field_str(out, "invocationId", id);
    }
    write_field_str(out, "target", target);
    out.extend_from_slice(b",\"arguments\":[");
}

/// What goes before argument `index` of an invocation.
pub(crate) fn write_argument_separator(out: &mut Vec<u8>, index: usize) {
    if index > 0 {
        out.push(b',');
    }
}

/// An invocation after its last argument, record separator included.
pub(crate) fn write_call_tail(out: &mut Vec<u8>, stream_ids: Option<&[String]>, headers: &Headers) {
    out.push(b']');
    if let Some(ids) = stream_ids {
        out.extend_from_slice(b",\"streamIds\":[");
        for (i, id) in ids.iter().enumerate() {
            write_argument_separator(out, i);
            write_str(out, id);
        }
        out.push(b']');
    }
    write_headers(out, headers);
    out.push(b'}');
    out.push(RECORD_SEPARATOR);
}

/// Writes a message other than an invocation.
fn write_other(message: &HubMessage, out: &mut Vec<u8>) -> Result<(), ProtocolError> {
    out.extend_from_slice(b"{\"type\":");
    out.extend_from_slice(itoa_u8(message.type_id()).as_bytes());
    match message {
        HubMessage::Invocation(_) | HubMessage::StreamInvocation(_) => {
            unreachable!("written by write_message")
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
    // serde_json escapes only quotes, backslashes and control characters; ids and method
    // names rarely hold any.
    if s.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20) {
        serde_json::to_writer(&mut *out, s).expect("writing a string to a Vec cannot fail");
    } else {
        out.reserve(s.len() + 2);
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    }
}

fn write_field_str(out: &mut Vec<u8>, name: &str, value: &str) {
    out.extend_from_slice(b",\"");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\":");
    write_str(out, value);
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

/// The fields of any JSON hub message, each the raw JSON text of its value, borrowed from the
/// received record, which is read once.
///
/// Scalars stay raw until the message type is known, so a field of the wrong type gets the
/// official client's error for that message type rather than a generic one. A `null` field
/// counts as absent, except `item` and `result`: a `"result": null` is a result, not a void
/// completion.
#[derive(Default)]
struct WireMessage<'a> {
    message_type: Option<&'a str>,
    invocation_id: Option<&'a str>,
    target: Option<&'a str>,
    arguments: Option<Vec<Payload>>,
    stream_ids: Option<&'a str>,
    item: Option<&'a str>,
    result: Option<&'a str>,
    error: Option<&'a str>,
    headers: Option<&'a str>,
    allow_reconnect: Option<&'a str>,
    sequence_id: Option<&'a str>,
    /// The fields read so far, one bit per [`Field`], to refuse duplicates.
    seen: u16,
}

impl<'a> WireMessage<'a> {
    /// Marks `field` as read; `false` if it already was.
    fn first(&mut self, field: Field) -> bool {
        let bit = 1 << field as u16;
        let first = self.seen & bit == 0;
        self.seen |= bit;
        first
    }

    /// Stores the raw value of a field other than `arguments`.
    fn set(&mut self, field: Field, raw: &'a str) {
        let value = (raw != "null").then_some(raw);
        match field {
            Field::Type => self.message_type = value,
            Field::InvocationId => self.invocation_id = value,
            Field::Target => self.target = value,
            Field::StreamIds => self.stream_ids = value,
            Field::Item => self.item = Some(raw),
            Field::Result => self.result = Some(raw),
            Field::Error => self.error = value,
            Field::Headers => self.headers = value,
            Field::AllowReconnect => self.allow_reconnect = value,
            Field::SequenceId => self.sequence_id = value,
            Field::Arguments | Field::Other => {}
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Field {
    Type,
    InvocationId,
    Target,
    Arguments,
    StreamIds,
    Item,
    Result,
    Error,
    Headers,
    AllowReconnect,
    SequenceId,
    Other,
}

impl Field {
    fn from_name(name: &str) -> Field {
        match name {
            "type" => Field::Type,
            "invocationId" => Field::InvocationId,
            "target" => Field::Target,
            "arguments" => Field::Arguments,
            "streamIds" => Field::StreamIds,
            "item" => Field::Item,
            "result" => Field::Result,
            "error" => Field::Error,
            "headers" => Field::Headers,
            "allowReconnect" => Field::AllowReconnect,
            "sequenceId" => Field::SequenceId,
            _ => Field::Other,
        }
    }
}

impl<'de> Deserialize<'de> for Field {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct FieldVisitor;
        impl Visitor<'_> for FieldVisitor {
            type Value = Field;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a field name")
            }
            fn visit_str<E>(self, name: &str) -> Result<Field, E> {
                Ok(Field::from_name(name))
            }
        }
        d.deserialize_identifier(FieldVisitor)
    }
}

/// Reads the record's object into a [`WireMessage`], slicing argument payloads from `record`.
struct WireVisitor<'r> {
    record: &'r Bytes,
}

impl<'de> Visitor<'de> for WireVisitor<'_> {
    type Value = WireMessage<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a hub message object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<WireMessage<'de>, A::Error> {
        let mut wire = WireMessage::default();
        while let Some(field) = map.next_key::<Field>()? {
            if field == Field::Other {
                map.next_value::<IgnoredAny>()?;
                continue;
            }
            if !wire.first(field) {
                return Err(de::Error::custom("duplicate field"));
            }
            if field == Field::Arguments {
                wire.arguments = map.next_value_seed(Arguments {
                    record: self.record,
                })?;
            } else {
                wire.set(field, map.next_value::<&RawValue>()?.get());
            }
        }
        Ok(wire)
    }
}

/// `arguments`: `null` or an array, each element kept as a payload sliced from the record.
struct Arguments<'r> {
    record: &'r Bytes,
}

impl<'de> DeserializeSeed<'de> for Arguments<'_> {
    type Value = Option<Vec<Payload>>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_option(self)
    }
}

impl<'de> Visitor<'de> for Arguments<'_> {
    type Value = Option<Vec<Payload>>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of arguments")
    }

    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        struct Elements<'r>(&'r Bytes);
        impl<'de> Visitor<'de> for Elements<'_> {
            type Value = Vec<Payload>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an array of arguments")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<Payload>, A::Error> {
                let mut arguments = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(16));
                while let Some(raw) = seq.next_element::<&RawValue>()? {
                    arguments.push(Payload::Json(self.0.slice_ref(raw.get().as_bytes())));
                }
                Ok(arguments)
            }
        }
        d.deserialize_seq(Elements(self.record)).map(Some)
    }
}

/// Reads the common shape of a record without serde's machinery: an object whose keys have
/// no escapes, whose scalar values are escape-free strings, integers or literals, and whose
/// other values serde_json checks one by one. `None` when the record is anything else, valid
/// or not: the serde path then decides, with its own errors. When it returns a message, it is
/// the one the serde path would return.
fn scan<'a>(text: &'a str, record: &Bytes) -> Option<WireMessage<'a>> {
    let b = text.as_bytes();
    let mut wire = WireMessage::default();
    let mut i = skip_whitespace(b, 0);
    if b.get(i) != Some(&b'{') {
        return None;
    }
    i = skip_whitespace(b, i + 1);
    if b.get(i) == Some(&b'}') {
        i += 1;
    } else {
        loop {
            if b.get(i) != Some(&b'"') {
                return None;
            }
            let key_end = i + 1 + plain_string_len(&b[i + 1..])?;
            let field = Field::from_name(&text[i + 1..key_end]);
            i = skip_whitespace(b, key_end + 1);
            if b.get(i) != Some(&b':') {
                return None;
            }
            i = skip_whitespace(b, i + 1);
            let raw = scan_value(text, i)?;
            i = skip_whitespace(b, i + raw.len());
            if field != Field::Other && !wire.first(field) {
                return None;
            }
            if field == Field::Arguments {
                wire.arguments = if raw == "null" {
                    None
                } else {
                    let mut d = serde_json::Deserializer::from_str(raw);
                    Some(Arguments { record }.visit_some(&mut d).ok()??)
                };
            } else {
                wire.set(field, raw);
            }
            match b.get(i) {
                Some(b',') => i = skip_whitespace(b, i + 1),
                Some(b'}') => {
                    i += 1;
                    break;
                }
                _ => return None,
            }
        }
    }
    (skip_whitespace(b, i) == b.len()).then_some(wire)
}

/// Reads a Completion or StreamItem written the way servers write them, field by field in
/// this order and without whitespace or headers:
///
/// `{"type":3,"invocationId":"7"}`, `{"type":3,"invocationId":"7","result":…}`,
/// `{"type":3,"invocationId":"7","error":"…"}` or `{"type":2,"invocationId":"7","item":…}`.
///
/// These are most of what a busy connection receives. `None` for anything else, valid or not:
/// [`scan`] and the serde path then read it. When it returns a message, it is the one they
/// would return.
fn parse_reply(text: &str, record: &Bytes) -> Option<HubMessage> {
    const TYPE_FIELD: &[u8] = b"{\"type\":";
    const ID_FIELD: &[u8] = b",\"invocationId\":\"";
    const ID_AT: usize = TYPE_FIELD.len() + 1 + ID_FIELD.len();
    let (&ty, after_type) = text.as_bytes().strip_prefix(TYPE_FIELD)?.split_first()?;
    if !matches!(ty, b'2' | b'3') {
        return None;
    }
    let id_len = plain_string_len(after_type.strip_prefix(ID_FIELD)?).filter(|&len| len > 0)?;
    let invocation_id = || text[ID_AT..ID_AT + id_len].to_owned();
    let rest = &text[ID_AT + id_len + 1..];
    let headers = Headers::new();
    if rest == "}" {
        return (ty == b'3').then(|| {
            HubMessage::Completion(Completion {
                invocation_id: invocation_id(),
                outcome: CompletionOutcome::Void,
                headers,
            })
        });
    }
    let (field, value_text) = rest.split_once(':')?;
    let value = scan_value(value_text, 0)?;
    if &value_text[value.len()..] != "}" {
        return None;
    }
    let payload = || Payload::Json(record.slice_ref(value.as_bytes()));
    Some(match (ty, field) {
        (b'3', ",\"result\"") => HubMessage::Completion(Completion {
            invocation_id: invocation_id(),
            outcome: CompletionOutcome::Result(payload()),
            headers,
        }),
        (b'3', ",\"error\"") => {
            // Escapes, and an empty error (which counts as none), are left to the general path.
            let error = value.strip_prefix('"')?.strip_suffix('"')?;
            if error.is_empty() || error.contains('\\') {
                return None;
            }
            HubMessage::Completion(Completion {
                invocation_id: invocation_id(),
                outcome: CompletionOutcome::Error(error.to_owned()),
                headers,
            })
        }
        (b'2', ",\"item\"") => HubMessage::StreamItem(StreamItem {
            invocation_id: invocation_id(),
            item: payload(),
            headers,
        }),
        _ => return None,
    })
}

/// The raw text of the JSON value that starts at `i`, `None` if it is not valid JSON.
fn scan_value(text: &str, i: usize) -> Option<&str> {
    let b = text.as_bytes();
    let len = match *b.get(i)? {
        b'"' => match plain_string_len(&b[i + 1..]) {
            Some(len) => len + 2,
            None => return checked_value(text, i),
        },
        b'-' | b'0'..=b'9' => {
            let digits_at = i + usize::from(b[i] == b'-');
            let digits = b[digits_at..]
                .iter()
                .take_while(|c| c.is_ascii_digit())
                .count();
            let end = digits_at + digits;
            if digits == 0 || (digits > 1 && b[digits_at] == b'0') {
                return None;
            }
            if matches!(b.get(end), Some(b'.' | b'e' | b'E')) {
                return checked_value(text, i);
            }
            end - i
        }
        b't' if b[i..].starts_with(b"true") => 4,
        b'f' if b[i..].starts_with(b"false") => 5,
        b'n' if b[i..].starts_with(b"null") => 4,
        b'[' | b'{' => return checked_value(text, i),
        _ => return None,
    };
    Some(&text[i..i + len])
}

/// The raw text of the JSON value that starts at `i`, as serde_json reads it (without a
/// nesting limit, as for any raw value).
fn checked_value(text: &str, i: usize) -> Option<&str> {
    let mut d = serde_json::Deserializer::from_str(&text[i..]);
    <&RawValue>::deserialize(&mut d).ok().map(RawValue::get)
}

/// The length of a string's text up to its closing quote, `None` if it has an escape or a
/// control character before it.
fn plain_string_len(b: &[u8]) -> Option<usize> {
    let end = b
        .iter()
        .position(|&c| c == b'"' || c == b'\\' || c < 0x20)?;
    (b[end] == b'"').then_some(end)
}

fn skip_whitespace(b: &[u8], mut i: usize) -> usize {
    while matches!(b.get(i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        i += 1;
    }
    i
}

/// A raw JSON string's text, `None` when the value is not a string.
fn string(raw: &str) -> Option<Cow<'_, str>> {
    let inner = raw.strip_prefix('"')?.strip_suffix('"')?;
    if inner.contains('\\') {
        return serde_json::from_str(raw).ok().map(Cow::Owned);
    }
    // serde_json checked the raw string: without escapes, its text is its value.
    Some(Cow::Borrowed(inner))
}

/// A raw JSON number read as `u64`, `None` for any other value (negative, fraction, exponent,
/// too large), as `serde_json::from_str::<u64>` would.
fn unsigned(raw: &str) -> Option<u64> {
    if raw.is_empty() || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    raw.parse().ok()
}

/// A raw field read by `read`, `Some(None)` when absent and `None` when it has another type.
fn field<'a, T>(
    raw: Option<&'a str>,
    read: impl FnOnce(&'a str) -> Option<T>,
) -> Option<Option<T>> {
    match raw {
        None => Some(None),
        Some(raw) => read(raw).map(Some),
    }
}

fn boolean(raw: &str) -> Option<bool> {
    match raw {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

fn ordered_headers(raw: Option<&str>) -> Option<Headers> {
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
        Some(raw) => serde_json::from_str::<OrderedHeaders>(raw)
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
    match parse_reply(text, record) {
        Some(reply) => Ok(Some(reply)),
        None => parse_any(text, record),
    }
}

/// [`parse_record`] for any record, from its checked text.
fn parse_any(text: &str, record: &Bytes) -> Result<Option<HubMessage>, ProtocolError> {
    let wire = match scan(text, record) {
        Some(wire) => wire,
        None => {
            let mut deserializer = serde_json::Deserializer::from_str(text);
            deserializer
                .deserialize_map(WireVisitor { record })
                .and_then(|wire| deserializer.end().map(|()| wire))
                .map_err(|e| {
                    ProtocolError::invalid(if e.is_data() {
                        "Invalid payload.".to_owned()
                    } else {
                        format!("Invalid payload: {e}.")
                    })
                })?
        }
    };
    let payload = |raw: &str| Payload::Json(record.slice_ref(raw.as_bytes()));
    let message_type = wire
        .message_type
        .and_then(unsigned)
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
    let non_empty = |raw: Option<&str>| -> Result<Option<String>, ProtocolError> {
        match field(raw, string).ok_or_else(invalid)? {
            Some(s) if s.is_empty() => Err(invalid()),
            other => Ok(other.map(Cow::into_owned)),
        }
    };
    let required_id = || non_empty(wire.invocation_id)?.ok_or_else(invalid);
    let headers = || ordered_headers(wire.headers).ok_or_else(invalid);
    let error = || -> Result<Option<String>, ProtocolError> {
        Ok(field(wire.error, string)
            .ok_or_else(invalid)?
            .filter(|e| !e.is_empty())
            .map(Cow::into_owned))
    };
    let message = match message_type {
        1 | 4 => {
            let target = non_empty(wire.target)?.ok_or_else(invalid)?;
            let arguments = wire.arguments.ok_or_else(invalid)?;
            let stream_ids = field(wire.stream_ids, |raw| {
                serde_json::from_str::<Vec<String>>(raw).ok()
            })
            .ok_or_else(invalid)?;
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
            let outcome = match (error()?, wire.result) {
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
            error: error()?,
            allow_reconnect: field(wire.allow_reconnect, boolean).ok_or_else(invalid)?,
        }),
        _ => {
            let sequence_id = wire.sequence_id.and_then(unsigned).ok_or_else(|| {
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
fn is_truthy(raw: &str) -> bool {
    !matches!(raw.trim(), "null" | "false" | "0" | "\"\"" | "-0" | "0.0")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reply_shortcut_reads_what_the_general_path_reads() {
        let records = [
            r#"{"type":3,"invocationId":"1"}"#,
            r#"{"type":3,"invocationId":"42","result":"x"}"#,
            r#"{"type":3,"invocationId":"42","result":null}"#,
            r#"{"type":3,"invocationId":"42","result":-12}"#,
            r#"{"type":3,"invocationId":"42","result":1.5e3}"#,
            r#"{"type":3,"invocationId":"42","result":{"a":[1,"é"]}}"#,
            r#"{"type":3,"invocationId":"42","result":"a\"b"}"#,
            r#"{"type":3,"invocationId":"42","result":true}"#,
            r#"{"type":3,"invocationId":"id with spaces","error":"It failed."}"#,
            r#"{"type":3,"invocationId":"9","error":"é ü"}"#,
            r#"{"type":2,"invocationId":"7","item":[1,2]}"#,
            r#"{"type":2,"invocationId":"7","item":"x"}"#,
        ];
        for record in records {
            let bytes = Bytes::from(record);
            let shortcut = parse_reply(record, &bytes)
                .unwrap_or_else(|| panic!("the shortcut should read {record}"));
            let general = parse_any(record, &bytes).unwrap().unwrap();
            assert_eq!(format!("{shortcut:?}"), format!("{general:?}"), "{record}");
        }
    }

    #[test]
    fn the_reply_shortcut_leaves_other_shapes_to_the_general_path() {
        let records = [
            r#"{"type":2,"invocationId":"7"}"#,
            r#"{"type":3,"invocationId":""}"#,
            r#"{"type":3,"invocationId":"a\"b","result":1}"#,
            r#"{"type":3,"invocationId":"1","error":""}"#,
            r#"{"type":3,"invocationId":"1","error":null}"#,
            r#"{"type":3,"invocationId":"1","error":"a\nb"}"#,
            r#"{"type":3,"invocationId":"1","error":"e","result":1}"#,
            r#"{"type":3,"invocationId":"1","result":1,"error":"e"}"#,
            r#"{"type":3,"invocationId":"1","result":01}"#,
            r#"{"type":3,"invocationId":"1","result":1 }"#,
            r#"{"type":3,"invocationId":"1","result":[1,}"#,
            r#"{"type":3,"invocationId":"1","headers":{"a":"b"},"result":1}"#,
            r#"{"type":3,"invocationId":"1","item":1}"#,
            r#"{"type":2,"invocationId":"1","result":1}"#,
            r#"{"type":31,"invocationId":"1"}"#,
            r#"{"type":1,"invocationId":"1","target":"a","arguments":[]}"#,
            r#"{ "type":3,"invocationId":"1"}"#,
            r#"{"type":3,"invocationId":"1"} "#,
        ];
        for record in records {
            assert!(
                parse_reply(record, &Bytes::from(record)).is_none(),
                "the shortcut should leave {record} alone"
            );
        }
    }

    #[test]
    fn strings_are_written_as_serde_json_writes_them() {
        for s in [
            "",
            "Echo",
            "12",
            "é ü \u{7f}",
            "a\"b",
            "a\\b",
            "\n",
            "\u{1}x",
            "\u{1f}",
        ] {
            let mut out = Vec::new();
            write_str(&mut out, s);
            assert_eq!(out, serde_json::to_vec(s).unwrap(), "{s:?}");
        }
    }
}
