//! Long Polling: repeated `GET`s receive, HTTP POSTs send (PROTOCOL.md §2.4).
//!
//! Every poll is `GET <connect url>&_=<ms timestamp>` with a 100 s timeout. The first one must
//! answer 200 before the transport counts as connected. Then: 200 with a body is a message,
//! an empty 200 (the server's poll timeout) or a client-side timeout polls again, 204 means the
//! server closed the connection (`Closed(None)`), any other status closes with the official
//! `HttpError` text. Sends go through the shared POST queue (one POST at a time, waiting frames
//! joined into the next one). Stopping (dropping the link's sender) sends what was queued,
//! aborts the poll in flight, sends `DELETE <connect url>` (a 404 is fine) and reports
//! `Closed(None)`. Every request carries the user agent, the user's headers, the cookies and
//! the `Authorization` header.

use std::time::Duration;

use bytes::Bytes;
use reqwest::{Method, StatusCode};
use tokio::sync::mpsc;
use url::Url;

use super::send_queue::{
    http_status_error, read_body, refusal, run_send_queue, Body, Flag, PostTarget, QueueEnd,
};
use super::*;
use crate::access_token::is_unauthorized_response;
use crate::error::Error;
use crate::error::ErrorKind;
use crate::http::{describe_reqwest_error, reqwest_failure};

/// The timeout of one poll (the official 100 000 ms, independent of the HTTP timeout).
pub(crate) const POLL_TIMEOUT: Duration = Duration::from_secs(100);

/// Long polling for receiving, HTTP POST for sending.
pub(crate) struct LongPollingTransport;

impl Transport for LongPollingTransport {
    fn kind(&self) -> TransportKind {
        TransportKind::LongPolling
    }

    fn connect(&self, request: ConnectRequest) -> BoxFuture<'static, Result<TransportLink>> {
        Box::pin(connect(request))
    }
}

/// Milliseconds since the Unix epoch, for the `_=` cache buster.
#[cfg(not(target_arch = "wasm32"))]
fn timestamp_ms() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis())
        .unwrap_or_default()
}

#[cfg(target_arch = "wasm32")]
fn timestamp_ms() -> u128 {
    js_sys::Date::now() as u128
}

/// The URL of one poll: the connect URL with a fresh `_=<ms timestamp>`.
fn poll_url(url: &Url) -> Url {
    let mut url = url.clone();
    url.query_pairs_mut()
        .append_pair("_", &timestamp_ms().to_string());
    url
}

/// What one poll brought.
enum Poll {
    /// A 200 with a body.
    Data(Bytes),
    /// A 200 without a body (the server's poll timeout): poll again.
    Empty,
    /// No answer within [`POLL_TIMEOUT`]: poll again.
    TimedOut,
    /// 204: the server closed the connection.
    Closed,
}

struct Poller {
    http: HttpClient,
    url: Url,
    access_token: AccessToken,
    /// The connection's maximum message size: bodies are capped near it.
    max_message_size: usize,
}

impl Poller {
    async fn poll(&self) -> Result<Poll> {
        let response = self
            .access_token
            .authorized(
                ErrorKind::Transport,
                |token| {
                    self.http
                        .request(Method::GET, &poll_url(&self.url), token.as_deref())
                        .timeout(POLL_TIMEOUT)
                        .send()
                },
                is_unauthorized_response,
            )
            .await?;
        let response = match response {
            Ok(response) => response,
            Err(error) if error.is_timeout() => return Ok(Poll::TimedOut),
            Err(error) => return Err(reqwest_failure(error, ErrorKind::Transport, str::to_owned)),
        };
        match response.status() {
            StatusCode::OK => {
                let limit = transport_message_limit(self.max_message_size);
                match read_body(response, limit).await {
                    Ok(Body::Whole(body)) if body.is_empty() => Ok(Poll::Empty),
                    Ok(Body::Whole(body)) => Ok(Poll::Data(body)),
                    Ok(Body::TooLarge(size)) => {
                        Err(transport_message_too_large(size, self.max_message_size))
                    }
                    Err(error) if error.is_timeout() => Ok(Poll::TimedOut),
                    Err(error) => Err(reqwest_failure(error, ErrorKind::Transport, str::to_owned)),
                }
            }
            StatusCode::NO_CONTENT => Ok(Poll::Closed),
            _ => Err(refusal(response).await),
        }
    }

