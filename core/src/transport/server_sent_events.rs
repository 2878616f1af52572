//! Server-Sent Events: a long-lived `GET` with `Accept: text/event-stream` receives, HTTP
//! POSTs send (PROTOCOL.md §2.3). Text only.
//!
//! The GET carries the token as the `access_token` query (as every official client does; servers
//! read it there because browsers cannot set headers on an `EventSource`) and also the usual
//! headers: user agent, the user's headers, the cookies and `Authorization`. Each event's data
//! is one transport message. Sends go through the shared POST queue: one POST at a time, frames
//! that wait meanwhile are joined into the next POST.
//!
//! Stopping (dropping the link's sender) sends what was queued, then drops the GET and reports
//! `Closed(None)`; the server ending the stream, or a broken stream, reports `Closed(Some(..))`
//! (an event stream has no clean end; the official client treats it as an error too).

use futures_util::StreamExt;
use reqwest::header::{ACCEPT, CACHE_CONTROL};
use reqwest::{Method, StatusCode};
use tokio::sync::mpsc;

use super::event_stream::EventStreamParser;
use super::send_queue::{run_send_queue, send_with_headers, Flag, PostTarget, QueueEnd};
use super::*;
use crate::access_token::is_unauthorized_response;
use crate::error::Error;
use crate::error::ErrorKind;
use crate::http::{describe_reqwest_error, reqwest_failure};
use crate::protocol::negotiate::with_access_token_query;

/// The official error for a Binary connect.
pub(crate) const TEXT_ONLY: &str =
    "The Server-Sent Events transport only supports the 'Text' transfer format";

/// The official error when the event stream could not be opened; the cause follows it.
pub(crate) const FAILED_TO_CONNECT: &str = "EventSource failed to connect. The connection could not be found on the server, either the connection ID is not present on the server, or a proxy is refusing/buffering the connection. If you have multiple servers check that sticky sessions are enabled.";

/// Server-Sent Events for receiving, HTTP POST for sending.
pub(crate) struct ServerSentEventsTransport;

impl Transport for ServerSentEventsTransport {
    fn kind(&self) -> TransportKind {
        TransportKind::ServerSentEvents
    }

    fn connect(&self, request: ConnectRequest) -> BoxFuture<'static, Result<TransportLink>> {
        Box::pin(connect(request))
    }
}

fn failed_to_connect(cause: &str) -> Error {
    Error::transport(format!("{FAILED_TO_CONNECT} ({cause})"))
}

async fn connect(request: ConnectRequest) -> Result<TransportLink> {
    if request.format != TransferFormat::Text {
        return Err(Error::transport(TEXT_ONLY));
    }
    let token = request.access_token.clone();
    let open = token.authorized(
        ErrorKind::Transport,
        |token| {
            let get_url = match token.as_deref() {
                Some(token) => with_access_token_query(&request.url, token),
                None => request.url.clone(),
            };
            let builder = request
                .http
                .request(Method::GET, &get_url, token.as_deref());
            send_with_headers(
                builder,
                &[(ACCEPT, "text/event-stream"), (CACHE_CONTROL, "no-cache")],
            )
        },
        is_unauthorized_response,
    );
    // No timeout on the stream itself, but the answer's headers must come within the HTTP
    // timeout.
    let response = tokio::select! {
        response = open => response?.map_err(|e| reqwest_failure(e, ErrorKind::Transport, |d| format!("{FAILED_TO_CONNECT} ({d})")))?,
        _ = crate::runtime::sleep(request.http.timeout) => {
            return Err(Error::timeout(format!(
                "{FAILED_TO_CONNECT} (no answer within {} s)",
                request.http.timeout.as_secs_f64()
            )));
        }
    };
    let status = response.status();
    if status != StatusCode::OK {
        return Err(
            failed_to_connect(&format!("HTTP status {status}")).with_status(status.as_u16())
        );
    }
    tracing::debug!("Server-Sent Events stream open");

    let (outgoing, frames) = mpsc::channel(OUTGOING_CAPACITY);
    let (events, incoming) = mpsc::channel(INCOMING_CAPACITY);
    let stop = Flag::new();
    let closed = Flag::new();

    let target = PostTarget {
        http: request.http.clone(),
        url: request.url.clone(),
        access_token: token,
        content_type: "text/plain;charset=UTF-8",
    };
    let queue_stop = stop.clone();
    let queue_closed = closed.clone();
    crate::runtime::spawn(async move {
        if run_send_queue(target, frames, queue_closed).await == QueueEnd::Stopped {
            queue_stop.set();
        }
    });
    let limit = request.max_message_size;
    crate::runtime::spawn(receive(response, events, stop, closed, limit));

    Ok(TransportLink {
        kind: TransportKind::ServerSentEvents,
        outgoing: outgoing.into(),
        incoming: incoming.into(),
    })
}

