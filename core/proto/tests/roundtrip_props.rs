//! Property tests: whatever is encoded decodes to the same thing, however the bytes are split.
//!
//! * arbitrary hub messages of all nine types → encode → decode → `same_as` the original, in
//!   both protocols (for JSON, only values JSON carries exactly: no binary, timestamps, F32,
//!   extensions or non-string map keys, and floats that survive JSON text);
//! * arbitrary sequences of messages, concatenated, cut at arbitrary points and pushed piece
//!   by piece into the incremental decoder → the same messages in order;
//! * `Value` → MessagePack → `Value` is the identity, and the encoding is the smallest form
//!   (byte-for-byte what `rmpv` writes for the same value).
//!
//! Case counts are set per test below; `PROPTEST_CASES` overrides them all (e.g. for a long
//! run). Failures are not persisted to files; proptest prints the minimal failing input.

use bytes::Bytes;
use hublink_proto::{
    json, msgpack, CancelInvocation, Close, Completion, CompletionOutcome, Headers, HubMessage,
    HubProtocol, Invocation, Payload, StreamInvocation, StreamItem, Timestamp, Value,
};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::Config;

/// `n` cases, or `PROPTEST_CASES` when it is set.
fn config(n: u32) -> Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(n);
    Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    }
}

const MESSAGE_CASES: u32 = 1024;
const SEQUENCE_CASES: u32 = 512;
const VALUE_CASES: u32 = 2048;
const WIDE_CASES: u32 = 128;

// ---------------------------------------------------------------------------------------------
// Values.

/// What a value strategy may produce.
#[derive(Clone, Copy, Debug)]
enum Carrier {
    /// Everything MessagePack carries exactly.
    MessagePack,
    /// Only what JSON text carries exactly.
    Json,
}

/// Finite floats with their edge cases; for JSON only those that survive JSON text.
fn arb_f64(carrier: Carrier) -> impl Strategy<Value = f64> {
    prop_oneof![
        Just(0.0),
        Just(-0.0),
        Just(f64::MIN),
        Just(f64::MAX),
        Just(f64::MIN_POSITIVE),
        Just(f64::EPSILON),
        Just(5e-324),
        Just(0.005),
        any::<f64>().prop_filter("finite", |f| f.is_finite()),
        (-1e6..1e6f64),
    ]
    .prop_filter("JSON text carries it exactly", move |f| match carrier {
        Carrier::MessagePack => true,
        Carrier::Json => {
            serde_json::to_string(f)
                .ok()
                .and_then(|text| serde_json::from_str::<f64>(&text).ok())
                == Some(*f)
        }
    })
}

fn arb_i64() -> impl Strategy<Value = i64> {
    prop_oneof![
        Just(i64::MIN),
        Just(i64::MAX),
        Just(-1i64),
        Just(0i64),
        Just(-32i64),
        Just(-33i64),
        Just(127i64),
        Just(128i64),
        any::<i64>(),
        any::<i8>().prop_map(i64::from),
        any::<i16>().prop_map(i64::from),
        any::<i32>().prop_map(i64::from),
        any::<u32>().prop_map(i64::from),
    ]
}

fn arb_timestamp() -> impl Strategy<Value = Timestamp> {
    let seconds = prop_oneof![
        any::<i64>(),
        (0i64..1 << 32),
        (0i64..1 << 34),
        (-(1i64 << 40)..0),
        Just(i64::MIN),
        Just(i64::MAX),
        Just(-1i64),
        Just((1i64 << 34) - 1),
        Just(1i64 << 34),
        Just((1i64 << 32) - 1),
    ];
    let nanos = prop_oneof![Just(0u32), Just(999_999_999u32), 0u32..1_000_000_000];
    (seconds, nanos).prop_map(|(s, n)| Timestamp::new(s, n).expect("nanoseconds below 10^9"))
}

fn arb_string() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => any::<String>(),
        1 => "[a-z]{0,40}",
        1 => Just(String::new()),
        // Long enough for str8, str16 and the JSON escapes of control characters.
        1 => "[\\x00-\\x1f\"\\\\\u{7f}-\u{10ffff}]{30,40}",
        1 => (250usize..300).prop_map(|n| "é".repeat(n)),
    ]
}

