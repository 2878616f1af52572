//! The MessagePack hub protocol: each message is a MessagePack array, framed by a VarInt
//! length prefix.

use bytes::Bytes;
use rmp::Marker;

use super::error::ProtocolError;
use super::message::*;
use super::timestamp::{Timestamp, TIMESTAMP_EXT};
use super::value::Value;

/// The struct name rmp-serde reads as an extension type.
pub(crate) use rmp_serde::MSGPACK_EXT_STRUCT_NAME as EXT_STRUCT_NAME;

/// How deep arrays and maps may nest inside one value before decoding gives up.
pub const MAX_NESTING: usize = 128;

/// The most elements reserved up front for a container, whatever its header claims: a claim
/// is only trusted as far as elements actually arrive, so nested headers cannot multiply it.
const PREALLOCATE_LIMIT: usize = 256;

/// The largest body a VarInt length prefix may announce (2 GB − 1).
const MAX_PREFIXED_LENGTH: u64 = 0x7fff_ffff;

/// Appends the VarInt length prefix for a body of `len` bytes.
pub fn write_length_prefix(len: usize, out: &mut Vec<u8>) {
    let (prefix, size) = length_prefix(len);
    out.extend_from_slice(&prefix[..size]);
}

/// The VarInt length prefix for a body of `len` bytes, and how many of the bytes it takes.
fn length_prefix(len: usize) -> ([u8; PREFIX_ROOM], usize) {
    let mut prefix = [0; PREFIX_ROOM];
    let mut n = len;
    for (i, byte) in prefix.iter_mut().enumerate() {
        *byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            return (prefix, i + 1);
        }
        *byte |= 0x80;
    }
    unreachable!("bodies are shorter than 2^35 bytes")
}

/// The room a writer leaves before a body for its length prefix: the longest prefix.
pub(crate) const PREFIX_ROOM: usize = 5;

/// Writes the length prefix of the body that follows the [`PREFIX_ROOM`] bytes left at
/// `start` of `out`, right before the body, and returns how many bytes before it are unused.
pub(crate) fn fill_length_prefix(out: &mut [u8], start: usize) -> usize {
    let (prefix, size) = length_prefix(out.len() - start - PREFIX_ROOM);
    let unused = PREFIX_ROOM - size;
    out[start + unused..start + PREFIX_ROOM].copy_from_slice(&prefix[..size]);
    unused
}

/// Reads a VarInt length prefix from the start of `buf`.
///
/// `Ok(None)` means the prefix is not complete yet; otherwise the body length and the size of
/// the prefix.
pub fn read_length_prefix(buf: &[u8]) -> Result<Option<(usize, usize)>, ProtocolError> {
    let mut len: u64 = 0;
    for (i, &byte) in buf.iter().take(5).enumerate() {
        if i == 4 && byte > 0x07 {
            return Err(ProtocolError::LengthPrefixTooLarge);
        }
        len |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            debug_assert!(len <= MAX_PREFIXED_LENGTH);
            return Ok(Some((len as usize, i + 1)));
        }
    }
    Ok(None)
}

/// Writes one message with its length prefix.
pub fn write_message(message: &HubMessage, out: &mut Vec<u8>) -> Result<(), ProtocolError> {
    let start = out.len();
    out.extend_from_slice(&[0; PREFIX_ROOM]);
    if let Err(e) = write_body(message, out) {
        out.truncate(start);
        return Err(e);
    }
    let unused = fill_length_prefix(out, start);
    out.drain(start..start + unused);
    Ok(())
}

