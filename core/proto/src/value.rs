//! A dynamic value that can hold everything MessagePack can carry.
//!
//! Bindings (Python, Kotlin, Swift, JavaScript) exchange arguments and results as [`Value`]s.
//! Rust callers normally use serde types instead and never build this tree.

use std::fmt;

use base64::Engine as _;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Error as _, SerializeMap, SerializeSeq, Serializer};
use serde::{Deserialize, Serialize};

pub use super::timestamp::Timestamp;

/// A dynamic value: the union of what JSON and MessagePack can carry.
///
/// Maps keep their order and may have keys that are not strings (MessagePack allows it).
/// Integers keep their full 64-bit range, signed and unsigned.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Value {
    /// JSON `null`, MessagePack nil.
    #[default]
    Null,
    /// A boolean.
    Bool(bool),
    /// A signed integer (negative numbers, and what fits in `i64`).
    Int(i64),
    /// An unsigned integer above `i64::MAX`.
    UInt(u64),
    /// A 32-bit float (MessagePack `float 32`).
    F32(f32),
    /// A 64-bit float.
    F64(f64),
    /// A UTF-8 string.
    String(String),
    /// Bytes: MessagePack `bin`; base64 text in JSON, as .NET writes `byte[]`.
    Binary(Vec<u8>),
    /// An array.
    Array(Vec<Value>),
    /// A map, in the order it was received or built.
    Map(Vec<(Value, Value)>),
    /// A timestamp: the MessagePack timestamp extension; ISO-8601 text in JSON.
    Timestamp(Timestamp),
    /// Any other MessagePack extension type, kept as is.
    Extension(i8, Vec<u8>),
}

impl Value {
    /// An integer value, choosing [`Value::Int`] or [`Value::UInt`] by range.
    pub fn from_u64(n: u64) -> Value {
        i64::try_from(n).map_or(Value::UInt(n), Value::Int)
    }

    /// Deep equality that compares numbers by value, whatever their width or kind: `1500`,
    /// `1500.0` and `1.5e3` are the same number.
    pub fn same_as(&self, other: &Value) -> bool {
        match (self, other) {
            (Value::Array(a), Value::Array(b)) => {
                a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.same_as(y))
            }
            (Value::Map(a), Value::Map(b)) => {
                a.len() == b.len()
                    && a.iter()
                        .zip(b)
                        .all(|((ka, va), (kb, vb))| ka.same_as(kb) && va.same_as(vb))
            }
            (a, b) => match (a.as_number(), b.as_number()) {
                (Some(x), Some(y)) => x == y,
                _ => a == b,
            },
        }
    }

    /// A number as an exact integer when it is one, else as a float.
    fn as_number(&self) -> Option<Number> {
        let float = |f: f64| {
            if f.fract() == 0.0 && f >= i64::MIN as f64 && f < u64::MAX as f64 {
                if f < 0.0 {
                    Number::Int(f as i64 as i128)
                } else {
                    Number::Int(f as u64 as i128)
                }
            } else {
                Number::Float(f)
            }
        };
        match *self {
            Value::Int(n) => Some(Number::Int(n.into())),
            Value::UInt(n) => Some(Number::Int(n.into())),
            Value::F32(f) => Some(float(f.into())),
            Value::F64(f) => Some(float(f)),
            _ => None,
        }
    }

    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The value of `key` in a map with string keys.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Map(entries) => entries
                .iter()
                .find(|(k, _)| k.as_str() == Some(key))
                .map(|(_, v)| v),
            _ => None,
        }
    }
}

#[derive(PartialEq)]
enum Number {
    Int(i128),
    Float(f64),
}

macro_rules! value_from {
    ($($t:ty => $variant:ident via $conv:expr),* $(,)?) => {
        $(impl From<$t> for Value {
            fn from(v: $t) -> Value {
                Value::$variant($conv(v))
            }
        })*
    };
}

value_from! {
    bool => Bool via std::convert::identity,
    i8 => Int via i64::from,
    i16 => Int via i64::from,
    i32 => Int via i64::from,
    i64 => Int via std::convert::identity,
    u8 => Int via i64::from,
    u16 => Int via i64::from,
    u32 => Int via i64::from,
    f32 => F32 via std::convert::identity,
    f64 => F64 via std::convert::identity,
    String => String via std::convert::identity,
    &str => String via str::to_owned,
    Vec<u8> => Binary via std::convert::identity,
    Vec<Value> => Array via std::convert::identity,
    Timestamp => Timestamp via std::convert::identity,
}

impl From<u64> for Value {
    fn from(v: u64) -> Value {
        Value::from_u64(v)
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Value {
        v.map_or(Value::Null, Into::into)
    }
}

/// Bytes serialized as bytes (MessagePack `bin`), not as a sequence of numbers.
struct RawBytes<'a>(&'a [u8]);

impl Serialize for RawBytes<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(self.0)
    }
}