fn arb_leaf(carrier: Carrier) -> BoxedStrategy<Value> {
    let common = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        arb_i64().prop_map(Value::Int),
        (i64::MAX as u64 + 1..=u64::MAX).prop_map(Value::UInt),
        Just(Value::UInt(u64::MAX)),
        arb_f64(carrier).prop_map(Value::F64),
        arb_string().prop_map(Value::String),
    ];
    match carrier {
        Carrier::Json => common.boxed(),
        Carrier::MessagePack => prop_oneof![
            7 => common,
            1 => any::<f32>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(Value::F32),
            1 => prop::collection::vec(any::<u8>(), 0..300).prop_map(Value::Binary),
            1 => arb_timestamp().prop_map(Value::Timestamp),
            1 => (
                any::<i8>().prop_filter("not the timestamp type", |k| *k != -1),
                prop::collection::vec(any::<u8>(), 0..20),
            )
                .prop_map(|(k, d)| Value::Extension(k, d)),
        ]
        .boxed(),
    }
}

fn arb_value(carrier: Carrier) -> BoxedStrategy<Value> {
    arb_leaf(carrier)
        .prop_recursive(5, 64, 8, move |inner| {
            let key = match carrier {
                Carrier::Json => arb_string().prop_map(Value::String).boxed(),
                // MessagePack map keys may be anything, containers included.
                Carrier::MessagePack => prop_oneof![
                    3 => arb_string().prop_map(Value::String),
                    1 => inner.clone(),
                ]
                .boxed(),
            };
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
                prop::collection::vec((key, inner), 0..6).prop_map(Value::Map),
            ]
        })
        .boxed()
}

/// Arrays long enough to need array16 / map16 headers, which the small trees above never reach.
fn arb_wide_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        prop::collection::vec(arb_leaf(Carrier::MessagePack), 14..20).prop_map(Value::Array),
        (16usize..70_000).prop_map(|n| Value::Array(vec![Value::Null; n])),
        (16usize..300).prop_map(|n| Value::Map(
            (0..n)
                .map(|i| (Value::Int(i as i64), Value::Bool(i % 2 == 0)))
                .collect()
        )),
        (65_536usize..70_000).prop_map(|n| Value::String("x".repeat(n))),
        (65_536usize..70_000).prop_map(|n| Value::Binary(vec![7; n])),
    ]
}

// ---------------------------------------------------------------------------------------------
// Messages.

fn arb_id() -> impl Strategy<Value = String> {
    prop_oneof![
        "[0-9]{1,6}",
        any::<String>().prop_filter("ids are not empty", |s| !s.is_empty()),
    ]
}

fn arb_headers() -> impl Strategy<Value = Headers> {
    prop::collection::vec((arb_string(), arb_string()), 0..4).prop_map(|pairs| {
        // Keys are unique, as in a JSON object; the order is kept.
        let mut headers = Headers::new();
        for (k, v) in pairs {
            if !headers.iter().any(|(key, _)| *key == k) {
                headers.push((k, v));
            }
        }
        headers
    })
}

fn arb_args(carrier: Carrier) -> impl Strategy<Value = Vec<Payload>> {
    prop::collection::vec(arb_value(carrier).prop_map(Payload::Value), 0..5)
}

fn arb_stream_ids() -> impl Strategy<Value = Option<Vec<String>>> {
    prop::option::of(prop::collection::vec(arb_id(), 0..3))
}

fn arb_message(carrier: Carrier) -> impl Strategy<Value = HubMessage> {
    let invocation = (
        prop::option::of(arb_id()),
        arb_id(),
        arb_args(carrier),
        arb_stream_ids(),
        arb_headers(),
    )
        .prop_map(|(invocation_id, target, arguments, stream_ids, headers)| {
            HubMessage::Invocation(Invocation {
                invocation_id,
                target,
                arguments,
                stream_ids,
                headers,
            })
        });
    let stream_invocation = (
        arb_id(),
        arb_id(),
        arb_args(carrier),
        arb_stream_ids(),
        arb_headers(),
    )
        .prop_map(|(invocation_id, target, arguments, stream_ids, headers)| {
            HubMessage::StreamInvocation(StreamInvocation {
                invocation_id,
                target,
                arguments,
                stream_ids,
                headers,
            })
        });
    let stream_item =
        (arb_id(), arb_value(carrier), arb_headers()).prop_map(|(invocation_id, item, headers)| {
            HubMessage::StreamItem(StreamItem {
                invocation_id,
                item: Payload::Value(item),
                headers,
            })
        });
    let outcome = prop_oneof![
        Just(CompletionOutcome::Void),
        arb_value(carrier).prop_map(|v| CompletionOutcome::Result(Payload::Value(v))),
        // An empty error text means "no error" to the official clients, so errors are non-empty.
        arb_id().prop_map(CompletionOutcome::Error),
    ];
    let completion =
        (arb_id(), outcome, arb_headers()).prop_map(|(invocation_id, outcome, headers)| {
            HubMessage::Completion(Completion {
                invocation_id,
                outcome,
                headers,
            })
        });
    let cancel = (arb_id(), arb_headers()).prop_map(|(invocation_id, headers)| {
        HubMessage::CancelInvocation(CancelInvocation {
            invocation_id,
            headers,
        })
    });
    let close = (prop::option::of(arb_id()), prop::option::of(any::<bool>())).prop_map(
        |(error, allow_reconnect)| {
            HubMessage::Close(Close {
                error,
                allow_reconnect,
            })
        },
    );
    let sequence_id = prop_oneof![Just(0u64), Just(u64::MAX), any::<u64>()];
    prop_oneof![
        invocation,
        stream_invocation,
        stream_item,
        completion,
        cancel,
        Just(HubMessage::Ping),
        close,
        sequence_id
            .clone()
            .prop_map(|sequence_id| HubMessage::Ack { sequence_id }),
        sequence_id.prop_map(|sequence_id| HubMessage::Sequence { sequence_id }),
    ]
}

