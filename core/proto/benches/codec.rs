//! Codec micro-benchmarks: encoding and decoding hub messages in both protocols.
//!
//! `cargo bench -p hublink-proto --bench codec`. Results and the machine are in BENCHMARKS.md.
//!
//! * `encode/*`: serialize the arguments with `HubProtocol::payload` and write the framed
//!   message with `HubProtocol::write_message` into a reused buffer.
//! * `decode/*`: `HubProtocol::parse_messages` on the framed bytes (payloads stay encoded).
//! * `typed/*`: decode, then `Payload::deserialize` of the arguments into Rust types: the
//!   path that never builds an intermediate value tree.
//! * `value/*`: decode, then `Payload::to_value` of the arguments: the dynamic path the
//!   bindings use, for comparison.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use hublink_proto::{HubMessage, HubProtocol, Invocation, Payload};
use serde::{Serialize, Serializer};

const KIB4: usize = 4096;

/// Bytes that serialize as MessagePack `bin` (serde's `&[u8]` would be an array of numbers).
struct Bin<'a>(&'a [u8]);

impl Serialize for Bin<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(self.0)
    }
}

/// Which arguments a case sends.
#[derive(Clone, Copy)]
enum Case {
    /// `Send("user", "hello")`.
    Small,
    /// `Send("user", <4 KiB string>)`.
    String4k,
    /// `Send("user", <4 KiB binary>)` (MessagePack only: JSON has no binary).
    Binary4k,
}

impl Case {
    fn name(self) -> &'static str {
        match self {
            Case::Small => "send_small",
            Case::String4k => "send_4k_string",
            Case::Binary4k => "send_4k_binary",
        }
    }

    fn protocols(self) -> &'static [HubProtocol] {
        match self {
            Case::Binary4k => &[HubProtocol::MessagePack],
            _ => &[HubProtocol::Json, HubProtocol::MessagePack],
        }
    }
}

struct Inputs {
    text: String,
    bytes: Vec<u8>,
}

fn inputs() -> Inputs {
    // Printable text that needs no JSON escaping, like a typical chat message or document.
    let text: String = (0..KIB4)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let bytes: Vec<u8> = (0..KIB4).map(|i| (i * 31 % 251) as u8).collect();
    Inputs { text, bytes }
}

fn message(protocol: HubProtocol, case: Case, inputs: &Inputs) -> HubMessage {
    let second = match case {
        Case::Small => protocol.payload("hello"),
        Case::String4k => protocol.payload(inputs.text.as_str()),
        Case::Binary4k => protocol.payload(&Bin(&inputs.bytes)),
    }
    .expect("payload");
    HubMessage::Invocation(Invocation {
        invocation_id: None,
        target: "Send".to_owned(),
        arguments: vec![protocol.payload("user").expect("payload"), second],
        stream_ids: None,
        headers: Vec::new(),
    })
}

fn encoded(protocol: HubProtocol, case: Case, inputs: &Inputs) -> Vec<u8> {
    let mut out = Vec::new();
    protocol
        .write_message(&message(protocol, case, inputs), &mut out)
        .expect("encode");
    out
}

fn arguments(messages: &[HubMessage]) -> &[Payload] {
    match messages {
        [HubMessage::Invocation(m)] => &m.arguments,
        _ => panic!("expected one invocation"),
    }
}

fn bench_encode(c: &mut Criterion, inputs: &Inputs) {
    let mut group = c.benchmark_group("encode");
    for case in [Case::Small, Case::String4k, Case::Binary4k] {
        for &protocol in case.protocols() {
            let len = encoded(protocol, case, inputs).len();
            group.throughput(Throughput::Bytes(len as u64));
            let mut out = Vec::with_capacity(2 * len);
            group.bench_function(BenchmarkId::new(case.name(), protocol.name()), |b| {
                b.iter(|| {
                    out.clear();
                    let message = message(protocol, case, black_box(inputs));
                    protocol.write_message(&message, &mut out).expect("encode");
                    black_box(out.len())
                })
            });
        }
    }
    group.finish();
}