    /// `DELETE <connect url>`; the server may already have forgotten the connection (404).
    async fn delete(&self) {
        let response = self
            .access_token
            .authorized(
                ErrorKind::Transport,
                |token| {
                    self.http
                        .request(Method::DELETE, &self.url, token.as_deref())
                        .timeout(self.http.timeout)
                        .send()
                },
                is_unauthorized_response,
            )
            .await;
        let Ok(response) = response else {
            tracing::debug!("DELETE not sent: the access token factory failed");
            return;
        };
        match response {
            Ok(response) if response.status() == StatusCode::NOT_FOUND => {
                tracing::trace!("A 404 response was returned from sending a DELETE request.");
            }
            Ok(response) if !response.status().is_success() => {
                let status = response.status();
                tracing::debug!(status = status.as_u16(), "DELETE refused");
            }
            Ok(_) => tracing::trace!("DELETE request accepted."),
            Err(error) => {
                tracing::debug!(error = %describe_reqwest_error(&error.without_url()), "DELETE failed");
            }
        }
    }
}

async fn connect(request: ConnectRequest) -> Result<TransportLink> {
    let token = request.access_token;
    let poller = Poller {
        http: request.http.clone(),
        url: request.url.clone(),
        access_token: token.clone(),
        max_message_size: request.max_message_size,
    };

    // The first poll only finishes setting up the connection on the server.
    let first = match poller.poll().await? {
        Poll::Data(body) => Some(body),
        Poll::Empty => None,
        // The official client fails here too: its HTTP client throws on a timeout, and a 2xx
        // other than 200 closes the transport at once.
        Poll::TimedOut => {
            return Err(Error::transport(format!(
                "The first poll got no answer within {} s.",
                POLL_TIMEOUT.as_secs()
            )));
        }
        Poll::Closed => {
            return Err(
                Error::transport(http_status_error(StatusCode::NO_CONTENT)).with_status(204)
            );
        }
    };
    tracing::debug!("Long Polling connected");

    let (outgoing, frames) = mpsc::channel(OUTGOING_CAPACITY);
    let (events, incoming) = mpsc::channel(INCOMING_CAPACITY);
    let stop = Flag::new();
    let closed = Flag::new();

    let target = PostTarget {
        http: request.http,
        url: request.url,
        access_token: token,
        content_type: match request.format {
            TransferFormat::Text => "text/plain;charset=UTF-8",
            TransferFormat::Binary => "application/octet-stream",
        },
    };
    let queue_stop = stop.clone();
    let queue_closed = closed.clone();
    crate::runtime::spawn(async move {
        if run_send_queue(target, frames, queue_closed).await == QueueEnd::Stopped {
            queue_stop.set();
        }
    });
    crate::runtime::spawn(receive(poller, first, events, stop, closed));

    Ok(TransportLink {
        kind: TransportKind::LongPolling,
        outgoing: outgoing.into(),
        incoming: incoming.into(),
    })
}

/// How the poll loop ended.
enum End {
    /// Stopped by the client: send DELETE, then report a clean close.
    Stopped,
    /// Ended by the server (`None`: 204) or by an error.
    Closed(Option<Error>),
}

/// Polls until the server ends the connection, a poll fails, or the transport is stopped;
/// then reports `Closed` and makes the send queue fail what still waits.
async fn receive(
    poller: Poller,
    first: Option<Bytes>,
    events: mpsc::Sender<TransportEvent>,
    stop: Flag,
    closed: Flag,
) {
    let end = tokio::select! {
        biased;
        // Dropping the loop aborts the poll in flight.
        _ = stop.wait() => End::Stopped,
        end = poll_loop(&poller, first, &events) => end,
    };
    closed.set();
    let reason = match end {
        End::Stopped => {
            poller.delete().await;
            None
        }
        End::Closed(reason) => reason,
    };
    match &reason {
        None => tracing::debug!("Long Polling transport closed"),
        Some(error) => tracing::debug!(%error, "Long Polling transport failed"),
    }
    let _ = events.send(TransportEvent::Closed(reason)).await;
}