fn carrier(protocol: HubProtocol) -> Carrier {
    match protocol {
        HubProtocol::Json => Carrier::Json,
        HubProtocol::MessagePack => Carrier::MessagePack,
    }
}

/// A protocol and messages it carries exactly.
fn arb_protocol_and_messages(
    len: std::ops::Range<usize>,
) -> impl Strategy<Value = (HubProtocol, Vec<HubMessage>)> {
    prop_oneof![Just(HubProtocol::Json), Just(HubProtocol::MessagePack)].prop_flat_map(
        move |protocol| {
            (
                Just(protocol),
                prop::collection::vec(arb_message(carrier(protocol)), len.clone()),
            )
        },
    )
}

fn encode(protocol: HubProtocol, messages: &[HubMessage]) -> Vec<u8> {
    let mut out = Vec::new();
    for m in messages {
        protocol.write_message(m, &mut out).expect("encode");
    }
    out
}

fn assert_same(sent: &[HubMessage], got: &[HubMessage]) -> Result<(), TestCaseError> {
    prop_assert_eq!(sent.len(), got.len(), "message count");
    for (i, (a, b)) in sent.iter().zip(got).enumerate() {
        prop_assert!(a.same_as(b), "message {}:\nsent {:?}\ngot  {:?}", i, a, b);
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Reference encoding for the smallest-form check.

/// The timestamp extension body in its smallest form, written independently of the crate.
fn timestamp_ext(t: &Timestamp) -> Vec<u8> {
    let (s, n) = (t.seconds(), t.nanoseconds());
    if n == 0 && (0..1i64 << 32).contains(&s) {
        (s as u32).to_be_bytes().to_vec()
    } else if (0..1i64 << 34).contains(&s) {
        ((u64::from(n) << 34) | s as u64).to_be_bytes().to_vec()
    } else {
        [n.to_be_bytes().as_slice(), s.to_be_bytes().as_slice()].concat()
    }
}

fn to_rmpv(v: &Value) -> rmpv::Value {
    match v {
        Value::Null => rmpv::Value::Nil,
        Value::Bool(b) => rmpv::Value::Boolean(*b),
        Value::Int(n) => rmpv::Value::from(*n),
        Value::UInt(n) => rmpv::Value::from(*n),
        Value::F32(f) => rmpv::Value::F32(*f),
        Value::F64(f) => rmpv::Value::F64(*f),
        Value::String(s) => rmpv::Value::from(s.as_str()),
        Value::Binary(b) => rmpv::Value::Binary(b.clone()),
        Value::Array(items) => rmpv::Value::Array(items.iter().map(to_rmpv).collect()),
        Value::Map(entries) => rmpv::Value::Map(
            entries
                .iter()
                .map(|(k, v)| (to_rmpv(k), to_rmpv(v)))
                .collect(),
        ),
        Value::Timestamp(t) => rmpv::Value::Ext(-1, timestamp_ext(t)),
        Value::Extension(k, d) => rmpv::Value::Ext(*k, d.clone()),
    }
}

/// Exact equality that also tells -0.0 from 0.0 and compares float bits.
fn identical(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::F32(x), Value::F32(y)) => x.to_bits() == y.to_bits(),
        (Value::F64(x), Value::F64(y)) => x.to_bits() == y.to_bits(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| identical(p, q))
        }
        (Value::Map(x), Value::Map(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y)
                    .all(|((k1, v1), (k2, v2))| identical(k1, k2) && identical(v1, v2))
        }
        _ => a == b,
    }
}