fn write_body(message: &HubMessage, out: &mut Vec<u8>) -> Result<(), ProtocolError> {
    let ty = message.type_id();
    match message {
        HubMessage::Invocation(m) => write_call(
            out,
            ty,
            &m.headers,
            m.invocation_id.as_deref(),
            &m.target,
            &m.arguments,
            &m.stream_ids,
        )?,
        HubMessage::StreamInvocation(m) => write_call(
            out,
            ty,
            &m.headers,
            Some(&m.invocation_id),
            &m.target,
            &m.arguments,
            &m.stream_ids,
        )?,
        HubMessage::StreamItem(m) => {
            array_len(out, 4);
            uint(out, ty.into());
            write_headers(out, &m.headers);
            str(out, &m.invocation_id);
            write_payload(out, &m.item)?;
        }
        HubMessage::Completion(m) => {
            let len = if matches!(m.outcome, CompletionOutcome::Void) {
                4
            } else {
                5
            };
            array_len(out, len);
            uint(out, ty.into());
            write_headers(out, &m.headers);
            str(out, &m.invocation_id);
            match &m.outcome {
                CompletionOutcome::Error(e) => {
                    uint(out, 1);
                    str(out, e);
                }
                CompletionOutcome::Void => uint(out, 2),
                CompletionOutcome::Result(p) => {
                    uint(out, 3);
                    write_payload(out, p)?;
                }
            }
        }
        HubMessage::CancelInvocation(m) => {
            array_len(out, 3);
            uint(out, ty.into());
            write_headers(out, &m.headers);
            str(out, &m.invocation_id);
        }
        HubMessage::Ping => {
            array_len(out, 1);
            uint(out, ty.into());
        }
        HubMessage::Close(c) => {
            array_len(out, if c.allow_reconnect.is_some() { 3 } else { 2 });
            uint(out, ty.into());
            match &c.error {
                Some(e) => str(out, e),
                None => nil(out),
            }
            if let Some(allow) = c.allow_reconnect {
                rmp::encode::write_bool(out, allow).expect("Vec write");
            }
        }
        HubMessage::Ack { sequence_id } | HubMessage::Sequence { sequence_id } => {
            array_len(out, 2);
            uint(out, ty.into());
            uint(out, *sequence_id);
        }
    }
    Ok(())
}

fn write_call(
    out: &mut Vec<u8>,
    ty: u8,
    headers: &Headers,
    invocation_id: Option<&str>,
    target: &str,
    arguments: &[Payload],
    stream_ids: &Option<Vec<String>>,
) -> Result<(), ProtocolError> {
    let call = CallHead {
        ty,
        headers,
        invocation_id,
        target,
        has_stream_ids: stream_ids.is_some(),
        arguments: arguments.len(),
    };
    write_call_head(out, &call);
    for arg in arguments {
        write_payload(out, arg)?;
    }
    write_call_tail(out, stream_ids.as_deref());
    Ok(())
}

/// What an invocation (type 1) or stream invocation (type 4) holds before its arguments.
pub(crate) struct CallHead<'a> {
    pub ty: u8,
    pub headers: &'a Headers,
    pub invocation_id: Option<&'a str>,
    pub target: &'a str,
    /// Whether the stream ids follow the arguments (a sixth element).
    pub has_stream_ids: bool,
    /// How many arguments follow.
    pub arguments: usize,
}

/// An invocation up to its first argument.
pub(crate) fn write_call_head(out: &mut Vec<u8>, call: &CallHead) {
    array_len(out, if call.has_stream_ids { 6 } else { 5 });
    uint(out, call.ty.into());
    write_headers(out, call.headers);
    match call.invocation_id {
        Some(id) => str(out, id),
        None => nil(out),
    }
    str(out, call.target);
    array_len(out, call.arguments);
}

/// An invocation after its last argument.
pub(crate) fn write_call_tail(out: &mut Vec<u8>, stream_ids: Option<&[String]>) {
    if let Some(ids) = stream_ids {
        array_len(out, ids.len());
        for id in ids {
            str(out, id);
        }
    }
}

fn write_headers(out: &mut Vec<u8>, headers: &Headers) {
    // The short forms by hand (fixmap, fixarray, positive fixint), as rmp writes them: its
    // generic writers cost more than the byte.
    if headers.len() < 16 {
        out.push(0x80 | headers.len() as u8);
    } else {
        rmp::encode::write_map_len(out, headers.len() as u32).expect("Vec write");
    }
    for (k, v) in headers {
        str(out, k);
        str(out, v);
    }
}

