//! The hub message stream across transport messages, as the driver decodes it: one decoder for
//! the whole connection, each transport message pushed (in pieces the fuzzer picks) and then
//! finished, since a transport message must hold whole hub messages.

use arbitrary::Arbitrary;
use bytes::Bytes;
use hublink_proto::{HubMessage, HubProtocol, MessageDecoder};

use crate::generate::GeneratedTransportMessage;
use crate::{encode, pieces, MAX_MESSAGE_SIZE};

/// A transport message and where the fuzzer cuts it.
#[derive(Arbitrary, Debug)]
pub struct CutTransportMessage {
    pub message: GeneratedTransportMessage,
    /// Piece ends, taken modulo the message's length.
    pub cuts: Vec<u16>,
}

/// A connection's transport messages.
#[derive(Arbitrary, Debug)]
pub struct MessageStreamInput {
    pub messagepack: bool,
    /// The largest hub message; 0 for [`MAX_MESSAGE_SIZE`]. Small ones reach the size checks.
    pub max_message_size: u16,
    /// Whether pieces go in with `push_bytes` (no copy, as the driver does) or `push`.
    pub push_bytes: bool,
    pub transport_messages: Vec<CutTransportMessage>,
}

/// Pushes `pieces` and takes every message after each; `Err` at the first error.
fn decode_pieces(
    decoder: &mut MessageDecoder,
    pieces: &[&[u8]],
    push_bytes: bool,
    out: &mut Vec<HubMessage>,
) -> Result<(), ()> {
    for piece in pieces {
        if push_bytes {
            decoder.push_bytes(Bytes::copy_from_slice(piece));
        } else {
            decoder.push(piece);
        }
        while let Some(message) = decoder.next_message().map_err(|_| ())? {
            out.push(message);
        }
    }
    Ok(())
}

fn assert_same(protocol: HubProtocol, a: &[HubMessage], b: &[HubMessage], what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: message counts");
    for (x, y) in a.iter().zip(b) {
        assert_eq!(encode(protocol, x), encode(protocol, y), "{what}");
    }
}

/// Each transport message decoded whole (`parse_messages`) and in pieces through the
/// connection's one decoder agree, message for message, up to the first failure, which both
/// see in the same transport message. All of them as one byte stream (pieces ignoring the
/// transport messages' ends, no check in between) agrees with the whole concatenation, and,
/// when every transport message decoded, with their messages in order.
pub fn message_stream(input: &MessageStreamInput) {
    let protocol = if input.messagepack {
        HubProtocol::MessagePack
    } else {
        HubProtocol::Json
    };
    let max = match input.max_message_size {
        0 => MAX_MESSAGE_SIZE,
        n => usize::from(n),
    };
    let transport_messages: Vec<(Vec<u8>, &[u16])> = input
        .transport_messages
        .iter()
        .map(|t| (t.message.to_bytes(protocol), &t.cuts[..]))
        .collect();

    // Transport message by transport message, as the driver does.
    let mut decoder = protocol.decoder(max);
    let mut all_decoded = true;
    let mut in_order = Vec::new();
    for (index, (bytes, cuts)) in transport_messages.iter().enumerate() {
        let whole = protocol.parse_messages(bytes, max);
        let mut got = Vec::new();
        let incremental = decode_pieces(
            &mut decoder,
            &pieces(bytes, cuts),
            input.push_bytes,
            &mut got,
        )
        .and_then(|()| decoder.finish().map_err(|_| ()));
        match (&whole, incremental) {
            (Ok(messages), Ok(())) => {
                assert_eq!(decoder.buffered(), 0, "finished with bytes left");
                assert_same(protocol, messages, &got, "whole vs pieces");
                in_order.extend(got);
            }
            (Err(_), Err(())) => {
                all_decoded = false;
                break;
            }
            (whole, incremental) => panic!(
                "transport message {index}: whole {:?}, pieces {incremental:?}",
                whole.as_ref().map(Vec::len)
            ),
        }
    }

    // One byte stream.
    let stream: Vec<u8> = transport_messages
        .iter()
        .flat_map(|(bytes, _)| bytes.iter().copied())
        .collect();
    let whole = protocol.parse_messages(&stream, max);
    let stream_cuts: Vec<u16> = transport_messages
        .iter()
        .flat_map(|(_, cuts)| cuts.iter().copied())
        .collect();
    let mut decoder = protocol.decoder(max);
    let mut got = Vec::new();
    let incremental = decode_pieces(
        &mut decoder,
        &pieces(&stream, &stream_cuts),
        input.push_bytes,
        &mut got,
    )
    .and_then(|()| decoder.finish().map_err(|_| ()));
    match (&whole, incremental) {
        (Ok(messages), Ok(())) => assert_same(protocol, messages, &got, "stream whole vs pieces"),
        (Err(_), Err(())) => {}
        (whole, incremental) => panic!(
            "stream: whole {:?}, pieces {incremental:?}",
            whole.as_ref().map(Vec::len)
        ),
    }
    if all_decoded {
        let messages = whole.expect("whole transport messages make a whole stream");
        assert_same(
            protocol,
            &messages,
            &in_order,
            "stream vs transport messages",
        );
    }
}