// ---------------------------------------------------------------------------------------------
// Properties.

proptest! {
    #![proptest_config(config(MESSAGE_CASES))]

    #[test]
    fn json_messages_round_trip(m in arb_message(Carrier::Json)) {
        let bytes = encode(HubProtocol::Json, std::slice::from_ref(&m));
        let got = HubProtocol::Json.parse_messages(&bytes, usize::MAX);
        prop_assert!(got.is_ok(), "{:?} for {}", got, String::from_utf8_lossy(&bytes));
        assert_same(&[m], &got.unwrap())?;
    }

    #[test]
    fn messagepack_messages_round_trip(m in arb_message(Carrier::MessagePack)) {
        let bytes = encode(HubProtocol::MessagePack, std::slice::from_ref(&m));
        let got = HubProtocol::MessagePack.parse_messages(&bytes, usize::MAX);
        prop_assert!(got.is_ok(), "{:?} for {}", got, hex::encode(&bytes));
        assert_same(&[m], &got.unwrap())?;
    }

    /// A decoded message re-encodes to the very same bytes (payloads are carried verbatim).
    #[test]
    fn re_encoding_a_decoded_message_is_stable(
        (protocol, messages) in arb_protocol_and_messages(1..4)
    ) {
        let bytes = encode(protocol, &messages);
        let decoded = protocol.parse_messages(&bytes, usize::MAX).expect("decode");
        prop_assert_eq!(encode(protocol, &decoded), bytes);
    }

    /// JSON-safe messages cross protocols: JSON → MessagePack → JSON keeps every value.
    #[test]
    fn json_messages_survive_transcoding(m in arb_message(Carrier::Json)) {
        let from_json = HubProtocol::Json
            .parse_messages(&encode(HubProtocol::Json, std::slice::from_ref(&m)), usize::MAX)
            .expect("decode JSON");
        let via_msgpack = HubProtocol::MessagePack
            .parse_messages(&encode(HubProtocol::MessagePack, &from_json), usize::MAX)
            .expect("decode MessagePack");
        let back = HubProtocol::Json
            .parse_messages(&encode(HubProtocol::Json, &via_msgpack), usize::MAX)
            .expect("decode JSON again");
        assert_same(&[m], &back)?;
    }
}

proptest! {
    #![proptest_config(config(SEQUENCE_CASES))]

    /// Pieces go in through `push` (copied) or `push_bytes` (shared), in any mix, and
    /// messages are taken after every chunk or only after every third.
    #[test]
    fn split_streams_decode_to_the_same_messages(
        (protocol, messages) in arb_protocol_and_messages(1..8),
        cuts in prop::collection::vec(any::<Index>(), 0..12),
        max_piece in prop_oneof![Just(1usize), Just(7), Just(usize::MAX)],
        shared_pushes in any::<u64>(),
        take_every in prop_oneof![Just(1usize), Just(3)],
    ) {
        let bytes = encode(protocol, &messages);
        let mut cuts: Vec<usize> = cuts.iter().map(|i| i.index(bytes.len() + 1)).collect();
        cuts.push(0);
        cuts.push(bytes.len());
        cuts.sort_unstable();
        cuts.dedup();

        let mut decoder = protocol.decoder(usize::MAX);
        let mut got = Vec::new();
        let mut pushed = 0;
        for window in cuts.windows(2) {
            // Each piece may itself be pushed in smaller chunks (1 byte at a time, or 7).
            for chunk in bytes[window[0]..window[1]].chunks(max_piece.min(bytes.len()).max(1)) {
                if shared_pushes & (1 << (pushed % 64)) != 0 {
                    decoder.push_bytes(Bytes::copy_from_slice(chunk));
                } else {
                    decoder.push(chunk);
                }
                pushed += 1;
                if pushed % take_every == 0 {
                    while let Some(m) = decoder.next_message().expect("decode") {
                        got.push(m);
                    }
                }
            }
        }
        while let Some(m) = decoder.next_message().expect("decode") {
            got.push(m);
        }
        prop_assert!(decoder.finish().is_ok());
        prop_assert_eq!(decoder.buffered(), 0);
        assert_same(&messages, &got)?;
    }

    /// With the maximum set to the largest message, every message still decodes.
    #[test]
    fn the_largest_message_fits_a_maximum_of_its_own_size(
        (protocol, messages) in arb_protocol_and_messages(1..6),
    ) {
        let largest = messages
            .iter()
            .map(|m| {
                let framed = encode(protocol, std::slice::from_ref(m));
                match protocol {
                    // The record without its separator.
                    HubProtocol::Json => framed.len() - 1,
                    // The body without its length prefix.
                    HubProtocol::MessagePack => {
                        let (len, _) = msgpack::read_length_prefix(&framed).unwrap().unwrap();
                        len
                    }
                }
            })
            .max()
            .unwrap();
        let bytes = encode(protocol, &messages);
        let got = protocol.parse_messages(&bytes, largest).expect("decode");
        assert_same(&messages, &got)?;
        if largest > 0 {
            let refused = protocol.parse_messages(&bytes, largest - 1);
            prop_assert!(refused.is_err(), "a maximum of {} bytes let {} through", largest - 1, largest);
        }
    }
}