/// A `Value` serializes into any serde format. In human-readable formats (JSON) bytes become
/// base64 text and timestamps ISO-8601 text, as .NET writes them; NaN and infinities, other
/// MessagePack extensions and non-string map keys are refused rather than changed. In
/// MessagePack (rmp-serde) everything is kept.
impl Serialize for Value {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let readable = s.is_human_readable();
        match self {
            Value::Null => s.serialize_unit(),
            Value::Bool(b) => s.serialize_bool(*b),
            Value::Int(n) => s.serialize_i64(*n),
            Value::UInt(n) => s.serialize_u64(*n),
            Value::F32(f) if readable && !f.is_finite() => Err(S::Error::custom(
                "JSON cannot carry NaN or infinite numbers",
            )),
            Value::F64(f) if readable && !f.is_finite() => Err(S::Error::custom(
                "JSON cannot carry NaN or infinite numbers",
            )),
            Value::F32(f) => s.serialize_f32(*f),
            Value::F64(f) => s.serialize_f64(*f),
            Value::String(text) => s.serialize_str(text),
            Value::Binary(bytes) if readable => {
                s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes))
            }
            Value::Binary(bytes) => s.serialize_bytes(bytes),
            Value::Timestamp(t) => t.serialize(s),
            Value::Array(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Value::Map(entries) => {
                let mut map = s.serialize_map(Some(entries.len()))?;
                for (k, v) in entries {
                    if readable && !matches!(k, Value::String(_)) {
                        return Err(S::Error::custom(format!(
                            "JSON object keys must be strings, not {k:?}"
                        )));
                    }
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
            Value::Extension(kind, _) if readable => Err(S::Error::custom(format!(
                "JSON cannot carry the MessagePack extension type {kind}"
            ))),
            Value::Extension(kind, data) => {
                s.serialize_newtype_struct(crate::msgpack::EXT_STRUCT_NAME, &(kind, RawBytes(data)))
            }
        }
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any value")
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        Value::deserialize(d)
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
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(256));
        while let Some(v) = seq.next_element()? {
            items.push(v);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(0).min(256));
        while let Some(entry) = map.next_entry()? {
            entries.push(entry);
        }
        Ok(Value::Map(entries))
    }
    /// rmp-serde hands MessagePack extensions over as a newtype of (type, bytes).
    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        struct ExtVisitor;
        impl<'de> Visitor<'de> for ExtVisitor {
            type Value = Value;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a MessagePack extension")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
                let kind: i8 = seq
                    .next_element()?
                    .ok_or_else(|| de::Error::custom("missing extension type"))?;
                let Value::Binary(data) = seq
                    .next_element::<Value>()?
                    .ok_or_else(|| de::Error::custom("missing extension body"))?
                else {
                    return Err(de::Error::custom("an extension body must be bytes"));
                };
                if kind == super::timestamp::TIMESTAMP_EXT {
                    Timestamp::from_ext_bytes(&data)
                        .map(Value::Timestamp)
                        .ok_or_else(|| de::Error::custom("an invalid MessagePack timestamp"))
                } else {
                    Ok(Value::Extension(kind, data))
                }
            }
        }
        d.deserialize_tuple(2, ExtVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_pass_through_serde_in_both_protocols() {
        use crate::message::Payload;
        let value = Value::Map(vec![
            (Value::from("bytes"), Value::Binary(vec![1, 2, 3])),
            (
                Value::from("when"),
                Value::Timestamp(Timestamp::new(1, 5).unwrap()),
            ),
            (Value::from("big"), Value::UInt(u64::MAX)),
            (
                Value::from("list"),
                Value::Array(vec![Value::Null, Value::F64(0.5)]),
            ),
            (Value::from("ext"), Value::Extension(7, vec![9])),
        ]);
        let packed = Payload::messagepack(&value).unwrap();
        assert_eq!(packed.to_value().unwrap(), value, "the fast reader agrees");
        assert_eq!(packed.deserialize::<Value>().unwrap(), value);
        let mut fast = Vec::new();
        crate::msgpack::write_value(&value, &mut fast).unwrap();
        let Payload::MessagePack(bytes) = &packed else {
            unreachable!()
        };
        assert_eq!(&bytes[..], &fast[..], "the same bytes as the fast writer");

        let Value::Map(mut entries) = value else {
            unreachable!()
        };
        entries.pop();
        let text = Payload::json(&Value::Map(entries)).unwrap();
        let Payload::Json(json) = &text else {
            unreachable!()
        };
        assert_eq!(
            std::str::from_utf8(json).unwrap(),
            r#"{"bytes":"AQID","when":"1970-01-01T00:00:01.000000005Z","big":18446744073709551615,"list":[null,0.5]}"#
        );
        assert!(Payload::json(&Value::F64(f64::NAN)).is_err());
        assert!(Payload::json(&Value::Extension(1, vec![])).is_err());
    }

    #[test]
    fn integers_choose_signed_when_they_fit() {
        assert_eq!(Value::from(5u64), Value::Int(5));
        assert_eq!(Value::from(u64::MAX), Value::UInt(u64::MAX));
    }
}