fn bench_decode(c: &mut Criterion, inputs: &Inputs) {
    let mut group = c.benchmark_group("decode");
    for case in [Case::Small, Case::String4k, Case::Binary4k] {
        for &protocol in case.protocols() {
            let bytes = encoded(protocol, case, inputs);
            group.throughput(Throughput::Bytes(bytes.len() as u64));
            group.bench_function(BenchmarkId::new(case.name(), protocol.name()), |b| {
                b.iter(|| {
                    protocol
                        .parse_messages(black_box(&bytes), usize::MAX)
                        .expect("decode")
                })
            });
        }
    }
    group.finish();
}

fn bench_typed(c: &mut Criterion, inputs: &Inputs) {
    let mut group = c.benchmark_group("typed");
    for case in [Case::Small, Case::String4k, Case::Binary4k] {
        for &protocol in case.protocols() {
            let bytes = encoded(protocol, case, inputs);
            group.throughput(Throughput::Bytes(bytes.len() as u64));
            group.bench_function(BenchmarkId::new(case.name(), protocol.name()), |b| {
                b.iter(|| {
                    let messages = protocol
                        .parse_messages(black_box(&bytes), usize::MAX)
                        .expect("decode");
                    let args = arguments(&messages);
                    let user: String = args[0].deserialize().expect("user");
                    let len = match case {
                        Case::Binary4k => {
                            let data: serde_bytes_like::ByteBuf =
                                args[1].deserialize().expect("binary");
                            data.0.len()
                        }
                        _ => args[1].deserialize::<String>().expect("text").len(),
                    };
                    black_box((user, len))
                })
            });
        }
    }
    group.finish();
}

fn bench_value(c: &mut Criterion, inputs: &Inputs) {
    let mut group = c.benchmark_group("value");
    for case in [Case::Small, Case::String4k, Case::Binary4k] {
        for &protocol in case.protocols() {
            let bytes = encoded(protocol, case, inputs);
            group.throughput(Throughput::Bytes(bytes.len() as u64));
            group.bench_function(BenchmarkId::new(case.name(), protocol.name()), |b| {
                b.iter(|| {
                    let messages = protocol
                        .parse_messages(black_box(&bytes), usize::MAX)
                        .expect("decode");
                    let values: Vec<_> = arguments(&messages)
                        .iter()
                        .map(|p| p.to_value().expect("value"))
                        .collect();
                    black_box(values)
                })
            });
        }
    }
    group.finish();
}

/// A byte buffer that deserializes from MessagePack `bin` without another dependency.
mod serde_bytes_like {
    use std::fmt;

    use serde::de::{Deserialize, Deserializer, SeqAccess, Visitor};

    pub struct ByteBuf(pub Vec<u8>);

    impl<'de> Deserialize<'de> for ByteBuf {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> Visitor<'de> for V {
                type Value = ByteBuf;
                fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                    f.write_str("bytes")
                }
                fn visit_bytes<E>(self, v: &[u8]) -> Result<ByteBuf, E> {
                    Ok(ByteBuf(v.to_vec()))
                }
                fn visit_byte_buf<E>(self, v: Vec<u8>) -> Result<ByteBuf, E> {
                    Ok(ByteBuf(v))
                }
                fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ByteBuf, A::Error> {
                    let mut out = Vec::new();
                    while let Some(b) = seq.next_element()? {
                        out.push(b);
                    }
                    Ok(ByteBuf(out))
                }
            }
            d.deserialize_byte_buf(V)
        }
    }
}

fn benches(c: &mut Criterion) {
    let inputs = inputs();
    // The arguments survive a round trip in every case, so the benchmarks measure real work.
    for case in [Case::Small, Case::String4k, Case::Binary4k] {
        for &protocol in case.protocols() {
            let sent = message(protocol, case, &inputs);
            let got = protocol
                .parse_messages(&encoded(protocol, case, &inputs), usize::MAX)
                .expect("decode");
            assert!(got.len() == 1 && got[0].same_as(&sent));
        }
    }
    bench_encode(c, &inputs);
    bench_decode(c, &inputs);
    bench_typed(c, &inputs);
    bench_value(c, &inputs);
}

fn config() -> Criterion {
    // 20 benchmarks × (0.5 s warm-up + 2 s measurement) stays well under two minutes.
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(50)
}

criterion_group! {
    name = codec;
    config = config();
    targets = benches
}
criterion_main!(codec);