fn array_len(out: &mut Vec<u8>, len: usize) {
    if len < 16 {
        out.push(0x90 | len as u8);
    } else {
        rmp::encode::write_array_len(out, len as u32).expect("Vec write");
    }
}

fn uint(out: &mut Vec<u8>, n: u64) {
    if n < 0x80 {
        out.push(n as u8);
    } else {
        rmp::encode::write_uint(out, n).expect("Vec write");
    }
}

fn str(out: &mut Vec<u8>, s: &str) {
    // The common case by hand: rmp's generic writer costs more than the copy of a short id.
    if s.len() < 32 {
        out.reserve(1 + s.len());
        out.push(0xa0 | s.len() as u8);
        out.extend_from_slice(s.as_bytes());
        return;
    }
    rmp::encode::write_str(out, s).expect("Vec write");
}

fn nil(out: &mut Vec<u8>) {
    rmp::encode::write_nil(out).expect("Vec write");
}

/// Serializes a caller's value (structs as maps with their field names, like the .NET and
/// JavaScript servers expect).
pub(crate) fn write_serialized<T: serde::Serialize + ?Sized>(
    value: &T,
    out: &mut Vec<u8>,
) -> Result<(), ProtocolError> {
    value
        .serialize(&mut rmp_serde::Serializer::new(out).with_struct_map())
        .map_err(|e| ProtocolError::Encode(e.to_string()))
}

/// Writes a payload as MessagePack, transcoding it when it was encoded for the other protocol.
pub fn write_payload(out: &mut Vec<u8>, payload: &Payload) -> Result<(), ProtocolError> {
    match payload {
        Payload::MessagePack(bytes) => {
            out.extend_from_slice(bytes);
            Ok(())
        }
        Payload::Value(v) => write_value(v, out),
        Payload::Json(text) => write_value(&super::json::read_value(text)?, out),
    }
}

/// Writes a [`Value`] in the smallest MessagePack form, as the official clients do.
pub fn write_value(value: &Value, out: &mut Vec<u8>) -> Result<(), ProtocolError> {
    write_value_at(value, out, 0)
}

fn write_value_at(value: &Value, out: &mut Vec<u8>, depth: usize) -> Result<(), ProtocolError> {
    if depth > MAX_NESTING {
        return Err(ProtocolError::Encode(format!(
            "values nest deeper than {MAX_NESTING} levels"
        )));
    }
    let too_long = |what: &str| ProtocolError::Encode(format!("{what} is longer than 2³² − 1"));
    match value {
        Value::Null => nil(out),
        Value::Bool(b) => rmp::encode::write_bool(out, *b).expect("Vec write"),
        Value::Int(n) if *n >= 0 => uint(out, *n as u64),
        Value::Int(n) => {
            rmp::encode::write_sint(out, *n).expect("Vec write");
        }
        Value::UInt(n) => uint(out, *n),
        Value::F32(f) => rmp::encode::write_f32(out, *f).expect("Vec write"),
        Value::F64(f) => rmp::encode::write_f64(out, *f).expect("Vec write"),
        Value::String(s) => {
            u32::try_from(s.len()).map_err(|_| too_long("a string"))?;
            str(out, s)
        }
        Value::Binary(b) => {
            u32::try_from(b.len()).map_err(|_| too_long("a byte array"))?;
            rmp::encode::write_bin(out, b).expect("Vec write")
        }
        Value::Array(items) => {
            u32::try_from(items.len()).map_err(|_| too_long("an array"))?;
            array_len(out, items.len());
            for item in items {
                write_value_at(item, out, depth + 1)?;
            }
        }
        Value::Map(entries) => {
            let len = u32::try_from(entries.len()).map_err(|_| too_long("a map"))?;
            rmp::encode::write_map_len(out, len).expect("Vec write");
            for (k, v) in entries {
                write_value_at(k, out, depth + 1)?;
                write_value_at(v, out, depth + 1)?;
            }
        }
        Value::Timestamp(t) => write_timestamp(*t, out),
        Value::Extension(kind, data) => {
            let len = u32::try_from(data.len()).map_err(|_| too_long("an extension"))?;
            rmp::encode::write_ext_meta(out, len, *kind).expect("Vec write");
            out.extend_from_slice(data);
        }
    }
    Ok(())
}

