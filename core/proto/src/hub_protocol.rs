//! The choice of hub protocol, and incremental decoding of what a transport delivers.

use std::cell::Cell;

use bytes::{Buf, Bytes, BytesMut};
use serde::Serialize;

use super::error::ProtocolError;
use super::message::{Headers, HubMessage, Payload};
use super::msgpack::CallHead;
use super::transports::TransferFormat;
use super::{json, msgpack};

/// The default largest hub message accepted from a peer (1 MiB).
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 1024 * 1024;

/// The smallest allocation of a decoder's buffer. Decoded payloads are slices of it, so while
/// one is alive the buffer cannot be reused: pushes then append to what is left of a chunk
/// this size instead of allocating anew for every transport message.
const DECODER_CHUNK: usize = 8 * 1024;

/// A hub protocol: how hub messages become bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HubProtocol {
    /// `json`: UTF-8 JSON text, messages separated by 0x1E.
    Json,
    /// `messagepack`: binary MessagePack arrays with VarInt length prefixes.
    MessagePack,
}

impl HubProtocol {
    /// The name sent in the handshake.
    pub fn name(self) -> &'static str {
        match self {
            HubProtocol::Json => "json",
            HubProtocol::MessagePack => "messagepack",
        }
    }

    /// The protocol a handshake names, if this client speaks it.
    pub fn from_name(name: &str) -> Option<HubProtocol> {
        match name {
            "json" => Some(HubProtocol::Json),
            "messagepack" => Some(HubProtocol::MessagePack),
            _ => None,
        }
    }

    /// Text for JSON, binary for MessagePack.
    pub fn transfer_format(self) -> TransferFormat {
        match self {
            HubProtocol::Json => TransferFormat::Text,
            HubProtocol::MessagePack => TransferFormat::Binary,
        }
    }

    /// Appends one framed message to `out`.
    ///
    /// ```
    /// use hublink_proto::{HubMessage, HubProtocol};
    /// let mut out = Vec::new();
    /// HubProtocol::MessagePack.write_message(&HubMessage::Ping, &mut out).unwrap();
    /// assert_eq!(out, [0x02, 0x91, 0x06]);
    /// ```
    pub fn write_message(
        self,
        message: &HubMessage,
        out: &mut Vec<u8>,
    ) -> Result<(), ProtocolError> {
        match self {
            HubProtocol::Json => json::write_message(message, out),
            HubProtocol::MessagePack => msgpack::write_message(message, out),
        }
    }

    /// Serializes a caller's value in this protocol's encoding.
    pub fn payload<T: Serialize + ?Sized>(self, value: &T) -> Result<Payload, ProtocolError> {
        match self {
            HubProtocol::Json => Payload::json(value),
            HubProtocol::MessagePack => Payload::messagepack(value),
        }
    }

    /// A decoder for the bytes a peer sends, refusing messages above `max_message_size`.
    pub fn decoder(self, max_message_size: usize) -> MessageDecoder {
        MessageDecoder {
            protocol: self,
            buffer: BytesMut::with_capacity(DECODER_CHUNK),
            current: Bytes::new(),
            scanned: 0,
            max_message_size,
        }
    }

    /// Decodes a buffer that holds only whole messages, as a WebSocket frame or a poll
    /// response does. Like the official client, it checks the framing of the whole buffer
    /// before parsing any message, so a buffer cut short fails as a whole.
    pub fn parse_messages(
        self,
        data: &[u8],
        max_message_size: usize,
    ) -> Result<Vec<HubMessage>, ProtocolError> {
        let mut decoder = self.decoder(max_message_size);
        decoder.push(data);
        let mut frames = Vec::new();
        while let Some(frame) = decoder.next_frame()? {
            frames.push(frame);
        }
        decoder.finish()?;
        let mut messages = Vec::with_capacity(frames.len());
        for frame in &frames {
            if let Some(message) = self.parse_frame(frame)? {
                messages.push(message);
            }
        }
        Ok(messages)
    }

    fn parse_frame(self, frame: &Bytes) -> Result<Option<HubMessage>, ProtocolError> {
        match self {
            HubProtocol::Json => json::parse_record(frame),
            HubProtocol::MessagePack => msgpack::parse_body(frame),
        }
    }
}

