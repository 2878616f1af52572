//! What the fuzz targets do with their input. Each function must never panic on any input; the
//! `assert!`s state properties that hold for every input the decoders accept.

use hublink_proto::handshake::{
    handshake_parse_failure_text, parse_handshake_request, parse_handshake_response,
};
use hublink_proto::negotiate::{
    check_negotiate_status, parse_negotiate_response, with_access_token_query, NegotiateAnswer,
    NegotiateRedirects, NegotiateStep,
};
use hublink_proto::transports::{select_transports, TransferFormat, TransportSet};
use hublink_proto::{CompletionOutcome, HubMessage, HubProtocol, Payload};
use url::Url;

pub mod driver;
pub mod event_stream;
pub mod generate;
pub mod message_stream;

/// The largest message the fuzzed decoders accept; small, so the size checks are reached.
pub const MAX_MESSAGE_SIZE: usize = 1 << 16;

/// Decodes `data` as a whole buffer and incrementally (split in two at a point taken from the
/// input); both must agree, and every decoded message is exercised.
pub fn hub_messages(protocol: HubProtocol, data: &[u8]) {
    let whole = protocol.parse_messages(data, MAX_MESSAGE_SIZE);

    let split = match data.first() {
        Some(&b) => usize::from(b) * data.len() / 256,
        None => 0,
    };
    let mut decoder = protocol.decoder(MAX_MESSAGE_SIZE);
    let mut pieces = Vec::new();
    let mut failed = false;
    'pieces: for piece in [&data[..split], &data[split..]] {
        decoder.push(piece);
        loop {
            match decoder.next_message() {
                Ok(Some(m)) => pieces.push(m),
                Ok(None) => break,
                Err(_) => {
                    failed = true;
                    break 'pieces;
                }
            }
        }
    }
    let incremental_ok = !failed && decoder.finish().is_ok();

    match &whole {
        Ok(messages) => {
            assert!(
                incremental_ok,
                "the whole buffer decodes but the same bytes split at {split} do not"
            );
            assert_eq!(messages.len(), pieces.len());
            for (a, b) in messages.iter().zip(&pieces) {
                assert_eq!(encode(protocol, a), encode(protocol, b));
            }
            for m in messages {
                exercise(protocol, m);
            }
        }
        Err(_) => {
            assert!(
                !incremental_ok,
                "the bytes split at {split} decode but the whole buffer does not"
            );
            // Messages before the bad one still arrive incrementally: exercise them too.
            for m in &pieces {
                exercise(protocol, m);
            }
        }
    }
}

/// `data` cut at `cuts` (each taken modulo its length plus one), in order.
pub(crate) fn pieces<'a>(data: &'a [u8], cuts: &[u16]) -> Vec<&'a [u8]> {
    let mut ends: Vec<usize> = cuts
        .iter()
        .map(|&cut| usize::from(cut) % (data.len() + 1))
        .collect();
    ends.push(data.len());
    ends.sort_unstable();
    let mut start = 0;
    ends.into_iter()
        .map(|end| {
            let piece = &data[start..end];
            start = end;
            piece
        })
        .collect()
}

pub(crate) fn encode(protocol: HubProtocol, message: &HubMessage) -> Vec<u8> {
    let mut out = Vec::new();
    protocol
        .write_message(message, &mut out)
        .expect("a decoded message re-encodes in its own protocol");
    out
}

fn payloads(message: &HubMessage) -> Vec<&Payload> {
    match message {
        HubMessage::Invocation(m) => m.arguments.iter().collect(),
        HubMessage::StreamInvocation(m) => m.arguments.iter().collect(),
        HubMessage::StreamItem(m) => vec![&m.item],
        HubMessage::Completion(m) => match &m.outcome {
            CompletionOutcome::Result(p) => vec![p],
            _ => Vec::new(),
        },
        _ => Vec::new(),
    }
}

/// Converts every payload, re-encodes the message in its protocol (must work, decode to one
/// message, and re-encode to the same bytes) and in the other protocol (may fail cleanly, e.g.
/// a MessagePack extension has no JSON form; when it works, it must decode).
fn exercise(protocol: HubProtocol, message: &HubMessage) {
    for p in payloads(message) {
        let _ = p.to_value();
        let _ = p.deserialize::<serde::de::IgnoredAny>();
        let _ = p.deserialize::<String>();
    }

    let first = encode(protocol, message);
    let again = protocol
        .parse_messages(&first, usize::MAX)
        .expect("a re-encoded message decodes");
    assert_eq!(again.len(), 1, "one message in, one message out");
    assert_eq!(encode(protocol, &again[0]), first, "re-encoding is stable");

    let other = match protocol {
        HubProtocol::Json => HubProtocol::MessagePack,
        HubProtocol::MessagePack => HubProtocol::Json,
    };
    let mut transcoded = Vec::new();
    if other.write_message(message, &mut transcoded).is_ok() {
        let back = other.parse_messages(&transcoded, usize::MAX);
        // MessagePack takes "" as an invocation id or target; JSON refuses it, as
        // the official JSON protocol does. Anything else must cross over.
        if !has_empty_id(message) {
            assert_eq!(back.expect("a transcoded message decodes").len(), 1);
        }
    }
}

