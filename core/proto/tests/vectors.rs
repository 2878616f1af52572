//! The language-neutral byte vectors in `tests/vectors/`, made by the official
//! `@microsoft/signalr` packages and taken from the HubProtocol spec: every vector decodes to
//! its message and every message encodes to its bytes.

use std::path::PathBuf;

use hublink_proto::handshake;
use hublink_proto::msgpack;
use hublink_proto::*;
use serde_json::Value as Json;

const MAX: usize = DEFAULT_MAX_MESSAGE_SIZE;

fn load(name: &str) -> Json {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/vectors")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    serde_json::from_str(&text).unwrap()
}

fn str_of(v: &Json, key: &str) -> String {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} in {v}"))
        .to_owned()
}

/// A vector's value, with `$bin` and `$timestamp` tags, as a [`Value`].
fn value(v: &Json) -> Value {
    match v {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::Int(i)
            } else if let Some(u) = n.as_u64() {
                Value::UInt(u)
            } else {
                Value::F64(n.as_f64().unwrap())
            }
        }
        Json::String(s) => Value::String(s.clone()),
        Json::Array(items) => Value::Array(items.iter().map(value).collect()),
        Json::Object(map) => {
            if let Some(hex) = map.get("$bin") {
                return Value::Binary(hex::decode(hex.as_str().unwrap()).unwrap());
            }
            if let Some(t) = map.get("$timestamp") {
                let s = t["seconds"].as_i64().unwrap();
                let n = t["nanoseconds"].as_u64().unwrap() as u32;
                return Value::Timestamp(Timestamp::new(s, n).unwrap());
            }
            Value::Map(
                map.iter()
                    .map(|(k, v)| (Value::String(k.clone()), value(v)))
                    .collect(),
            )
        }
    }
}

fn payload(v: &Json) -> Payload {
    Payload::Value(value(v))
}

fn headers(m: &Json) -> Headers {
    m.get("headers")
        .and_then(Json::as_object)
        .map(|h| {
            h.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
                .collect()
        })
        .unwrap_or_default()
}

fn opt_string(m: &Json, key: &str) -> Option<String> {
    m.get(key).and_then(Json::as_str).map(str::to_owned)
}

fn args(m: &Json) -> Vec<Payload> {
    m["arguments"]
        .as_array()
        .unwrap()
        .iter()
        .map(payload)
        .collect()
}

fn stream_ids(m: &Json) -> Option<Vec<String>> {
    m.get("streamIds").map(|ids| {
        ids.as_array()
            .unwrap()
            .iter()
            .map(|i| i.as_str().unwrap().to_owned())
            .collect()
    })
}

/// A vector's message object, in the official client's shape, as a [`HubMessage`].
fn message(m: &Json) -> HubMessage {
    match m["type"].as_u64().unwrap() {
        1 => HubMessage::Invocation(Invocation {
            invocation_id: opt_string(m, "invocationId"),
            target: str_of(m, "target"),
            arguments: args(m),
            stream_ids: stream_ids(m),
            headers: headers(m),
        }),
        2 => HubMessage::StreamItem(StreamItem {
            invocation_id: str_of(m, "invocationId"),
            item: payload(&m["item"]),
            headers: headers(m),
        }),
        3 => HubMessage::Completion(Completion {
            invocation_id: str_of(m, "invocationId"),
            outcome: match (opt_string(m, "error"), m.get("result")) {
                (Some(e), _) => CompletionOutcome::Error(e),
                (None, Some(r)) => CompletionOutcome::Result(payload(r)),
                (None, None) => CompletionOutcome::Void,
            },
            headers: headers(m),
        }),
        4 => HubMessage::StreamInvocation(StreamInvocation {
            invocation_id: str_of(m, "invocationId"),
            target: str_of(m, "target"),
            arguments: args(m),
            stream_ids: stream_ids(m),
            headers: headers(m),
        }),
        5 => HubMessage::CancelInvocation(CancelInvocation {
            invocation_id: str_of(m, "invocationId"),
            headers: headers(m),
        }),
        6 => HubMessage::Ping,
        7 => HubMessage::Close(Close {
            error: opt_string(m, "error"),
            allow_reconnect: m.get("allowReconnect").and_then(Json::as_bool),
        }),
        8 => HubMessage::Ack {
            sequence_id: m["sequenceId"].as_u64().unwrap(),
        },
        9 => HubMessage::Sequence {
            sequence_id: m["sequenceId"].as_u64().unwrap(),
        },
        t => panic!("unknown type {t}"),
    }
}

