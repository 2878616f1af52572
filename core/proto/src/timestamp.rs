//! Timestamps: the MessagePack timestamp extension, ISO-8601 text in JSON.

use std::fmt;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::ser::Serializer;
use serde::{Deserialize, Serialize};

/// The MessagePack extension type of timestamps.
pub(crate) const TIMESTAMP_EXT: i8 = -1;

/// A point in time as the MessagePack timestamp extension (type -1) carries it.
///
/// ```
/// use hublink_proto::value::Timestamp;
/// let t = Timestamp::new(1_514_805_840, 0).unwrap(); // 2018-01-01T11:24:00Z
/// assert_eq!(t.to_rfc3339(), "2018-01-01T11:24:00Z");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp {
    seconds: i64,
    nanoseconds: u32,
}

impl Timestamp {
    /// Seconds since the Unix epoch and the nanoseconds within that second (below 10⁹).
    pub fn new(seconds: i64, nanoseconds: u32) -> Option<Self> {
        (nanoseconds < 1_000_000_000).then_some(Timestamp {
            seconds,
            nanoseconds,
        })
    }

    /// Whole seconds since the Unix epoch (negative before 1970).
    pub fn seconds(&self) -> i64 {
        self.seconds
    }

    /// Nanoseconds within the second, always below 10⁹.
    pub fn nanoseconds(&self) -> u32 {
        self.nanoseconds
    }

    /// The ISO-8601 / RFC 3339 text .NET writes for a UTC `DateTime` in JSON, e.g.
    /// `2000-01-01T00:00:00Z`, with a fraction only when there is one.
    pub fn to_rfc3339(&self) -> String {
        let format = time::format_description::well_known::Rfc3339;
        match time::OffsetDateTime::from_unix_timestamp(self.seconds)
            .map(|t| t + time::Duration::nanoseconds(i64::from(self.nanoseconds)))
        {
            Ok(t) => t
                .format(&format)
                .unwrap_or_else(|_| format!("{}.{:09}", self.seconds, self.nanoseconds)),
            Err(_) => format!("{}.{:09}", self.seconds, self.nanoseconds),
        }
    }
}

impl Timestamp {
    /// Parses ISO-8601 / RFC 3339 text such as `2000-01-01T00:00:00Z`.
    pub fn parse_rfc3339(text: &str) -> Option<Timestamp> {
        let t = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
            .ok()?;
        Timestamp::new(t.unix_timestamp(), t.nanosecond())
    }

    /// The extension body in its smallest form (32, 64 or 96 bits), as the spec orders.
    pub(crate) fn to_ext_bytes(self) -> Vec<u8> {
        let (secs, nanos) = (self.seconds, self.nanoseconds);
        if (0..1 << 34).contains(&secs) {
            if nanos == 0 && secs < 1 << 32 {
                (secs as u32).to_be_bytes().to_vec()
            } else {
                ((u64::from(nanos) << 34) | secs as u64)
                    .to_be_bytes()
                    .to_vec()
            }
        } else {
            let mut out = nanos.to_be_bytes().to_vec();
            out.extend_from_slice(&secs.to_be_bytes());
            out
        }
    }

    /// Reads an extension body of 4, 8 or 12 bytes.
    pub(crate) fn from_ext_bytes(data: &[u8]) -> Option<Timestamp> {
        let (seconds, nanos) = match data.len() {
            4 => (i64::from(u32::from_be_bytes(data.try_into().ok()?)), 0),
            8 => {
                let packed = u64::from_be_bytes(data.try_into().ok()?);
                ((packed & ((1 << 34) - 1)) as i64, (packed >> 34) as u32)
            }
            12 => (
                i64::from_be_bytes(data[4..].try_into().ok()?),
                u32::from_be_bytes(data[..4].try_into().ok()?),
            ),
            _ => return None,
        };
        Timestamp::new(seconds, nanos)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

/// Bytes serialized as bytes (MessagePack `bin`), not as a sequence of numbers.
struct ExtBody<'a>(&'a [u8]);

impl Serialize for ExtBody<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(self.0)
    }
}

