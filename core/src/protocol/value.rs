//! A dynamic value that can hold everything MessagePack can carry.
//!
//! Bindings (Python, Kotlin, Swift, JavaScript) exchange arguments and results as [`Value`]s.
//! Rust callers normally use serde types instead and never build this tree.

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_choose_signed_when_they_fit() {
        assert_eq!(Value::from(5u64), Value::Int(5));
        assert_eq!(Value::from(u64::MAX), Value::UInt(u64::MAX));
    }
}
