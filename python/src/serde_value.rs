//! serde adapters for [`Value`], for the two core APIs that take serde types only:
//! upload streams (`UploadStream` items must be `Serialize`), client results
//! (`HandlerOutput` for `Result<T: Serialize, _>`) and server streams (`HubStream<T:
//! DeserializeOwned>`).
//!
//! They hold no encoding rule of their own. JSON goes through the core's
//! `protocol::json::{write_value, read_value}` (base64 bytes, ISO-8601 timestamps, as .NET);
//! MessagePack maps each `Value` variant onto the serde call `rmp_serde` encodes as that
//! MessagePack type (timestamps through the core's own `Timestamp` serde impl, and received
//! extensions through the core's `protocol::msgpack::read_value`).
//!
//! When the core implements `Serialize`/`Deserialize` for `Value`, this file goes away.

use std::fmt;

use hublink::protocol::{json, msgpack};
use hublink::Value;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{self, SerializeMap, SerializeSeq, Serializer};
use serde::{Deserialize, Serialize};

/// Serializes a [`Value`] in the protocol of the serializer.
pub(crate) struct SerValue<'a>(pub(crate) &'a Value);

/// An owned [`SerValue`], for APIs that take items by value.
pub(crate) struct OwnedSerValue(pub(crate) Value);

impl Serialize for OwnedSerValue {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        SerValue(&self.0).serialize(s)
    }
}

struct Bin<'a>(&'a [u8]);

impl Serialize for Bin<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(self.0)
    }
}

impl Serialize for SerValue<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            // JSON: the core's writer, passed through verbatim.
            let mut out = Vec::new();
            json::write_value(self.0, &mut out).map_err(|e| match e {
                hublink::protocol::ProtocolError::Encode(text) => ser::Error::custom(text),
                other => ser::Error::custom(other),
            })?;
            let text = String::from_utf8(out).map_err(ser::Error::custom)?;
            let raw = serde_json::value::RawValue::from_string(text).map_err(ser::Error::custom)?;
            return raw.serialize(s);
        }
        match self.0 {
            Value::Null => s.serialize_unit(),
            Value::Bool(b) => s.serialize_bool(*b),
            Value::Int(n) => s.serialize_i64(*n),
            Value::UInt(n) => s.serialize_u64(*n),
            Value::F32(f) => s.serialize_f32(*f),
            Value::F64(f) => s.serialize_f64(*f),
            Value::String(text) => s.serialize_str(text),
            Value::Binary(bytes) => s.serialize_bytes(bytes),
            Value::Timestamp(t) => t.serialize(s),
            Value::Array(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(&SerValue(item))?;
                }
                seq.end()
            }
            Value::Map(entries) => {
                let mut map = s.serialize_map(Some(entries.len()))?;
                for (k, v) in entries {
                    map.serialize_entry(&SerValue(k), &SerValue(v))?;
                }
                map.end()
            }
            Value::Extension(code, data) => {
                s.serialize_newtype_struct(rmp_serde::MSGPACK_EXT_STRUCT_NAME, &(*code, Bin(data)))
            }
        }
    }
}

/// Deserializes any payload into a [`Value`].
pub(crate) struct DeValue(pub(crate) Value);

impl<'de> Deserialize<'de> for DeValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            // JSON: the payload's text, read by the core's reader.
            let raw = Box::<serde_json::value::RawValue>::deserialize(d)?;
            return json::read_value(raw.get().as_bytes())
                .map(DeValue)
                .map_err(de::Error::custom);
        }
        d.deserialize_any(MessagePackVisitor).map(DeValue)
    }
}

struct MessagePackValue(Value);

impl<'de> Deserialize<'de> for MessagePackValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(MessagePackVisitor).map(MessagePackValue)
    }
}

struct MessagePackVisitor;

impl<'de> Visitor<'de> for MessagePackVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a MessagePack value")
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Int(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from_u64(v))
    }

    fn visit_f32<E>(self, v: f32) -> Result<Value, E> {
        Ok(Value::F32(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::F64(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_bytes<E>(self, v: &[u8]) -> Result<Value, E> {
        Ok(Value::Binary(v.to_vec()))
    }

    fn visit_byte_buf<E>(self, v: Vec<u8>) -> Result<Value, E> {
        Ok(Value::Binary(v))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        while let Some(MessagePackValue(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(0).min(1024));
        while let Some((MessagePackValue(k), MessagePackValue(v))) = map.next_entry()? {
            entries.push((k, v));
        }
        Ok(Value::Map(entries))
    }

    /// `rmp_serde` hands extensions over as a newtype holding `(type, bytes)`.
    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        let (code, ExtData(data)) = <(i8, ExtData)>::deserialize(d)?;
        // Re-frame the extension and let the core read it (timestamps, type -1).
        let mut framed = Vec::with_capacity(data.len() + 6);
        rmp::encode::write_ext_meta(&mut framed, data.len() as u32, code)
            .map_err(de::Error::custom)?;
        framed.extend_from_slice(&data);
        msgpack::read_value(&framed).map_err(de::Error::custom)
    }
}

struct ExtData(Vec<u8>);

impl<'de> Deserialize<'de> for ExtData {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct BytesVisitor;
        impl Visitor<'_> for BytesVisitor {
            type Value = ExtData;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("extension bytes")
            }
            fn visit_bytes<E>(self, v: &[u8]) -> Result<ExtData, E> {
                Ok(ExtData(v.to_vec()))
            }
            fn visit_byte_buf<E>(self, v: Vec<u8>) -> Result<ExtData, E> {
                Ok(ExtData(v))
            }
        }
        d.deserialize_bytes(BytesVisitor)
    }
}