fn has_empty_id(message: &HubMessage) -> bool {
    match message {
        HubMessage::Invocation(m) => m.invocation_id.as_deref() == Some("") || m.target.is_empty(),
        HubMessage::StreamInvocation(m) => m.invocation_id.is_empty() || m.target.is_empty(),
        HubMessage::StreamItem(m) => m.invocation_id.is_empty(),
        HubMessage::Completion(m) => m.invocation_id.is_empty(),
        HubMessage::CancelInvocation(m) => m.invocation_id.is_empty(),
        _ => false,
    }
}

/// The handshake answer (as a client reads it) and request (as the test server reads it).
pub fn handshake(data: &[u8]) {
    let max = 1 << 12;
    match parse_handshake_response(data, max) {
        Ok(Some((response, consumed))) => {
            assert!(consumed >= 1 && consumed <= data.len());
            assert_eq!(data[consumed - 1], 0x1e);
            assert!(!data[..consumed - 1].contains(&0x1e));
            let _ = response.clone().into_result();
            let mut bytes = Vec::new();
            response.write(&mut bytes);
            let (again, used) = parse_handshake_response(&bytes, usize::MAX)
                .expect("a written response parses")
                .expect("a written response is complete");
            assert_eq!(again, response);
            assert_eq!(used, bytes.len());
            // Whatever follows is the start of the hub protocol stream.
            hub_messages(HubProtocol::Json, &data[consumed..]);
            hub_messages(HubProtocol::MessagePack, &data[consumed..]);
        }
        Ok(None) => {
            assert!(data.len() <= max);
            assert!(!data.contains(&0x1e));
        }
        Err(e) => {
            let _ = handshake_parse_failure_text(&e);
        }
    }
    // Arriving in two pieces: the first piece alone never yields more than the whole.
    let split = data
        .first()
        .map_or(0, |&b| usize::from(b) * data.len() / 256);
    if let Ok(Some((_, consumed))) = parse_handshake_response(&data[..split], max) {
        assert!(matches!(
            parse_handshake_response(data, max),
            Ok(Some((_, c))) if c == consumed
        ));
    }

    if let Ok(Some((request, consumed))) = parse_handshake_request(data, max) {
        assert!(consumed <= data.len());
        let bytes = request.to_bytes();
        let (again, _) = parse_handshake_request(&bytes, usize::MAX)
            .expect("a written request parses")
            .expect("a written request is complete");
        assert_eq!(again, request);
    }
}

/// The negotiate answer, fed through the redirect loop and the transport selection.
pub fn negotiate(data: &[u8]) {
    let _ = check_negotiate_status(404, &String::from_utf8_lossy(data));
    let Ok(answer) = parse_negotiate_response(data) else {
        return;
    };
    let hub = Url::parse("http://localhost:5000/hub?x=1").expect("a valid URL");
    for stateful in [false, true] {
        let mut redirects = NegotiateRedirects::new(hub.clone(), stateful);
        let _ = redirects.negotiate_url();
        match redirects.on_answer(answer.clone()) {
            Ok(NegotiateStep::Negotiate { url, access_token }) => {
                assert!(matches!(url.scheme(), "http" | "https"));
                let _ = redirects.negotiate_url();
                if let Some(token) = access_token {
                    let _ = with_access_token_query(&url, &token);
                }
            }
            Ok(NegotiateStep::Connect {
                response,
                base_url,
                access_token,
            }) => {
                let url = response.connect_url(&base_url);
                let _ = hublink_proto::negotiate::websocket_url(&url);
                if let Some(token) = access_token {
                    let _ = with_access_token_query(&url, &token);
                }
                for format in [TransferFormat::Text, TransferFormat::Binary] {
                    let selection = select_transports(
                        &response.available_transports,
                        TransportSet::all(),
                        format,
                    );
                    let _ = selection.candidates().count();
                    let mut attempts = selection.into_attempts();
                    // Every attempt fails, to reach the aggregate error text.
                    let mut tries = 0;
                    while let Some(next) = attempts.next_attempt() {
                        attempts.failed(next.transport, "fuzzed failure");
                        tries += 1;
                        assert!(tries <= response.available_transports.len());
                    }
                    let _ = attempts.error_text();
                }
            }
            Err(_) => {}
        }
    }
    if let NegotiateAnswer::Connect(response) = answer {
        let _ = response.check_stateful_reconnect(false);
    }
}