/// In JSON (a human-readable format) a timestamp is ISO-8601 text, as .NET writes a UTC
/// `DateTime`; in MessagePack it is the timestamp extension, as .NET and the official
/// JavaScript client write it.
///
/// ```
/// use hublink_proto::{Payload, Timestamp};
/// let t = Timestamp::new(946_684_800, 0).unwrap();
/// let Payload::Json(text) = Payload::json(&t).unwrap() else { unreachable!() };
/// assert_eq!(&text[..], b"\"2000-01-01T00:00:00Z\"");
/// let Payload::MessagePack(bytes) = Payload::messagepack(&t).unwrap() else { unreachable!() };
/// assert_eq!(&bytes[..], [0xd6, 0xff, 0x38, 0x6d, 0x43, 0x80]);
/// assert_eq!(Payload::MessagePack(bytes).deserialize::<Timestamp>().unwrap(), t);
/// ```
impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(&self.to_rfc3339())
        } else {
            let body = self.to_ext_bytes();
            s.serialize_newtype_struct(
                crate::msgpack::EXT_STRUCT_NAME,
                &(TIMESTAMP_EXT, ExtBody(&body)),
            )
        }
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            let text = String::deserialize(d)?;
            Timestamp::parse_rfc3339(&text)
                .ok_or_else(|| de::Error::custom(format!("not an ISO-8601 timestamp: {text}")))
        } else {
            d.deserialize_newtype_struct(crate::msgpack::EXT_STRUCT_NAME, ExtVisitor)
        }
    }
}

struct ExtVisitor;

impl<'de> Visitor<'de> for ExtVisitor {
    type Value = Timestamp;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a MessagePack timestamp extension")
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Timestamp, D::Error> {
        d.deserialize_tuple(2, self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Timestamp, A::Error> {
        let kind: i8 = seq
            .next_element()?
            .ok_or_else(|| de::Error::custom("missing extension type"))?;
        let body: ExtBytes = seq
            .next_element()?
            .ok_or_else(|| de::Error::custom("missing extension body"))?;
        if kind != TIMESTAMP_EXT {
            return Err(de::Error::custom(format!(
                "extension type {kind} is not a timestamp"
            )));
        }
        Timestamp::from_ext_bytes(&body.0)
            .ok_or_else(|| de::Error::custom("an invalid MessagePack timestamp"))
    }
}

struct ExtBytes(Vec<u8>);

impl<'de> Deserialize<'de> for ExtBytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct BytesVisitor;
        impl<'de> Visitor<'de> for BytesVisitor {
            type Value = ExtBytes;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("bytes")
            }
            fn visit_bytes<E>(self, v: &[u8]) -> Result<ExtBytes, E> {
                Ok(ExtBytes(v.to_vec()))
            }
            fn visit_byte_buf<E>(self, v: Vec<u8>) -> Result<ExtBytes, E> {
                Ok(ExtBytes(v))
            }
        }
        d.deserialize_bytes(BytesVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::Payload;

    #[test]
    fn timestamps_format_like_dotnet() {
        let cases = [
            (946_684_800, 0, "2000-01-01T00:00:00Z"),
            (1_514_805_840, 0, "2018-01-01T11:24:00Z"),
            (0, 500_000_000, "1970-01-01T00:00:00.5Z"),
            (-1, 0, "1969-12-31T23:59:59Z"),
        ];
        for (s, n, text) in cases {
            assert_eq!(Timestamp::new(s, n).unwrap().to_rfc3339(), text);
        }
        assert!(Timestamp::new(0, 1_000_000_000).is_none());
    }

    #[test]
    fn typed_timestamps_round_trip_in_both_protocols() {
        for (s, n) in [
            (946_684_800, 0),
            (1_700_000_000, 123_000_000),
            (-14_182_940, 0),
        ] {
            let t = Timestamp::new(s, n).unwrap();
            for payload in [
                Payload::json(&t).unwrap(),
                Payload::messagepack(&t).unwrap(),
            ] {
                assert_eq!(payload.deserialize::<Timestamp>().unwrap(), t);
                let value = payload.to_value().unwrap();
                if let Payload::MessagePack(_) = payload {
                    assert_eq!(value, crate::value::Value::Timestamp(t));
                }
            }
        }
    }
}