async fn poll_loop(
    poller: &Poller,
    first: Option<Bytes>,
    events: &mpsc::Sender<TransportEvent>,
) -> End {
    if let Some(body) = first {
        if events.send(TransportEvent::Message(body)).await.is_err() {
            return End::Stopped;
        }
    }
    loop {
        match poller.poll().await {
            Ok(Poll::Data(body)) => {
                if events.send(TransportEvent::Message(body)).await.is_err() {
                    // Nobody listens any more: stop.
                    return End::Stopped;
                }
            }
            Ok(Poll::Empty) | Ok(Poll::TimedOut) => {}
            Ok(Poll::Closed) => return End::Closed(None),
            Err(error) => return End::Closed(Some(error)),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use hublink_testserver::TestServerOptions;
    use serde_json::json;

    use super::*;
    use crate::transport::send_queue::testing::*;

    async fn connect_to(http: &HttpClient, hub_url: &str, format: TransferFormat) -> Peer {
        let url = negotiate(http, hub_url, None).await;
        let peer = Peer::connect(&LongPollingTransport, http, url, format, None)
            .await
            .expect("the first poll succeeds");
        assert_eq!(peer.link.kind, TransportKind::LongPolling);
        peer
    }

    async fn json_peer(hub_url: &str) -> Peer {
        let mut peer = connect_to(&http_client(&[]), hub_url, TransferFormat::Text).await;
        peer.handshake().await;
        peer
    }

    #[tokio::test]
    async fn test_server_echo_then_stop_aborts_the_poll_and_sends_delete() {
        let server = test_server(Default::default()).await;
        let log = RequestLog::start(&server.base_url()).await;
        let mut peer = json_peer(&format!("{}/testhub", log.base_url)).await;
        assert_eq!(peer.invoke("Echo", json!(["hello"])).await, json!("hello"));
        assert_eq!(
            peer.invoke("GetActiveTransportName", json!([])).await,
            json!("LongPolling")
        );
        assert_eq!(
            peer.invoke("GetContentTypeHeader", json!([])).await,
            json!("text/plain;charset=UTF-8")
        );
        let polls = log.requests("GET");
        assert!(polls.len() >= 2, "{polls:?}");
        assert!(
            polls.iter().all(|line| line.contains("&_=")),
            "every poll has a cache buster: {polls:?}"
        );

        // A poll is in flight now (the server holds it for 5 s); stopping must not wait for it.
        let started = Instant::now();
        peer.stop();
        assert_eq!(peer.closed().await, None);
        peer.assert_ended().await;
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "stop took {:?}",
            started.elapsed()
        );
        let deletes = log.requests("DELETE");
        assert_eq!(deletes.len(), 1, "{deletes:?}");
        assert!(!deletes[0].contains("_="), "{deletes:?}");
    }

    #[tokio::test]
    async fn test_server_messagepack_over_binary_posts_and_polls() {
        let server = test_server(Default::default()).await;
        let http = http_client(&[]);
        let mut peer = connect_to(
            &http,
            &format!("{}/testhub", server.base_url()),
            TransferFormat::Binary,
        )
        .await;
        peer.send(&b"{\"protocol\":\"messagepack\",\"version\":1}\x1e"[..])
            .await
            .unwrap();
        assert_eq!(&peer.message().await[..], b"{}\x1e");
        // [1, {}, "1", "GetContentTypeHeader", []] with its VarInt length prefix.
        let mut invocation = vec![0x1b, 0x95, 0x01, 0x80, 0xa1, b'1', 0xb4];
        invocation.extend_from_slice(b"GetContentTypeHeader");
        invocation.push(0x90);
        peer.send(invocation).await.unwrap();
        let mut received = Vec::new();
        while !received
            .windows(24)
            .any(|w: &[u8]| w == b"application/octet-stream")
        {
            received.extend_from_slice(&peer.message().await);
        }
    }

    #[tokio::test]
    async fn test_server_closing_the_connection_is_a_clean_close() {
        let server = test_server(Default::default()).await;
        let mut peer = json_peer(&format!("{}/testhub", server.base_url())).await;
        let (_, frame) = peer.invocation("CloseMe", json!([null, false]));
        peer.send(frame).await.unwrap();
        loop {
            if peer.json().await["type"] == 7 {
                break;
            }
        }
        // The next poll answers 204.
        assert_eq!(peer.closed().await, None);
        peer.assert_ended().await;
    }

    #[tokio::test]
    async fn test_server_poll_errors_close_with_the_status() {
        let server = test_server(Default::default()).await;
        let hub = format!("{}/testhub?faults=poll_status:503", server.base_url());
        let mut peer = connect_to(&http_client(&[]), &hub, TransferFormat::Text).await;
        assert_eq!(
            peer.closed().await,
            Some(Error::transport("Service Unavailable: Status code '503'").with_status(503))
        );

        // A transport dropped by the server: the next poll answers 500 with a text, which
        // the error carries as the official `HttpError` does.
        let hub = format!("{}/testhub?faults=drop_after_messages:1", server.base_url());
        let mut peer = json_peer(&hub).await;
        assert_eq!(
            peer.closed().await,
            Some(
                Error::transport("The connection was aborted.: Status code '500'").with_status(500)
            )
        );
    }

    #[tokio::test]
    async fn test_server_unknown_id_fails_the_first_poll() {
        let server = test_server(Default::default()).await;
        let url = Url::parse(&format!("{}/testhub?id=unknown", server.base_url())).unwrap();
        let error = Peer::connect(
            &LongPollingTransport,
            &http_client(&[]),
            url,
            TransferFormat::Text,
            None,
        )
        .await
        .err()
        .expect("connect fails");
        // The server's text, as in the official client.
        assert_eq!(
            error,
            Error::transport("No Connection with that ID: Status code '404'").with_status(404)
        );
    }

    #[tokio::test]
    async fn test_server_empty_polls_are_reissued() {
        let server = test_server(TestServerOptions {
            long_poll_timeout: Duration::from_millis(100),
            ..Default::default()
        })
        .await;
        let log = RequestLog::start(&server.base_url()).await;
        let mut peer = json_peer(&format!("{}/testhub", log.base_url)).await;
        crate::runtime::sleep(Duration::from_millis(800)).await;
        assert!(log.requests("GET").len() >= 5, "{:?}", log.requests("GET"));
        assert_eq!(
            peer.invoke("Echo", json!(["still here"])).await,
            json!("still here")
        );
    }

    #[tokio::test]
    async fn test_server_gets_waiting_frames_in_one_post() {
        let server = test_server(Default::default()).await;
        let log = RequestLog::start(&server.base_url()).await;
        let mut peer = json_peer(&format!("{}/testhub", log.base_url)).await;
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
        for (n, id) in ids.iter().enumerate() {
            assert_eq!(peer.completion(id).await["result"], json!(n));
        }
    }

    #[tokio::test]
    async fn test_server_bearer_token_on_polls_posts_and_delete() {
        let server = test_server(Default::default()).await;
        let http = http_client(&[]);
        let token = http
            .request(
                reqwest::Method::GET,
                &Url::parse(&format!("{}/generateJwtToken", server.base_url())).unwrap(),
                None,
            )
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let hub = format!("{}/authorizedhub", server.base_url());

        let url = negotiate(&http, &hub, Some(&token)).await;
        let error = Peer::connect(
            &LongPollingTransport,
            &http,
            url.clone(),
            TransferFormat::Text,
            None,
        )
        .await
        .err()
        .expect("no token, no poll");
        assert_eq!(
            error,
            Error::transport("Unauthorized: Status code '401'").with_status(401)
        );

        let mut peer = Peer::connect(
            &LongPollingTransport,
            &http,
            url,
            TransferFormat::Text,
            Some(&token),
        )
        .await
        .expect("the first poll succeeds with the token");
        peer.handshake().await;
        assert_eq!(
            peer.invoke("GetUserNameIdentifier", json!([])).await,
            json!("testuser")
        );
        peer.stop();
        assert_eq!(peer.closed().await, None);
    }

    #[test]
    fn poll_urls_keep_the_query_and_add_a_cache_buster() {
        let url = Url::parse("http://example.com/hub?q=1&id=a%2Bb").unwrap();
        let poll = poll_url(&url);
        let query = poll.query().unwrap();
        assert!(query.starts_with("q=1&id=a%2Bb&_="), "{query}");
        let stamp: u128 = query.rsplit('=').next().unwrap().parse().unwrap();
        assert!(stamp > 1_600_000_000_000, "milliseconds since the epoch");
    }
}
