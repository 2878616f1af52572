//! The MessagePack hub protocol when the `messagepack` feature is off: the same functions as
//! `msgpack.rs`, each refusing with [`UNAVAILABLE`], so that a JSON-only build (the browser
//! package's small one) links neither `rmp` nor `rmp-serde`. hublink refuses
//! `HubProtocol::MessagePack` before connecting in such a build; these only answer callers of
//! this crate who ask anyway.

use bytes::Bytes;

use super::error::ProtocolError;
use super::message::*;
use super::value::Value;

/// The error of every MessagePack operation in a build without the `messagepack` feature.
pub const UNAVAILABLE: &str =
    "the MessagePack hub protocol is not in this build (Cargo feature `messagepack`)";

/// How deep arrays and maps may nest inside one value before decoding gives up.
pub const MAX_NESTING: usize = 128;

/// rmp-serde's name for extension types (its `MSGPACK_EXT_STRUCT_NAME`), which `Value` and
/// `Timestamp` name in their `Serialize` impls whatever the serializer.
pub(crate) const EXT_STRUCT_NAME: &str = "_ExtStruct";

fn unavailable() -> ProtocolError {
    ProtocolError::Encode(UNAVAILABLE.to_owned())
}

/// Writes nothing: MessagePack is not in this build.
pub fn write_length_prefix(_len: usize, _out: &mut Vec<u8>) {}

/// Refuses: MessagePack is not in this build.
pub fn read_length_prefix(_buf: &[u8]) -> Result<Option<(usize, usize)>, ProtocolError> {
    Err(unavailable())
}

/// Refuses: MessagePack is not in this build.
pub fn write_message(_message: &HubMessage, _out: &mut Vec<u8>) -> Result<(), ProtocolError> {
    Err(unavailable())
}

/// What an invocation holds before its arguments (unused in this build).
#[allow(dead_code)]
pub(crate) struct CallHead<'a> {
    pub ty: u8,
    pub headers: &'a Headers,
    pub invocation_id: Option<&'a str>,
    pub target: &'a str,
    pub has_stream_ids: bool,
    pub arguments: usize,
}

/// Writes nothing: MessagePack is not in this build.
pub(crate) fn write_call_head(_out: &mut Vec<u8>, _call: &CallHead) {}

/// Writes nothing: MessagePack is not in this build.
pub(crate) fn write_call_tail(_out: &mut Vec<u8>, _stream_ids: Option<&[String]>) {}

/// Refuses: MessagePack is not in this build.
pub(crate) fn write_serialized<T: serde::Serialize + ?Sized>(
    _value: &T,
    _out: &mut Vec<u8>,
) -> Result<(), ProtocolError> {
    Err(unavailable())
}

/// Refuses: MessagePack is not in this build.
pub fn write_payload(_out: &mut Vec<u8>, _payload: &Payload) -> Result<(), ProtocolError> {
    Err(unavailable())
}

/// Refuses: MessagePack is not in this build.
pub fn write_value(_value: &Value, _out: &mut Vec<u8>) -> Result<(), ProtocolError> {
    Err(unavailable())
}

/// Refuses: MessagePack is not in this build.
pub fn read_value(_bytes: &[u8]) -> Result<Value, ProtocolError> {
    Err(unavailable())
}

/// Refuses: MessagePack is not in this build.
pub fn parse_body(_body: &Bytes) -> Result<Option<HubMessage>, ProtocolError> {
    Err(unavailable())
}