fn write_timestamp(t: Timestamp, out: &mut Vec<u8>) {
    let body = t.to_ext_bytes();
    rmp::encode::write_ext_meta(out, body.len() as u32, TIMESTAMP_EXT).expect("Vec write");
    out.extend_from_slice(&body);
}

/// Reads the MessagePack encoding of exactly one value into a [`Value`].
pub fn read_value(bytes: &[u8]) -> Result<Value, ProtocolError> {
    let mut reader = Reader::new(bytes);
    let value = reader.value(0).map_err(payload_error)?;
    if reader.pos != bytes.len() {
        return Err(ProtocolError::Payload(
            "trailing bytes after the value".into(),
        ));
    }
    Ok(value)
}

fn payload_error(e: ProtocolError) -> ProtocolError {
    match e {
        ProtocolError::InvalidMessage(text) => ProtocolError::Payload(text),
        other => other,
    }
}

/// Parses one message body (the bytes after the length prefix).
///
/// Returns `Ok(None)` for a message type this client does not know: future protocol versions
/// may add types, and the official clients ignore them.
pub fn parse_body(body: &Bytes) -> Result<Option<HubMessage>, ProtocolError> {
    let mut r = Reader::new(body);
    let len = match r.marker() {
        Ok(m) => match r.array_len_of(m) {
            Some(len) if len > 0 => len as usize,
            _ => return Err(ProtocolError::invalid("Invalid payload.")),
        },
        Err(_) => return Err(ProtocolError::invalid("Invalid payload.")),
    };
    let message_type = r
        .uint()
        .map_err(|_| ProtocolError::invalid("Invalid payload."))?;
    let need = |min: usize, kind: &str| {
        if len < min {
            Err(invalid_for(kind))
        } else {
            Ok(())
        }
    };
    let payload = |r: &mut Reader, kind: &str| -> Result<Payload, ProtocolError> {
        let range = r.skip_value().map_err(|_| invalid_for(kind))?;
        Ok(Payload::MessagePack(body.slice(range)))
    };
    let message = match message_type {
        1 | 4 => {
            let kind = if message_type == 1 {
                "Invocation"
            } else {
                "StreamInvocation"
            };
            let headers = r.headers()?;
            need(5, kind)?;
            let invocation_id = r.opt_str().map_err(|_| invalid_for(kind))?;
            let target = r.string().map_err(|_| invalid_for(kind))?;
            let count = r.array_len().map_err(|_| invalid_for(kind))?;
            let mut arguments = Vec::with_capacity(count.min(PREALLOCATE_LIMIT));
            for _ in 0..count {
                arguments.push(payload(&mut r, kind)?);
            }
            let stream_ids = if len >= 6 {
                let n = r.array_len().map_err(|_| invalid_for(kind))?;
                let mut ids = Vec::with_capacity(n.min(PREALLOCATE_LIMIT));
                for _ in 0..n {
                    ids.push(r.string().map_err(|_| invalid_for(kind))?);
                }
                Some(ids)
            } else {
                None
            };
            if message_type == 1 {
                HubMessage::Invocation(Invocation {
                    invocation_id,
                    target,
                    arguments,
                    stream_ids,
                    headers,
                })
            } else {
                HubMessage::StreamInvocation(StreamInvocation {
                    invocation_id: invocation_id.ok_or_else(|| invalid_for(kind))?,
                    target,
                    arguments,
                    stream_ids,
                    headers,
                })
            }
        }
        2 => {
            let headers = r.headers()?;
            need(4, "StreamItem")?;
            let invocation_id = r.string().map_err(|_| invalid_for("StreamItem"))?;
            let item = payload(&mut r, "StreamItem")?;
            HubMessage::StreamItem(StreamItem {
                invocation_id,
                item,
                headers,
            })
        }
        3 => {
            let headers = r.headers()?;
            need(4, "Completion")?;
            let invocation_id = r.string().map_err(|_| invalid_for("Completion"))?;
            let kind = r.uint().map_err(|_| invalid_for("Completion"))?;
            let outcome = match kind {
                1 => {
                    need(5, "Completion")?;
                    CompletionOutcome::Error(r.string().map_err(|_| invalid_for("Completion"))?)
                }
                2 => CompletionOutcome::Void,
                3 => {
                    need(5, "Completion")?;
                    CompletionOutcome::Result(payload(&mut r, "Completion")?)
                }
                _ => return Err(invalid_for("Completion")),
            };
            HubMessage::Completion(Completion {
                invocation_id,
                outcome,
                headers,
            })
        }
        5 => {
            let headers = r.headers()?;
            need(3, "CancelInvocation")?;
            let invocation_id = r.string().map_err(|_| invalid_for("CancelInvocation"))?;
            HubMessage::CancelInvocation(CancelInvocation {
                invocation_id,
                headers,
            })
        }
        6 => HubMessage::Ping,
        7 => {
            need(2, "Close")?;
            let error = r.opt_str().map_err(|_| invalid_for("Close"))?;
            let allow_reconnect = if len >= 3 {
                Some(r.bool().map_err(|_| invalid_for("Close"))?)
            } else {
                None
            };
            HubMessage::Close(Close {
                error: error.filter(|e| !e.is_empty()),
                allow_reconnect,
            })
        }
        8 | 9 => {
            let kind = if message_type == 8 { "Ack" } else { "Sequence" };
            let invalid_id =
                || ProtocolError::invalid(format!("Invalid SequenceId for {kind} message."));
            if len < 2 {
                return Err(invalid_id());
            }
            let sequence_id = r.uint().map_err(|_| invalid_id())?;
            if message_type == 8 {
                HubMessage::Ack { sequence_id }
            } else {
                HubMessage::Sequence { sequence_id }
            }
        }
        _ => return Ok(None),
    };
    // Later protocol versions may append elements: skip them, but nothing may follow the
    // array, since one frame holds exactly one message.
    let read = match &message {
        HubMessage::Invocation(_) | HubMessage::StreamInvocation(_) => 5 + usize::from(len >= 6),
        HubMessage::StreamItem(_) => 4,
        HubMessage::Completion(c) => 4 + usize::from(!matches!(c.outcome, CompletionOutcome::Void)),
        HubMessage::CancelInvocation(_) => 3,
        HubMessage::Ping => 1,
        HubMessage::Close(c) => 2 + usize::from(c.allow_reconnect.is_some()),
        HubMessage::Ack { .. } | HubMessage::Sequence { .. } => 2,
    };
    for _ in read..len {
        r.skip_value()?;
    }
    if r.pos != body.len() {
        return Err(ProtocolError::invalid(format!(
            "Invalid payload: {} bytes after the message.",
            body.len() - r.pos
        )));
    }
    Ok(Some(message))
}