/// An invocation written straight into its frame as the caller's arguments are serialized,
/// without building a [`HubMessage`] or a [`Payload`] per argument first.
///
/// The arguments come first, because the invocation id is only taken once the upload streams
/// among them have taken theirs; [`CallWriter::finish`] then writes the message's head and
/// tail after them and puts the frame together in order.
#[doc(hidden)]
#[derive(Debug)]
pub struct CallWriter {
    protocol: HubProtocol,
    /// The arguments, then (while finishing) the head, the tail and a MessagePack length
    /// prefix.
    out: Vec<u8>,
    arguments: usize,
}

thread_local! {
    /// The buffer this thread writes invocations in: a frame is then allocated once, at its
    /// exact size, so that `Bytes` owns that allocation alone (a `Vec` with spare capacity
    /// would make it allocate a shared header besides, and free two blocks when dropped).
    static CALL_SCRATCH: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
}

/// The largest scratch buffer a thread keeps for its next invocation.
const CALL_SCRATCH_KEPT: usize = 4096;

impl CallWriter {
    /// Starts the frame of an invocation in `protocol`, in this thread's scratch buffer.
    pub fn new(protocol: HubProtocol) -> Self {
        let mut out = CALL_SCRATCH.with(Cell::take);
        out.clear();
        out.reserve(96);
        CallWriter {
            protocol,
            out,
            arguments: 0,
        }
    }

    /// The protocol the frame is written in.
    pub fn protocol(&self) -> HubProtocol {
        self.protocol
    }

    /// Serializes one argument into the frame.
    pub fn value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), ProtocolError> {
        let encoded = match self.protocol {
            HubProtocol::Json => {
                json::write_argument_separator(&mut self.out, self.arguments);
                serde_json::to_writer(&mut self.out, value)
                    .map_err(|e| ProtocolError::Encode(e.to_string()))
            }
            HubProtocol::MessagePack => msgpack::write_serialized(value, &mut self.out),
        };
        self.arguments += 1;
        encoded
    }

    /// Writes one argument that is already a payload.
    pub fn payload(&mut self, payload: &Payload) -> Result<(), ProtocolError> {
        let written = match self.protocol {
            HubProtocol::Json => {
                json::write_argument_separator(&mut self.out, self.arguments);
                json::write_payload(&mut self.out, payload)
            }
            HubProtocol::MessagePack => msgpack::write_payload(&mut self.out, payload),
        };
        self.arguments += 1;
        written
    }

    /// The frame of an invocation (`ty` 1) or stream invocation (`ty` 4) of `target` with the
    /// arguments written so far.
    pub fn finish(
        mut self,
        ty: u8,
        invocation_id: Option<&str>,
        target: &str,
        stream_ids: Option<&[String]>,
        headers: &Headers,
    ) -> Bytes {
        let out = &mut self.out;
        let arguments_end = out.len();
        match self.protocol {
            HubProtocol::Json => json::write_call_head(out, ty, invocation_id, target),
            HubProtocol::MessagePack => {
                let head = CallHead {
                    ty,
                    headers,
                    invocation_id,
                    target,
                    has_stream_ids: stream_ids.is_some(),
                    arguments: self.arguments,
                };
                msgpack::write_call_head(out, &head);
            }
        }
        let head_end = out.len();
        match self.protocol {
            HubProtocol::Json => json::write_call_tail(out, stream_ids, headers),
            HubProtocol::MessagePack => msgpack::write_call_tail(out, stream_ids),
        }
        let body_end = out.len();
        if self.protocol == HubProtocol::MessagePack {
            msgpack::write_length_prefix(body_end, out);
        }
        let (arguments, head, tail, prefix) = (
            &out[..arguments_end],
            &out[arguments_end..head_end],
            &out[head_end..body_end],
            &out[body_end..],
        );
        let mut frame = Vec::with_capacity(out.len());
        frame.extend_from_slice(prefix);
        frame.extend_from_slice(head);
        frame.extend_from_slice(arguments);
        frame.extend_from_slice(tail);
        if self.out.capacity() <= CALL_SCRATCH_KEPT {
            CALL_SCRATCH.with(|kept| kept.set(self.out));
        }
        Bytes::from(frame)
    }
}