/// Forwards the stream's events until it ends, breaks, or the transport is stopped; then
/// reports `Closed` and makes the send queue fail what still waits.
async fn receive(
    response: reqwest::Response,
    events: mpsc::Sender<TransportEvent>,
    stop: Flag,
    closed: Flag,
    max_message_size: usize,
) {
    let outcome = tokio::select! {
        biased;
        _ = stop.wait() => None,
        outcome = forward(response, &events, max_message_size) => outcome,
    };
    closed.set();
    match &outcome {
        None => tracing::debug!("Server-Sent Events transport closed"),
        Some(error) => tracing::debug!(%error, "Server-Sent Events transport failed"),
    }
    let _ = events.send(TransportEvent::Closed(outcome)).await;
}

/// Parses the event stream as it arrives (`event_stream.rs`: linear, lossy UTF-8, CR/LF/CRLF
/// line ends, events capped at [`transport_message_limit`] while they are read) and forwards
/// each event's data as one transport message.
async fn forward(
    response: reqwest::Response,
    events: &mpsc::Sender<TransportEvent>,
    max_message_size: usize,
) -> Option<Error> {
    let mut parser = EventStreamParser::new(transport_message_limit(max_message_size));
    let mut chunks = response.bytes_stream();
    let mut ready = Vec::new();
    while let Some(chunk) = chunks.next().await {
        let chunk = match chunk {
            Ok(chunk) => chunk,
            Err(error) => {
                return Some(Error::transport(format!(
                    "The Server-Sent Events stream failed: {}",
                    describe_reqwest_error(&error.without_url())
                )));
            }
        };
        let parsed = parser.feed(&chunk, |event| {
            // Only unnamed events (type "message") reach `onmessage` in the official client.
            if event.kind == "message" && !event.data.is_empty() {
                ready.push(event.data);
            }
        });
        for data in ready.drain(..) {
            if events.send(TransportEvent::Message(data)).await.is_err() {
                // Nobody listens any more: stop.
                return None;
            }
        }
        if let Err(too_large) = parsed {
            return Some(transport_message_too_large(
                too_large.size,
                max_message_size,
            ));
        }
    }
    // An event stream has no clean end: the official client's EventSource reports the
    // server ending it as an error, and so does this transport.
    Some(Error::transport(
        "The server ended the Server-Sent Events stream.",
    ))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::json;
    use url::Url;

    use super::*;
    use crate::transport::send_queue::testing::*;

    async fn peer(server: &GoServer) -> Peer {
        let http = http_client(&[]);
        let url = negotiate(&http, &format!("{}/testhub", server.base_url), None).await;
        let mut peer = Peer::connect(
            &ServerSentEventsTransport,
            &http,
            url,
            TransferFormat::Text,
            None,
        )
        .await
        .expect("the event stream opens");
        assert_eq!(peer.link.kind, TransportKind::ServerSentEvents);
        peer.handshake().await;
        peer
    }

    #[tokio::test]
    async fn go_server_json_echo_then_graceful_stop() {
        let server = GoServer::start(&[]);
        let mut peer = peer(&server).await;
        assert_eq!(peer.invoke("Echo", json!(["hello"])).await, json!("hello"));
        assert_eq!(
            peer.invoke("GetActiveTransportName", json!([])).await,
            json!("ServerSentEvents")
        );
        // Multi-line payloads survive the data: lines (JSON escapes newlines, but the server
        // may still split long messages).
        let long = "x".repeat(100_000);
        assert_eq!(peer.invoke("Echo", json!([long])).await, json!(long));

        peer.stop();
        assert_eq!(peer.closed().await, None);
        peer.assert_ended().await;
    }

    #[tokio::test]
    async fn binary_is_refused_with_the_official_text() {
        let error = Peer::connect(
            &ServerSentEventsTransport,
            &http_client(&[]),
            Url::parse("http://127.0.0.1:9/hub?id=x").unwrap(),
            TransferFormat::Binary,
            None,
        )
        .await
        .err()
        .expect("connect fails");
        assert_eq!(error, Error::transport(TEXT_ONLY));
    }

    #[tokio::test]
    async fn go_server_gets_the_token_in_the_query_and_on_the_posts() {
        let server = GoServer::start(&[]);
        let http = http_client(&[]);
        let token = "secret token/+";
        let url = negotiate(
            &http,
            &format!("{}/authorizedhub", server.base_url),
            Some(token),
        )
        .await;
        // The authorized hub refuses every request without a token: the GET and the POSTs.
        let mut peer = Peer::connect(
            &ServerSentEventsTransport,
            &http,
            url,
            TransferFormat::Text,
            Some(token),
        )
        .await
        .expect("the event stream opens with the token");
        peer.handshake().await;
        assert_eq!(peer.invoke("GetToken", json!([])).await, json!(token));
    }

    #[tokio::test]
    async fn go_server_sees_accept_user_agent_user_headers_and_cookies() {
        let server = GoServer::start(&[]);
        // A user's Accept header does not replace the one the protocol needs.
        let http = http_client(&[("X-Hublink-Test", "yes"), ("Accept", "text/html")]);
        let url = negotiate(&http, &format!("{}/testhub", server.base_url), None).await;
        let mut peer = Peer::connect(
            &ServerSentEventsTransport,
            &http,
            url,
            TransferFormat::Text,
            None,
        )
        .await
        .expect("the event stream opens");
        peer.handshake().await;
        // The Go server reads these from the GET that opened the stream.
        assert_eq!(
            peer.invoke("GetHeader", json!(["Accept"])).await,
            json!("text/event-stream")
        );
        assert_eq!(
            peer.invoke("GetHeader", json!(["User-Agent"])).await,
            json!(crate::http::user_agent())
        );
        assert_eq!(
            peer.invoke("GetHeader", json!(["X-Hublink-Test"])).await,
            json!("yes")
        );
        assert_eq!(
            peer.invoke("GetCookie", json!(["testCookie"])).await,
            json!("testValue")
        );
    }

    #[tokio::test]
    async fn go_server_refusal_fails_connect_with_the_official_text_and_the_status() {
        let server = GoServer::start(&[]);
        let http = http_client(&[]);
        let url = Url::parse(&format!("{}/testhub?id=unknown", server.base_url)).unwrap();
        let error = Peer::connect(
            &ServerSentEventsTransport,
            &http,
            url,
            TransferFormat::Text,
            None,
        )
        .await
        .err()
        .expect("connect fails");
        let text = error.to_string();
        assert!(text.starts_with(FAILED_TO_CONNECT), "{text}");
        assert!(text.contains("404"), "{text}");
    }

    #[tokio::test]
    async fn go_server_gets_concurrent_sends_one_post_at_a_time() {
        // The Go server answers 409 to a POST while another one is in flight; batching and
        // serialising keep every one of these sends alive.
        let server = GoServer::start(&[]);
        let mut peer = peer(&server).await;
        let mut signals = Vec::new();
        for n in 0..40 {
            let (_, frame) = peer.invocation("Echo", json!([format!("m{n}")]));
            signals.push(peer.queue(frame).await);
        }
        for signal in signals {
            tokio::time::timeout(WAIT, signal)
                .await
                .unwrap()
                .unwrap()
                .expect("the POST carrying the frame succeeded");
        }
        let mut results = std::collections::BTreeSet::new();
        while results.len() < 40 {
            let message = peer.json().await;
            if message["type"] == 3 {
                assert!(message.get("error").is_none(), "{message}");
                results.insert(message["result"].as_str().unwrap().to_owned());
            }
        }
        assert!((0..40).all(|n| results.contains(&format!("m{n}"))));
    }

    async fn test_server_peer(hub_url: &str) -> Peer {
        let http = http_client(&[]);
        let url = negotiate(&http, hub_url, None).await;
        let mut peer = Peer::connect(
            &ServerSentEventsTransport,
            &http,
            url,
            TransferFormat::Text,
            None,
        )
        .await
        .expect("the event stream opens");
        peer.handshake().await;
        peer
    }

    #[tokio::test]
    async fn test_server_echo_and_the_server_ending_the_stream() {
        let server = test_server(Default::default()).await;
        let hub = format!("{}/testhub", server.base_url());
        let mut peer = test_server_peer(&hub).await;
        assert_eq!(
            peer.invoke("GetActiveTransportName", json!([])).await,
            json!("ServerSentEvents")
        );
        assert_eq!(
            peer.invoke("GetContentTypeHeader", json!([])).await,
            json!("text/plain;charset=UTF-8")
        );
        // CloseMe: a Close message, then the stream ends. An event stream has no clean end,
        // so the transport reports it as an error; the hub layer already ended on the Close.
        let ended = Some(Error::transport(
            "The server ended the Server-Sent Events stream.",
        ));
        let (_, frame) = peer.invocation("CloseMe", json!([null, false]));
        peer.send(frame).await.unwrap();
        loop {
            if peer.json().await["type"] == 7 {
                break;
            }
        }
        assert_eq!(peer.closed().await, ended);

        // The stream dropped without a Close message: the same error, which the hub layer
        // treats as a lost connection.
        let hub = format!("{}/testhub?faults=drop_after_messages:2", server.base_url());
        let mut peer = test_server_peer(&hub).await;
        let (id, frame) = peer.invocation("Echo", json!(["last"]));
        peer.send(frame).await.unwrap();
        assert_eq!(peer.completion(&id).await["result"], json!("last"));
        assert_eq!(peer.closed().await, ended);
        // Later sends fail with the official text, or are refused at once.
        let (_, frame) = peer.invocation("Echo", json!(["late"]));
        let (written, done) = tokio::sync::oneshot::channel();
        let queued = peer
            .link
            .outgoing
            .send(OutgoingFrame {
                data: frame,
                written: Some(written.into()),
            })
            .await;
        if queued.is_ok() {
            assert_eq!(
                tokio::time::timeout(WAIT, done).await.unwrap(),
                Ok(Err(Error::transport(
                    crate::transport::send_queue::CONNECTION_STOPPED
                )))
            );
        }
    }

    #[tokio::test]
    async fn test_server_refused_post_fails_the_frame_not_the_transport() {
        let server = test_server(Default::default()).await;
        let http = http_client(&[]);
        let hub = format!("{}/testhub?faults=send_status:500", server.base_url());
        let url = negotiate(&http, &hub, None).await;
        let mut peer = Peer::connect(
            &ServerSentEventsTransport,
            &http,
            url,
            TransferFormat::Text,
            None,
        )
        .await
        .unwrap();
        assert_eq!(
            peer.send(&b"{\"protocol\":\"json\",\"version\":1}\x1e"[..])
                .await,
            Err(Error::transport("Internal Server Error: Status code '500'").with_status(500))
        );
        // Still open: nothing but the stream's own traffic until the client stops.
        let quiet = tokio::time::timeout(Duration::from_millis(300), peer.link.incoming.recv());
        assert!(quiet.await.is_err(), "no event");
        peer.stop();
        assert_eq!(peer.closed().await, None);
        peer.assert_ended().await;
    }

    #[tokio::test]
    async fn test_server_gets_waiting_frames_in_one_post() {
        let server = test_server(Default::default()).await;
        let log = RequestLog::start(&server.base_url()).await;
        let mut peer = test_server_peer(&format!("{}/testhub", log.base_url)).await;
        let before = log.requests("POST").len();
        let mut ids = Vec::new();
        let mut signals = Vec::new();
        for n in 0..10 {
            let (id, frame) = peer.invocation("Echo", json!([n]));
            ids.push(id);
            signals.push(peer.queue(frame).await);
        }
        for signal in signals {
            tokio::time::timeout(WAIT, signal)
                .await
                .unwrap()
                .unwrap()
                .unwrap();
        }
        let posts = log.requests("POST").len() - before;
        assert!((1..=2).contains(&posts), "10 frames took {posts} POSTs");
        // The test server runs invocations in order.
        for (n, id) in ids.iter().enumerate() {
            assert_eq!(peer.completion(id).await["result"], json!(n));
        }
    }
}
