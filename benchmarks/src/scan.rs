//! Counting hub messages by type without decoding them: the floor client's receive path.
//!
//! JSON: records end with 0x1E and carry `"type":N`. MessagePack: each message is a VarInt
//! length, then an array whose first element is the type.

use hublink::HubProtocol;
use memchr::memmem::Finder;

pub const STREAM_ITEM: usize = 2;
pub const COMPLETION: usize = 3;

/// Message counts by type id (0..=8; anything unreadable lands in slot 0).
pub type Counts = [u64; 9];

pub struct Scanner {
    protocol: HubProtocol,
    type_key: Finder<'static>,
}

impl Scanner {
    pub fn new(protocol: HubProtocol) -> Self {
        Scanner {
            protocol,
            type_key: Finder::new(b"\"type\":"),
        }
    }

    /// Adds the messages of one transport message (whole messages only, as WebSocket frames
    /// carry them) to `counts`.
    pub fn count(&self, data: &[u8], counts: &mut Counts) {
        match self.protocol {
            HubProtocol::Json => self.count_json(data, counts),
            HubProtocol::MessagePack => count_messagepack(data, counts),
        }
    }

    fn count_json(&self, data: &[u8], counts: &mut Counts) {
        let mut start = 0;
        for end in memchr::memchr_iter(0x1e, data) {
            let record = &data[start..end];
            start = end + 1;
            let kind = self
                .type_key
                .find(record)
                .and_then(|at| {
                    record[at + 7..]
                        .iter()
                        .find(|b| !b.is_ascii_whitespace())
                        .copied()
                })
                .filter(u8::is_ascii_digit)
                .map_or(0, |d| usize::from(d - b'0'));
            counts[kind.min(8)] += 1;
        }
    }
}

fn count_messagepack(mut data: &[u8], counts: &mut Counts) {
    while !data.is_empty() {
        // VarInt length: 7 bits a byte, low bits first, at most 5 bytes.
        let mut length = 0usize;
        let mut used = 0;
        loop {
            let Some(&b) = data.get(used) else { return };
            length |= usize::from(b & 0x7f) << (7 * used);
            used += 1;
            if b & 0x80 == 0 || used == 5 {
                break;
            }
        }
        let Some(body) = data.get(used..used + length) else {
            return;
        };
        data = &data[used + length..];
        // The array header (fixarray, array16, array32), then the type as an integer.
        let at = match body.first() {
            Some(0x90..=0x9f) => 1,
            Some(0xdc) => 3,
            Some(0xdd) => 5,
            _ => {
                counts[0] += 1;
                continue;
            }
        };
        let kind = match body.get(at) {
            Some(&t @ 0x00..=0x7f) => usize::from(t),
            // uint8 / int8
            Some(0xcc | 0xd0) => body.get(at + 1).map_or(0, |&t| usize::from(t)),
            _ => 0,
        };
        counts[kind.min(8)] += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hublink_proto::{Completion, CompletionOutcome, HubMessage, StreamItem};

    fn encoded(protocol: HubProtocol) -> Vec<u8> {
        let mut out = Vec::new();
        let item = |i: i64| {
            HubMessage::StreamItem(StreamItem {
                invocation_id: "7".into(),
                item: protocol.payload(&i).unwrap(),
                headers: vec![],
            })
        };
        for message in [
            item(1),
            HubMessage::Ping,
            item(2),
            HubMessage::Completion(Completion {
                invocation_id: "7".into(),
                outcome: CompletionOutcome::Result(protocol.payload(&"x".repeat(300)).unwrap()),
                headers: vec![],
            }),
        ] {
            protocol.write_message(&message, &mut out).unwrap();
        }
        out
    }

    #[test]
    fn counts_types_in_both_protocols() {
        for protocol in [HubProtocol::Json, HubProtocol::MessagePack] {
            let mut counts = Counts::default();
            Scanner::new(protocol).count(&encoded(protocol), &mut counts);
            assert_eq!(counts[STREAM_ITEM], 2, "{protocol:?}");
            assert_eq!(counts[COMPLETION], 1, "{protocol:?}");
            assert_eq!(counts[6], 1, "{protocol:?}");
            assert_eq!(counts[0], 0, "{protocol:?}");
        }
    }
}