fn invalid_for(kind: &str) -> ProtocolError {
    ProtocolError::invalid(format!("Invalid payload for {kind} message."))
}

/// A cursor over MessagePack bytes that never reads past the end and never trusts a length.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

fn truncated() -> ProtocolError {
    ProtocolError::invalid("The MessagePack data ends in the middle of a value.")
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], ProtocolError> {
        if n > self.remaining() {
            return Err(truncated());
        }
        let slice = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(slice)
    }

    fn be(&mut self, n: usize) -> Result<u64, ProtocolError> {
        Ok(self
            .take(n)?
            .iter()
            .fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
    }

    fn marker(&mut self) -> Result<Marker, ProtocolError> {
        Ok(Marker::from_u8(self.take(1)?[0]))
    }

    fn array_len_of(&mut self, m: Marker) -> Option<u32> {
        match m {
            Marker::FixArray(n) => Some(n.into()),
            Marker::Array16 => self.be(2).ok().map(|n| n as u32),
            Marker::Array32 => self.be(4).ok().map(|n| n as u32),
            _ => None,
        }
    }

    fn array_len(&mut self) -> Result<usize, ProtocolError> {
        let m = self.marker()?;
        self.array_len_of(m)
            .map(|n| n as usize)
            .ok_or_else(|| ProtocolError::invalid("expected an array"))
    }

    fn map_len_of(&mut self, m: Marker) -> Option<u32> {
        match m {
            Marker::FixMap(n) => Some(n.into()),
            Marker::Map16 => self.be(2).ok().map(|n| n as u32),
            Marker::Map32 => self.be(4).ok().map(|n| n as u32),
            _ => None,
        }
    }

    fn str_len_of(&mut self, m: Marker) -> Option<usize> {
        match m {
            Marker::FixStr(n) => Some(n.into()),
            Marker::Str8 => self.be(1).ok().map(|n| n as usize),
            Marker::Str16 => self.be(2).ok().map(|n| n as usize),
            Marker::Str32 => self.be(4).ok().map(|n| n as usize),
            _ => None,
        }
    }

    fn str_of(&mut self, m: Marker) -> Result<Option<String>, ProtocolError> {
        let Some(len) = self.str_len_of(m) else {
            return Ok(None);
        };
        let bytes = self.take(len)?;
        std::str::from_utf8(bytes)
            .map(|s| Some(s.to_owned()))
            .map_err(|_| ProtocolError::invalid("a string is not valid UTF-8"))
    }

    fn string(&mut self) -> Result<String, ProtocolError> {
        let m = self.marker()?;
        self.str_of(m)?
            .ok_or_else(|| ProtocolError::invalid("expected a string"))
    }

    fn opt_str(&mut self) -> Result<Option<String>, ProtocolError> {
        match self.marker()? {
            Marker::Null => Ok(None),
            m => self
                .str_of(m)?
                .map(Some)
                .ok_or_else(|| ProtocolError::invalid("expected a string or nil")),
        }
    }

    fn bool(&mut self) -> Result<bool, ProtocolError> {
        match self.marker()? {
            Marker::True => Ok(true),
            Marker::False => Ok(false),
            _ => Err(ProtocolError::invalid("expected a boolean")),
        }
    }

    fn uint(&mut self) -> Result<u64, ProtocolError> {
        // Message types and completion kinds: a positive fixint.
        if let Some(&byte) = self.buf.get(self.pos).filter(|&&b| b < 0x80) {
            self.pos += 1;
            return Ok(byte.into());
        }
        match self.int()? {
            Value::Int(n) if n >= 0 => Ok(n as u64),
            Value::UInt(n) => Ok(n),
            _ => Err(ProtocolError::invalid("expected an unsigned integer")),
        }
    }

    fn int(&mut self) -> Result<Value, ProtocolError> {
        let m = self.marker()?;
        self.int_of(m)
            .ok_or_else(|| ProtocolError::invalid("expected an integer"))?
    }

    fn int_of(&mut self, m: Marker) -> Option<Result<Value, ProtocolError>> {
        Some(match m {
            Marker::FixPos(n) => Ok(Value::Int(n.into())),
            Marker::FixNeg(n) => Ok(Value::Int(n.into())),
            Marker::U8 => self.be(1).map(Value::from_u64),
            Marker::U16 => self.be(2).map(Value::from_u64),
            Marker::U32 => self.be(4).map(Value::from_u64),
            Marker::U64 => self.be(8).map(Value::from_u64),
            Marker::I8 => self.be(1).map(|n| Value::Int((n as u8 as i8).into())),
            Marker::I16 => self.be(2).map(|n| Value::Int((n as u16 as i16).into())),
            Marker::I32 => self.be(4).map(|n| Value::Int((n as u32 as i32).into())),
            Marker::I64 => self.be(8).map(|n| Value::Int(n as i64)),
            _ => return None,
        })
    }

    fn headers(&mut self) -> Result<Headers, ProtocolError> {
        let invalid = || ProtocolError::invalid("Invalid headers.");
        let m = self.marker().map_err(|_| invalid())?;
        let len = self.map_len_of(m).ok_or_else(invalid)? as usize;
        let mut headers = Headers::with_capacity(len.min(PREALLOCATE_LIMIT));
        for _ in 0..len {
            let key = self.string().map_err(|_| invalid())?;
            let value = self.string().map_err(|_| invalid())?;
            headers.push((key, value));
        }
        Ok(headers)
    }

    /// Skips one value, checking it is well formed, and returns where it was.
    fn skip_value(&mut self) -> Result<std::ops::Range<usize>, ProtocolError> {
        let start = self.pos;
        let mut pending: usize = 1;
        let mut depth_stack: Vec<usize> = Vec::new();
        while pending > 0 || !depth_stack.is_empty() {
            if pending == 0 {
                pending = depth_stack.pop().expect("checked non-empty");
                continue;
            }
            pending -= 1;
            let m = self.marker()?;
            let children = match m {
                Marker::FixArray(_) | Marker::Array16 | Marker::Array32 => {
                    self.array_len_of(m).ok_or_else(truncated)? as usize
                }
                Marker::FixMap(_) | Marker::Map16 | Marker::Map32 => {
                    (self.map_len_of(m).ok_or_else(truncated)? as usize)
                        .checked_mul(2)
                        .ok_or_else(truncated)?
                }
                _ => {
                    self.skip_scalar(m)?;
                    0
                }
            };
            if children > 0 {
                if children > self.remaining() {
                    return Err(truncated());
                }
                if depth_stack.len() >= MAX_NESTING {
                    return Err(nesting());
                }
                depth_stack.push(pending);
                pending = children;
            }
        }
        Ok(start..self.pos)
    }

    fn skip_scalar(&mut self, m: Marker) -> Result<(), ProtocolError> {
        let n = match m {
            Marker::FixPos(_) | Marker::FixNeg(_) | Marker::Null | Marker::True | Marker::False => {
                0
            }
            Marker::U8 | Marker::I8 => 1,
            Marker::U16 | Marker::I16 => 2,
            Marker::U32 | Marker::I32 | Marker::F32 => 4,
            Marker::U64 | Marker::I64 | Marker::F64 => 8,
            Marker::FixStr(n) => n.into(),
            Marker::Str8 | Marker::Bin8 => self.be(1)? as usize,
            Marker::Str16 | Marker::Bin16 => self.be(2)? as usize,
            Marker::Str32 | Marker::Bin32 => self.be(4)? as usize,
            Marker::FixExt1 => 2,
            Marker::FixExt2 => 3,
            Marker::FixExt4 => 5,
            Marker::FixExt8 => 9,
            Marker::FixExt16 => 17,
            Marker::Ext8 => self.be(1)? as usize + 1,
            Marker::Ext16 => self.be(2)? as usize + 1,
            Marker::Ext32 => (self.be(4)? as usize)
                .checked_add(1)
                .ok_or_else(truncated)?,
            Marker::Reserved => {
                return Err(ProtocolError::invalid("the byte 0xc1 is not MessagePack"))
            }
            _ => unreachable!("containers are handled by the caller"),
        };
        self.take(n).map(|_| ())
    }

    fn value(&mut self, depth: usize) -> Result<Value, ProtocolError> {
        let m = self.marker()?;
        if let Some(int) = self.int_of(m) {
            return int;
        }
        Ok(match m {
            Marker::Null => Value::Null,
            Marker::True => Value::Bool(true),
            Marker::False => Value::Bool(false),
            Marker::F32 => Value::F32(f32::from_bits(self.be(4)? as u32)),
            Marker::F64 => Value::F64(f64::from_bits(self.be(8)?)),
            Marker::FixStr(_) | Marker::Str8 | Marker::Str16 | Marker::Str32 => {
                Value::String(self.str_of(m)?.expect("a string marker"))
            }
            Marker::Bin8 | Marker::Bin16 | Marker::Bin32 => {
                let len = match m {
                    Marker::Bin8 => self.be(1)?,
                    Marker::Bin16 => self.be(2)?,
                    _ => self.be(4)?,
                } as usize;
                Value::Binary(self.take(len)?.to_vec())
            }
            Marker::FixArray(_) | Marker::Array16 | Marker::Array32 => {
                let len = self.array_len_of(m).ok_or_else(truncated)? as usize;
                self.check_container(len, depth)?;
                let mut items = Vec::with_capacity(len.min(PREALLOCATE_LIMIT));
                for _ in 0..len {
                    items.push(self.value(depth + 1)?);
                }
                Value::Array(items)
            }
            Marker::FixMap(_) | Marker::Map16 | Marker::Map32 => {
                let len = self.map_len_of(m).ok_or_else(truncated)? as usize;
                self.check_container(len.saturating_mul(2), depth)?;
                let mut entries = Vec::with_capacity(len.min(PREALLOCATE_LIMIT));
                for _ in 0..len {
                    let k = self.value(depth + 1)?;
                    let v = self.value(depth + 1)?;
                    entries.push((k, v));
                }
                Value::Map(entries)
            }
            Marker::FixExt1
            | Marker::FixExt2
            | Marker::FixExt4
            | Marker::FixExt8
            | Marker::FixExt16
            | Marker::Ext8
            | Marker::Ext16
            | Marker::Ext32 => {
                let len = match m {
                    Marker::FixExt1 => 1,
                    Marker::FixExt2 => 2,
                    Marker::FixExt4 => 4,
                    Marker::FixExt8 => 8,
                    Marker::FixExt16 => 16,
                    Marker::Ext8 => self.be(1)? as usize,
                    Marker::Ext16 => self.be(2)? as usize,
                    _ => self.be(4)? as usize,
                };
                let kind = self.take(1)?[0] as i8;
                let data = self.take(len)?;
                if kind == TIMESTAMP_EXT {
                    Value::Timestamp(read_timestamp(data)?)
                } else {
                    Value::Extension(kind, data.to_vec())
                }
            }
            Marker::Reserved => {
                return Err(ProtocolError::invalid("the byte 0xc1 is not MessagePack"))
            }
            _ => unreachable!("integers are handled above"),
        })
    }

    /// Refuses containers deeper than [`MAX_NESTING`] or claiming more elements than there
    /// are bytes left, before anything of the claimed size is allocated.
    fn check_container(&self, elements: usize, depth: usize) -> Result<(), ProtocolError> {
        if depth >= MAX_NESTING {
            return Err(nesting());
        }
        if elements > self.remaining() {
            return Err(truncated());
        }
        Ok(())
    }
}