/// Turns the bytes a transport delivers into hub messages, however they were split.
///
/// One transport message may carry several hub messages, and on byte-stream transports a hub
/// message may arrive in pieces: push bytes as they come, then take messages until `None`.
///
/// ```
/// use hublink_proto::{HubMessage, HubProtocol};
/// let mut decoder = HubProtocol::Json.decoder(1024);
/// decoder.push(b"{\"type\":6}\x1e{\"ty");
/// assert!(matches!(decoder.next_message(), Ok(Some(HubMessage::Ping))));
/// assert!(matches!(decoder.next_message(), Ok(None)));
/// decoder.push(b"pe\":6}\x1e");
/// assert!(matches!(decoder.next_message(), Ok(Some(HubMessage::Ping))));
/// ```
#[derive(Debug)]
pub struct MessageDecoder {
    protocol: HubProtocol,
    /// Bytes that begin a message not yet complete, copied from what was pushed.
    buffer: BytesMut,
    /// A chunk given with [`push_bytes`](Self::push_bytes) while `buffer` was empty: its
    /// messages are sliced out of it without a copy. Never holds bytes while `buffer` does.
    current: Bytes,
    /// JSON: how many buffered bytes are known to hold no separator.
    scanned: usize,
    max_message_size: usize,
}

/// Where [`MessageDecoder::locate`] found the next message.
enum Located {
    /// `skip` bytes (a length prefix), the message's `len` bytes, then `tail` bytes (a
    /// separator).
    Whole {
        skip: usize,
        len: usize,
        tail: usize,
    },
    /// No whole message yet; JSON: the bytes scanned for a separator.
    Partial { scanned: usize },
}

impl MessageDecoder {
    /// Adds bytes received from the transport.
    pub fn push(&mut self, data: &[u8]) {
        self.spill_current();
        self.buffer.extend_from_slice(data);
    }

    /// Adds bytes received from the transport, without copying them when no partial message
    /// is waiting (a transport message usually holds whole hub messages): the messages then
    /// share `data`'s memory.
    ///
    /// ```
    /// use bytes::Bytes;
    /// use hublink_proto::{HubMessage, HubProtocol};
    /// let mut decoder = HubProtocol::Json.decoder(1024);
    /// decoder.push_bytes(Bytes::from_static(b"{\"type\":6}\x1e{\"ty"));
    /// assert!(matches!(decoder.next_message(), Ok(Some(HubMessage::Ping))));
    /// assert!(matches!(decoder.next_message(), Ok(None)));
    /// decoder.push_bytes(Bytes::from_static(b"pe\":6}\x1e"));
    /// assert!(matches!(decoder.next_message(), Ok(Some(HubMessage::Ping))));
    /// ```
    pub fn push_bytes(&mut self, data: Bytes) {
        if self.buffer.is_empty() && self.current.is_empty() {
            self.current = data;
        } else {
            self.push(&data);
        }
    }

    /// Moves what is left of `current` into `buffer`, where a message cut short waits for
    /// the rest of its bytes.
    fn spill_current(&mut self) {
        if !self.current.is_empty() {
            self.buffer.extend_from_slice(&self.current);
            self.current = Bytes::new();
        }
    }

    /// The next complete message, `Ok(None)` when more bytes are needed.
    ///
    /// Messages of unknown types are skipped, as the official clients do. After an error the
    /// decoder should be dropped: the stream can no longer be trusted.
    pub fn next_message(&mut self) -> Result<Option<HubMessage>, ProtocolError> {
        loop {
            let Some(frame) = self.next_frame()? else {
                return Ok(None);
            };
            if let Some(message) = self.protocol.parse_frame(&frame)? {
                return Ok(Some(message));
            }
        }
    }

    /// Checks that nothing but whole messages was pushed.
    pub fn finish(&self) -> Result<(), ProtocolError> {
        let rest = if self.current.is_empty() {
            &self.buffer[..]
        } else {
            &self.current[..]
        };
        if rest.is_empty() {
            return Ok(());
        }
        match self.protocol {
            HubProtocol::Json => Err(ProtocolError::Incomplete),
            HubProtocol::MessagePack => match msgpack::read_length_prefix(rest)? {
                None => Err(ProtocolError::BadLengthPrefix),
                Some(_) => Err(ProtocolError::IncompleteFrame),
            },
        }
    }

    /// Forgets a partly received message (after its transport was replaced).
    pub fn clear(&mut self) {
        self.buffer.clear();
        self.current = Bytes::new();
        self.scanned = 0;
    }

    /// Bytes received but not yet part of a whole message.
    pub fn buffered(&self) -> usize {
        self.buffer.len() + self.current.len()
    }