proptest! {
    #![proptest_config(config(VALUE_CASES))]

    #[test]
    fn messagepack_values_round_trip_in_the_smallest_form(v in arb_value(Carrier::MessagePack)) {
        let mut ours = Vec::new();
        msgpack::write_value(&v, &mut ours).expect("encode");
        let back = msgpack::read_value(&ours).expect("decode");
        prop_assert!(identical(&v, &back), "{:?}\nbecame {:?}", v, back);

        let mut reference = Vec::new();
        rmpv::encode::write_value(&mut reference, &to_rmpv(&v)).expect("rmpv encode");
        prop_assert_eq!(hex::encode(&ours), hex::encode(&reference));
    }

    /// Any encoding rmpv accepts decodes to the same value rmpv reads (rmpv writes the values
    /// in its own way; here it is the reader that is compared).
    #[test]
    fn messagepack_reading_agrees_with_rmpv(v in arb_value(Carrier::MessagePack)) {
        let mut bytes = Vec::new();
        rmpv::encode::write_value(&mut bytes, &to_rmpv(&v)).expect("rmpv encode");
        let ours = msgpack::read_value(&bytes).expect("decode");
        let theirs = rmpv::decode::read_value(&mut bytes.as_slice()).expect("rmpv decode");
        prop_assert_eq!(to_rmpv(&ours), theirs);
    }

    #[test]
    fn json_values_round_trip(v in arb_value(Carrier::Json)) {
        let mut text = Vec::new();
        json::write_value(&v, &mut text).expect("encode");
        let back = json::read_value(&text).expect("decode");
        prop_assert!(v.same_as(&back), "{:?}\nbecame {:?} via {}", v, back, String::from_utf8_lossy(&text));
    }
}

proptest! {
    #![proptest_config(config(WIDE_CASES))]

    #[test]
    fn wide_messagepack_values_round_trip_in_the_smallest_form(v in arb_wide_value()) {
        let mut ours = Vec::new();
        msgpack::write_value(&v, &mut ours).expect("encode");
        prop_assert!(identical(&v, &msgpack::read_value(&ours).expect("decode")));
        let mut reference = Vec::new();
        rmpv::encode::write_value(&mut reference, &to_rmpv(&v)).expect("rmpv encode");
        prop_assert!(ours == reference, "differs from rmpv for {:?}", &v);
    }
}

/// The edge cases named in the brief, checked once each outside the random search.
#[test]
fn named_edge_values_round_trip_in_both_protocols() {
    let edge = Value::Array(vec![
        Value::Int(i64::MIN),
        Value::Int(i64::MAX),
        Value::UInt(u64::MAX),
        Value::F64(f64::MAX),
        Value::F64(-0.0),
        Value::String("\u{0}\u{1f}\"\\\u{2028}\u{10ffff}".into()),
        Value::Map(vec![(Value::String(String::new()), Value::Null)]),
    ]);
    for protocol in [HubProtocol::Json, HubProtocol::MessagePack] {
        let m = HubMessage::StreamItem(StreamItem {
            invocation_id: "1".into(),
            item: Payload::Value(edge.clone()),
            headers: vec![("ü".into(), String::new())],
        });
        let got = protocol
            .parse_messages(&encode(protocol, std::slice::from_ref(&m)), usize::MAX)
            .unwrap();
        assert!(got[0].same_as(&m), "{protocol:?}: {got:?}");
    }
    for t in [
        Timestamp::new(-1, 0),
        Timestamp::new(-1, 999_999_999),
        Timestamp::new(i64::MIN, 0),
        Timestamp::new(i64::MAX, 999_999_999),
        Timestamp::new((1 << 34) - 1, 999_999_999),
        Timestamp::new(1 << 32, 0),
    ] {
        let v = Value::Timestamp(t.unwrap());
        let mut bytes = Vec::new();
        msgpack::write_value(&v, &mut bytes).unwrap();
        assert_eq!(msgpack::read_value(&bytes).unwrap(), v);
    }
}