fn nesting() -> ProtocolError {
    ProtocolError::invalid(format!(
        "MessagePack values nest deeper than {MAX_NESTING} levels"
    ))
}

fn read_timestamp(data: &[u8]) -> Result<Timestamp, ProtocolError> {
    Timestamp::from_ext_bytes(data)
        .ok_or_else(|| ProtocolError::invalid("an invalid MessagePack timestamp"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_forms_are_written_as_rmp_writes_them() {
        for n in [0u32, 1, 15, 16, 17, 127, 128, 255, 256, 65_535, 65_536] {
            let (mut ours, mut theirs) = (Vec::new(), Vec::new());
            array_len(&mut ours, n as usize);
            rmp::encode::write_array_len(&mut theirs, n).unwrap();
            assert_eq!(ours, theirs, "array of {n}");
            let (mut ours, mut theirs) = (Vec::new(), Vec::new());
            uint(&mut ours, n.into());
            rmp::encode::write_uint(&mut theirs, n.into()).unwrap();
            assert_eq!(ours, theirs, "uint {n}");
        }
        for n in [0, 1, 15, 16, 17] {
            let headers: Headers = (0..n).map(|i| (i.to_string(), String::new())).collect();
            let (mut ours, mut theirs) = (Vec::new(), Vec::new());
            write_headers(&mut ours, &headers);
            rmp::encode::write_map_len(&mut theirs, n).unwrap();
            for (k, v) in &headers {
                rmp::encode::write_str(&mut theirs, k).unwrap();
                rmp::encode::write_str(&mut theirs, v).unwrap();
            }
            assert_eq!(ours, theirs, "map of {n}");
        }
    }
}