    fn next_frame(&mut self) -> Result<Option<Bytes>, ProtocolError> {
        if !self.current.is_empty() {
            return match self.locate(&self.current, 0)? {
                Located::Whole { skip, len, tail } => {
                    self.current.advance(skip);
                    let frame = self.current.split_to(len);
                    self.current.advance(tail);
                    Ok(Some(frame))
                }
                Located::Partial { scanned } => {
                    // The rest of `current` begins a message that continues in a later push;
                    // `buffer` was empty, so it now holds exactly the bytes just scanned.
                    self.spill_current();
                    self.scanned = scanned;
                    Ok(None)
                }
            };
        }
        match self.locate(&self.buffer, self.scanned)? {
            Located::Whole { skip, len, tail } => {
                self.scanned = 0;
                self.buffer.advance(skip);
                let frame = self.buffer.split_to(len).freeze();
                self.buffer.advance(tail);
                Ok(Some(frame))
            }
            Located::Partial { scanned } => {
                self.scanned = scanned;
                Ok(None)
            }
        }
    }

    /// Where the first whole message of `data` is. JSON: the first `scanned` bytes are known
    /// to hold no separator.
    fn locate(&self, data: &[u8], scanned: usize) -> Result<Located, ProtocolError> {
        match self.protocol {
            HubProtocol::Json => match memchr::memchr(json::RECORD_SEPARATOR, &data[scanned..]) {
                Some(offset) => {
                    let end = scanned + offset;
                    if end > self.max_message_size {
                        return Err(self.too_large(end));
                    }
                    Ok(Located::Whole {
                        skip: 0,
                        len: end,
                        tail: 1,
                    })
                }
                None if data.len() > self.max_message_size => Err(self.too_large(data.len())),
                None => Ok(Located::Partial {
                    scanned: data.len(),
                }),
            },
            HubProtocol::MessagePack => {
                let partial = Located::Partial { scanned: 0 };
                let Some((len, prefix)) = msgpack::read_length_prefix(data)? else {
                    return Ok(partial);
                };
                if len > self.max_message_size {
                    return Err(self.too_large(len));
                }
                if data.len() < prefix + len {
                    return Ok(partial);
                }
                Ok(Located::Whole {
                    skip: prefix,
                    len,
                    tail: 0,
                })
            }
        }
    }

    fn too_large(&self, size: usize) -> ProtocolError {
        ProtocolError::MessageTooLarge {
            size,
            max: self.max_message_size,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Invocation, StreamInvocation, Value};

    #[test]
    fn call_writer_frames_match_write_message() {
        let long = "x".repeat(300);
        let header_sets: [Headers; 2] = [
            vec![],
            vec![
                (
                    "traceparent".into(),
                    "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".into(),
                ),
                ("tracestate".into(), "congo=t61rcWkgMzE".into()),
            ],
        ];
        for protocol in [HubProtocol::Json, HubProtocol::MessagePack] {
            for (id, stream_ids) in [
                (None, None),
                (Some("7"), None),
                (Some("12"), Some(vec!["10".to_owned(), "11".to_owned()])),
            ] {
                for arguments in [vec![], vec!["a"], vec!["a", long.as_str()]] {
                    let mut call = CallWriter::new(protocol);
                    for (i, argument) in arguments.iter().enumerate() {
                        if i == 0 {
                            call.value(argument).unwrap();
                        } else {
                            call.payload(&Payload::Value(Value::from(*argument)))
                                .unwrap();
                        }
                    }
                    let payloads: Vec<Payload> = arguments
                        .iter()
                        .map(|a| protocol.payload(a).unwrap())
                        .collect();
                    for (headers, ty) in header_sets.iter().flat_map(|h| [(h, 1), (h, 4)]) {
                        if ty == 4 && id.is_none() {
                            continue;
                        }
                        let frame = CallWriter {
                            out: call.out.clone(),
                            ..call
                        }
                        .finish(
                            ty,
                            id,
                            "Echo",
                            stream_ids.as_deref(),
                            headers,
                        );
                        let message = if ty == 1 {
                            HubMessage::Invocation(Invocation {
                                invocation_id: id.map(str::to_owned),
                                target: "Echo".into(),
                                arguments: payloads.clone(),
                                stream_ids: stream_ids.clone(),
                                headers: headers.clone(),
                            })
                        } else {
                            HubMessage::StreamInvocation(StreamInvocation {
                                invocation_id: id.unwrap().to_owned(),
                                target: "Echo".into(),
                                arguments: payloads.clone(),
                                stream_ids: stream_ids.clone(),
                                headers: headers.clone(),
                            })
                        };
                        let mut expected = Vec::new();
                        protocol.write_message(&message, &mut expected).unwrap();
                        assert_eq!(
                            &frame[..],
                            &expected[..],
                            "{protocol:?} {ty} {id:?} {headers:?}"
                        );
                    }
                }
            }
        }
    }
}