fn bytes_of(v: &Json) -> Vec<u8> {
    match v.get("hex").and_then(Json::as_str) {
        Some(h) => hex::decode(h).unwrap(),
        None => str_of(v, "text").into_bytes(),
    }
}

fn expected_messages(v: &Json) -> Vec<HubMessage> {
    match v.get("message") {
        Some(m) => vec![message(m)],
        None => v["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(message)
            .collect(),
    }
}

fn check_vectors(file: &str, protocol: HubProtocol) -> usize {
    let doc = load(file);
    let vectors = doc["vectors"].as_array().unwrap();
    let mut types = std::collections::BTreeSet::new();
    for v in vectors {
        let name = str_of(v, "name");
        let bytes = bytes_of(v);
        let expected = expected_messages(v);
        let decoded = protocol
            .parse_messages(&bytes, MAX)
            .unwrap_or_else(|e| panic!("{file} {name}: decode failed: {e}"));
        assert_eq!(decoded.len(), expected.len(), "{file} {name}");
        for (got, want) in decoded.iter().zip(&expected) {
            assert!(
                got.same_as(want),
                "{file} {name}:\n got {got:?}\nwant {want:?}"
            );
            types.insert(want.type_id());
        }
        if v["direction"] == "both" {
            let mut out = Vec::new();
            protocol.write_message(&expected[0], &mut out).unwrap();
            match protocol {
                HubProtocol::MessagePack => assert_eq!(
                    hex::encode(&out),
                    hex::encode(&bytes),
                    "{file} {name}: encoding differs"
                ),
                HubProtocol::Json => {
                    assert_eq!(out.last(), Some(&0x1e), "{name}");
                    let got: Json = serde_json::from_slice(&out[..out.len() - 1]).unwrap();
                    let want: Json = serde_json::from_slice(&bytes[..bytes.len() - 1]).unwrap();
                    assert_eq!(got, want, "{file} {name}: encoding differs");
                }
            }
        }
    }
    assert_eq!(
        types.into_iter().collect::<Vec<_>>(),
        (1..=9).collect::<Vec<u8>>(),
        "{file} must cover all nine message types"
    );
    vectors.len()
}

/// The TS texts that come from the SignalR protocol classes themselves (not from V8's JSON
/// parser or the msgpack library), which hublink reproduces word for word.
fn is_signalr_text(text: &str) -> bool {
    text.starts_with("Invalid ")
        || text == "Message is incomplete."
        || text == "Incomplete message."
        || text == "Cannot read message size."
        || text.starts_with("Messages bigger than")
        || text == "Expected a handshake response from the server."
}

/// Inputs the official client lets through but the spec forbids; hublink refuses them.
const STRICTER_THAN_TS: &[&str] = &[
    "invalid.headers-nil",
    "invalid.headers-array",
    "invalid.headers-int-key",
    "invalid.completion-unknown-result-kind",
    "invalid.ack-missing-sequence-id",
    "invalid.sequence-missing-sequence-id",
    "invalid.invocation-target-nil",
    "invalid.type-not-int",
    "invalid.invocation.missing-arguments",
    "response.type-zero-accepted",
    "invalid.ack.sequence-id-fraction",
    "invalid.ack.sequence-id-negative",
    "invalid.sequence.sequence-id-fraction",
    "invalid.sequence.sequence-id-negative",
];

fn check_invalid(file: &str, protocol: HubProtocol) -> usize {
    let doc = load(file);
    let rows = doc["invalid"].as_array().unwrap();
    for v in rows {
        let name = str_of(v, "name");
        let bytes = bytes_of(v);
        // No size limit here: these rows are about framing, and the decoder never allocates
        // what a length prefix claims.
        let result = protocol.parse_messages(&bytes, usize::MAX);
        match v["error"].as_str() {
            Some(ts_text) => {
                let err = result.expect_err(&format!("{file} {name} must fail"));
                if is_signalr_text(ts_text) {
                    assert_eq!(err.to_string(), ts_text, "{file} {name}");
                }
            }
            None if STRICTER_THAN_TS.contains(&name.as_str()) => {
                assert!(result.is_err(), "{file} {name}: hublink refuses this")
            }
            None => {
                let got = result.unwrap_or_else(|e| panic!("{file} {name}: {e}"));
                let want = v
                    .get("ts_messages")
                    .and_then(Json::as_array)
                    .map_or(0, Vec::len);
                // The official client skips types 4 and 5 (it never receives them); hublink
                // decodes them, because the same codec serves the in-repo test server.
                let skipped_by_ts = name.contains("from-server");
                assert_eq!(
                    got.len(),
                    want + usize::from(skipped_by_ts),
                    "{file} {name}"
                );
            }
        }
    }
    rows.len()
}

#[test]
fn json_vectors_decode_and_encode() {
    assert!(check_vectors("json.json", HubProtocol::Json) >= 50);
}

#[test]
fn messagepack_vectors_decode_and_encode_byte_exact() {
    assert!(check_vectors("messagepack.json", HubProtocol::MessagePack) >= 80);
}

#[test]
fn json_invalid_inputs_fail_with_the_official_texts() {
    assert!(check_invalid("json.json", HubProtocol::Json) >= 20);
}

#[test]
fn messagepack_invalid_inputs_fail_with_the_official_texts() {
    assert!(check_invalid("messagepack.json", HubProtocol::MessagePack) >= 20);
}

#[test]
fn messagepack_framing_and_length_prefixes() {
    let doc = load("messagepack.json");
    for v in doc["length_prefixes"].as_array().unwrap() {
        let len = v["length"].as_u64().unwrap() as usize;
        let prefix = hex::decode(str_of(v, "prefix_hex")).unwrap();
        let mut out = Vec::new();
        msgpack::write_length_prefix(len, &mut out);
        assert_eq!(out, prefix, "length {len}");
        assert_eq!(
            msgpack::read_length_prefix(&prefix).unwrap(),
            Some((len, prefix.len()))
        );
    }
    for v in doc["framing"].as_array().unwrap() {
        let name = str_of(v, "name");
        let bodies: Vec<Vec<u8>> = v["bodies"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| hex::decode(b.as_str().unwrap()).unwrap())
            .collect();
        let mut framed = Vec::new();
        for body in &bodies {
            msgpack::write_length_prefix(body.len(), &mut framed);
            framed.extend_from_slice(body);
        }
        assert_eq!(hex::encode(&framed), str_of(v, "hex"), "{name}");
    }
}
#[test]
fn handshake_vectors() {
    let doc = load("handshake.json");
    for v in doc["requests"].as_array().unwrap() {
        let request = &v["request"];
        let written = handshake::HandshakeRequest {
            protocol: str_of(request, "protocol"),
            version: request["version"].as_u64().unwrap() as u32,
        }
        .to_bytes();
        assert_eq!(hex::encode(written), str_of(v, "hex"), "{}", v["name"]);
    }
    for v in doc["responses"].as_array().unwrap() {
        let name = str_of(v, "name");
        let bytes = bytes_of(v);
        let parsed = handshake::parse_handshake_response(&bytes, MAX);
        if STRICTER_THAN_TS.contains(&name.as_str()) {
            assert!(parsed.is_err(), "{name}: hublink refuses this");
            continue;
        }
        let (response, consumed) = parsed
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .unwrap_or_else(|| panic!("{name}: incomplete"));
        assert_eq!(
            response.error.as_deref(),
            v["response"]["error"].as_str(),
            "{name}"
        );
        if let Some(text) = v["start_error"].as_str() {
            assert_eq!(
                handshake::handshake_error_text(response.error.as_deref().unwrap()),
                text
            );
        }
        let rest = &bytes[consumed..];
        let remaining = v
            .get("remaining_hex")
            .or_else(|| v.get("remaining_text"))
            .filter(|r| !r.is_null());
        match remaining {
            None => assert!(rest.is_empty(), "{name}: {rest:?} left"),
            Some(r) => {
                let want = match r.as_str().unwrap() {
                    h if v.get("remaining_hex").is_some() => hex::decode(h).unwrap(),
                    t => t.as_bytes().to_vec(),
                };
                assert_eq!(rest, want.as_slice(), "{name}");
                let protocol = if v["input"] == "binary" {
                    HubProtocol::MessagePack
                } else {
                    HubProtocol::Json
                };
                let messages = protocol.parse_messages(rest, MAX).unwrap();
                let want = expected_messages(&serde_json::json!({
                    "messages": v["remaining_messages"]
                }));
                assert_eq!(messages.len(), want.len(), "{name}");
                for (g, w) in messages.iter().zip(&want) {
                    assert!(g.same_as(w), "{name}");
                }
            }
        }
    }
    for v in doc["invalid"].as_array().unwrap() {
        let name = str_of(v, "name");
        let bytes = bytes_of(v);
        let ts_text = str_of(v, "error");
        let result = handshake::parse_handshake_response(&bytes, MAX);
        if ts_text == "Message is incomplete." {
            // Incremental parsing waits for more bytes instead of failing at once.
            assert!(matches!(result, Ok(None)), "{name}: {result:?}");
            continue;
        }
        let err = result.expect_err(&name);
        if is_signalr_text(&ts_text) {
            assert_eq!(err.to_string(), ts_text, "{name}");
        }
    }
}
