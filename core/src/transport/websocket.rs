//! WebSockets (PROTOCOL.md §2.2), native only: tokio-tungstenite with rustls, using the HTTP
//! client's TLS configuration (the same trust store, client certificate and verification).
//!
//! The upgrade request goes to the connect URL with `http`→`ws`/`https`→`wss` and carries the
//! headers a non-browser official client sends: `Authorization: Bearer`, the cookies of the
//! connection, the user agent and the user's headers. Frames are Text for the Text transfer
//! format and Binary for Binary; both kinds are received. A reader task forwards messages to
//! the hub driver, which holds both halves of the socket: its [`SocketWriter`] feeds frames and
//! flushes once per burst (`written` completes after the flush), its [`SocketReader`] reads
//! messages. No task sits between the driver and the socket. tungstenite answers pings itself.
//!
//! Close: a close frame with code 1000 reports `Closed(None)`; any other code, or the
//! connection dropping without one, reports the official "WebSocket closed with status code:
//! `<code> (<reason>).`" Stopping (dropping the link's sender) sends close 1000, reports
//! `Closed(None)` at once (like the official `stop()`), and lets the close handshake finish in
//! the background.

use std::sync::atomic::{AtomicU16, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll};
use std::time::Duration;

use crate::reply::Reply;
use bytes::Bytes;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::task::AtomicWaker;
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{self, Message, Utf8Bytes};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tracing::instrument::WithSubscriber;

use super::link::{LinkReceiver, LinkSender, TransportGone};
use super::*;
use crate::error::Error;
use crate::protocol::negotiate::websocket_url;

pub(crate) use super::websocket_texts::{closed_with_status, FAILED_TO_CONNECT, NOT_OPEN};

/// How long a stopped socket may take to finish the close handshake in the background.
const CLOSE_GRACE: Duration = Duration::from_secs(5);

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

const OPEN: u8 = 0;
/// The writer was dropped: the transport was stopped.
const STOPPED: u8 = 1;
/// A write failed; `SocketState::error` says why.
const WRITE_FAILED: u8 = 2;
/// The reader saw the socket close.
const READ_CLOSED: u8 = 3;

/// What the two halves of a socket share: how it ended, and the reader's waker so that a
/// stop or a failed write is reported at once.
struct SocketState {
    state: AtomicU8,
    error: Mutex<Option<Error>>,
    reader: AtomicWaker,
    /// The code of the close frame a stop sends: 1000, or what the reader found wrong (1007
    /// for invalid UTF-8 in a Text frame, 1009 for a message above the limit).
    close_code: AtomicU16,
}

impl SocketState {
    /// Moves an open socket to `state`; false if it had ended already.
    fn end(&self, state: u8) -> bool {
        let ended = self
            .state
            .compare_exchange(OPEN, state, Ordering::AcqRel, Ordering::Acquire)
            .is_ok();
        if ended {
            self.reader.wake();
        }
        ended
    }

    fn is_open(&self) -> bool {
        self.state.load(Ordering::Acquire) == OPEN
    }
}

/// WebSockets with tokio-tungstenite.
pub(crate) struct WebSocketTransport;

impl Transport for WebSocketTransport {
    fn kind(&self) -> TransportKind {
        TransportKind::WebSockets
    }

    fn connect(&self, request: ConnectRequest) -> BoxFuture<'static, Result<TransportLink>> {
        Box::pin(connect(request))
    }
}

fn failed_to_connect(cause: &str) -> Error {
    Error::transport(format!("{FAILED_TO_CONNECT} ({cause})"))
}

/// Why a WebSocket did not open: no TCP stream (or tunnel) to the server, or the upgrade.
enum OpenFailure {
    Stream(Error),
    Handshake(tungstenite::Error),
}

/// A TCP stream to the server of `request`'s URL, through a `CONNECT` tunnel when the HTTP
/// client would send a request to that URL through a proxy.
async fn open_stream(request: &ConnectRequest) -> Result<TcpStream> {
    let url = &request.url;
    let (Some(host), Some(port)) = (url.host_str(), url.port_or_known_default()) else {
        return Err(failed_to_connect("the URL has no host"));
    };
    let stream = match request.http.proxy_for(url) {
        Some(proxy) => {
            tracing::debug!(proxy = %proxy.uri(), "WebSocket through a CONNECT tunnel");
            crate::proxy::open_tunnel(&proxy, host, port)
                .await
                .map_err(|refused| {
                    let error = failed_to_connect(&refused.to_string());
                    match refused.status() {
                        Some(status) => error.with_status(status),
                        None => error,
                    }
                })?
        }
        None => TcpStream::connect(format!("{host}:{port}"))
            .await
            .map_err(|e| failed_to_connect(&e.to_string()).with_source(e))?,
    };
    // Hub messages are small and written in bursts that are flushed once.
    stream
        .set_nodelay(true)
        .map_err(|e| failed_to_connect(&e.to_string()).with_source(e))?;
    Ok(stream)
}

async fn connect(request: ConnectRequest) -> Result<TransportLink> {
    let url = websocket_url(&request.url);
    // Checked once here, so that building it again with a renewed token cannot fail.
    url.as_str()
        .into_client_request()
        .map_err(|e| failed_to_connect(&e.to_string()))?;

    // tungstenite zero-fills the free part of its read buffer (128 KiB by default) before
    // every read: a smaller one costs less per read and still holds many hub messages.
    // Frames and messages are capped near the maximum message size, so a huge frame fails
    // as soon as its header announces it, before anything of its size is buffered.
    let limit = transport_message_limit(request.max_message_size);
    let config = WebSocketConfig::default()
        .read_buffer_size(16 * 1024)
        .max_message_size(Some(limit))
        .max_frame_size(Some(limit));
    let open = request.access_token.authorized(
        crate::error::ErrorKind::Transport,
        |token| {
            let mut upgrade = url.as_str().into_client_request().expect("checked above");
            upgrade
                .headers_mut()
                .extend(request.http.upgrade_headers(&url, token.as_deref()));
            let request = &request;
            async move {
                let stream = open_stream(request).await.map_err(OpenFailure::Stream)?;
                // The HTTP client's TLS configuration: the same trust store as negotiate.
                let tls = tokio_tungstenite::Connector::Rustls(request.http.tls.clone());
                // tungstenite logs the whole upgrade request at TRACE, the `Authorization`
                // header and cookies included: its handshake runs with logging off.
                tokio_tungstenite::client_async_tls_with_config(
                    upgrade,
                    stream,
                    Some(config),
                    Some(tls),
                )
                .with_subscriber(tracing::subscriber::NoSubscriber::default())
                .await
                .map_err(OpenFailure::Handshake)
            }
        },
        |result| {
            matches!(result, Err(OpenFailure::Handshake(tungstenite::Error::Http(response)))
                if response.status() == tungstenite::http::StatusCode::UNAUTHORIZED)
        },
    );
    let socket = match tokio::time::timeout(request.http.timeout, open).await {
        Ok(Err(error)) => return Err(error),
        Ok(Ok(result)) => Ok(result),
        Err(elapsed) => Err(elapsed),
    };
    let socket = match socket {
        Ok(Ok((socket, _response))) => socket,
        Ok(Err(OpenFailure::Stream(error))) => return Err(error),
        Ok(Err(OpenFailure::Handshake(tungstenite::Error::Http(response)))) => {
            let status = response.status();
            return Err(
                failed_to_connect(&format!("HTTP status {status}")).with_status(status.as_u16())
            );
        }
        Ok(Err(OpenFailure::Handshake(error))) => {
            return Err(failed_to_connect(&error.to_string()).with_source(error));
        }
        Err(_) => {
            return Err(Error::timeout(format!(
                "{FAILED_TO_CONNECT} (no answer within {} s)",
                request.http.timeout.as_secs_f64()
            )));
        }
    };
    tracing::debug!("WebSocket connected");

    let (sink, stream) = socket.split();
    let shared = Arc::new(SocketState {
        state: AtomicU8::new(OPEN),
        error: Mutex::new(None),
        reader: AtomicWaker::new(),
        close_code: AtomicU16::new(CloseCode::Normal.into()),
    });
    Ok(TransportLink {
        kind: TransportKind::WebSockets,
        outgoing: LinkSender::WebSocket(SocketWriter {
            sink: Some(sink),
            format: request.format,
            unflushed: Vec::new(),
            dirty: false,
            shared: shared.clone(),
        }),
        incoming: LinkReceiver::WebSocket(SocketReader {
            stream: Some(stream),
            shared,
            reported: false,
            ended: false,
            max_message_size: request.max_message_size,
        }),
    })
}

/// The sending half, driven by the hub driver's task.
pub(crate) struct SocketWriter {
    /// Taken by `drop`, which closes the socket.
    sink: Option<SplitSink<Socket, Message>>,
    format: TransferFormat,
    /// The `written` signals of frames fed since the last flush.
    unflushed: Vec<Reply<()>>,
    dirty: bool,
    shared: Arc<SocketState>,
}

impl SocketWriter {
    fn sink(&mut self) -> &mut SplitSink<Socket, Message> {
        self.sink.as_mut().expect("the sink lives until drop")
    }

    pub(crate) fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), TransportGone>> {
        if !self.shared.is_open() {
            return Poll::Ready(Err(TransportGone));
        }
        match ready!(self.sink().poll_ready_unpin(cx)) {
            Ok(()) => Poll::Ready(Ok(())),
            Err(error) => {
                self.fail(send_failed(error));
                Poll::Ready(Err(TransportGone))
            }
        }
    }

    pub(crate) fn start_send(&mut self, frame: OutgoingFrame) {
        let message = match to_message(frame.data, self.format) {
            Ok(message) => message,
            Err(error) => {
                if let Some(written) = frame.written {
                    written.send(Err(error));
                }
                return;
            }
        };
        match self.sink().start_send_unpin(message) {
            Ok(()) => {
                self.dirty = true;
                self.unflushed.extend(frame.written);
            }
            Err(error) => {
                let error = send_failed(error);
                if let Some(written) = frame.written {
                    written.send(Err(error.clone()));
                }
                self.fail(error);
            }
        }
    }

    pub(crate) fn needs_flush(&self) -> bool {
        self.dirty
    }

    pub(crate) fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), TransportGone>> {
        let flushed = ready!(self.sink().poll_flush_unpin(cx)).map_err(send_failed);
        self.dirty = false;
        for written in self.unflushed.drain(..) {
            written.send(flushed.clone());
        }
        match flushed {
            Ok(()) => Poll::Ready(Ok(())),
            Err(error) => {
                self.fail(error);
                Poll::Ready(Err(TransportGone))
            }
        }
    }

    /// The connection is gone: the reader reports `error` (unless it saw the end first).
    fn fail(&mut self, error: Error) {
        if self.shared.is_open() {
            tracing::debug!(%error, "WebSocket write failed");
            *self.shared.error.lock().unwrap_or_else(|e| e.into_inner()) = Some(error);
            self.shared.end(WRITE_FAILED);
        }
    }
}

/// Finishes a closing socket in the background. A half dropped outside any runtime (as a
/// runtime shuts down) has nothing left to run it: the work is dropped, and with it the
/// senders it would have answered.
fn spawn_if_in_runtime(work: impl std::future::Future<Output = ()> + Send + 'static) {
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        runtime.spawn(work);
    }
}

impl Drop for SocketWriter {
    /// Stopping: the reader reports `Closed(None)` at once (like the official `stop()`); what
    /// was fed is flushed and the close frame (1000) sent in the background.
    fn drop(&mut self) {
        self.shared.end(STOPPED);
        let Some(mut sink) = self.sink.take() else {
            return;
        };
        let unflushed = std::mem::take(&mut self.unflushed);
        let code = CloseCode::from(self.shared.close_code.load(Ordering::Acquire));
        spawn_if_in_runtime(async move {
            let close = Message::Close(Some(CloseFrame {
                code,
                reason: Utf8Bytes::from_static(""),
            }));
            let sent = match tokio::time::timeout(CLOSE_GRACE, sink.send(close)).await {
                Ok(Ok(())) => Ok(()),
                _ => Err(Error::transport(NOT_OPEN)),
            };
            for written in unflushed {
                written.send(sent.clone());
            }
        });
    }
}

/// The receiving half, driven by the hub driver's task.
pub(crate) struct SocketReader {
    /// Taken by `drop`, which lets the close handshake finish.
    stream: Option<SplitStream<Socket>>,
    shared: Arc<SocketState>,
    /// `Closed` was reported: only `None` follows.
    reported: bool,
    /// The stream ended: nothing left to read.
    ended: bool,
    /// The connection's maximum message size, for the error of a message above the limit.
    max_message_size: usize,
}

impl SocketReader {
    pub(crate) fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<TransportEvent>> {
        if !self.reported {
            self.shared.reader.register(cx.waker());
        }
        self.poll_next_event(cx)
    }

    /// What is ready now, without waiting (nor registering a waker for a stop or a failed
    /// write: the driver's next [`poll_recv`](Self::poll_recv) does).
    pub(crate) fn try_recv(&mut self) -> Option<TransportEvent> {
        let mut cx = Context::from_waker(std::task::Waker::noop());
        match self.poll_next_event(&mut cx) {
            Poll::Ready(event) => event,
            Poll::Pending => None,
        }
    }

    fn poll_next_event(&mut self, cx: &mut Context<'_>) -> Poll<Option<TransportEvent>> {
        if self.reported {
            return Poll::Ready(None);
        }
        match self.shared.state.load(Ordering::Acquire) {
            STOPPED => return Poll::Ready(Some(self.closed(None))),
            WRITE_FAILED => {
                let error = self
                    .shared
                    .error
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .take();
                let error = error.unwrap_or_else(|| Error::transport(closed_with_status(1006, "")));
                return Poll::Ready(Some(self.closed(Some(error))));
            }
            _ => {}
        }
        let stream = self.stream.as_mut().expect("the stream lives until drop");
        loop {
            let data = match ready!(stream.poll_next_unpin(cx)) {
                Some(Ok(Message::Text(text))) => Bytes::from(text),
                Some(Ok(Message::Binary(data))) => data,
                Some(Ok(Message::Close(frame))) => {
                    let error = match frame {
                        Some(frame) if frame.code == CloseCode::Normal => None,
                        Some(frame) => Some(Error::transport(closed_with_status(
                            frame.code.into(),
                            &frame.reason,
                        ))),
                        // No status code in the close frame: 1005.
                        None => Some(Error::transport(closed_with_status(1005, ""))),
                    };
                    return Poll::Ready(Some(self.closed(error)));
                }
                // Pings are answered by tungstenite; pongs and raw frames mean nothing here.
                Some(Ok(_)) => continue,
                Some(Err(error)) => {
                    self.ended = true;
                    let error = self.read_failed(error);
                    return Poll::Ready(Some(self.closed(Some(error))));
                }
                // Ended without a close frame.
                None => {
                    self.ended = true;
                    let error = Error::transport(closed_with_status(1006, ""));
                    return Poll::Ready(Some(self.closed(Some(error))));
                }
            };
            return Poll::Ready(Some(TransportEvent::Message(data)));
        }
    }

    /// The error of a failed read; a Text frame with invalid UTF-8 makes the stop close with
    /// 1007 and a message above the limit with 1009, as RFC 6455 §7.4.1 says (the socket is
    /// still open: the hub layer stops it, and the close frame goes out then).
    fn read_failed(&self, error: tungstenite::Error) -> Error {
        let code = match &error {
            tungstenite::Error::Utf8(_) => Some(CloseCode::Invalid),
            tungstenite::Error::Capacity(_) => Some(CloseCode::Size),
            _ => None,
        };
        if let Some(code) = code {
            self.shared.close_code.store(code.into(), Ordering::Release);
        }
        match error {
            tungstenite::Error::Capacity(tungstenite::error::CapacityError::MessageTooLong {
                size,
                ..
            }) => transport_message_too_large(size, self.max_message_size),
            error => Error::transport(closed_with_status(1006, &error.to_string())),
        }
    }

    fn closed(&mut self, error: Option<Error>) -> TransportEvent {
        self.reported = true;
        self.shared.end(READ_CLOSED);
        self.finish_close_handshake();
        match &error {
            None => tracing::debug!("WebSocket closed"),
            Some(error) => tracing::debug!(%error, "WebSocket failed"),
        }
        TransportEvent::Closed(error)
    }
}

impl SocketReader {
    /// Keeps reading (and dropping) in the background until the server ends the close
    /// handshake, so that tungstenite can answer its close frame or get the answer to ours.
    fn finish_close_handshake(&mut self) {
        let Some(mut stream) = self.stream.take() else {
            return;
        };
        if self.ended {
            return;
        }
        spawn_if_in_runtime(async move {
            let _ = tokio::time::timeout(CLOSE_GRACE, async {
                while let Some(Ok(_)) = stream.next().await {}
            })
            .await;
        });
    }
}

impl Drop for SocketReader {
    fn drop(&mut self) {
        self.finish_close_handshake();
    }
}

/// The frame as a WebSocket message: Text frames for the Text transfer format.
fn to_message(data: Bytes, format: TransferFormat) -> Result<Message> {
    match format {
        TransferFormat::Text => Utf8Bytes::try_from(data)
            .map(Message::Text)
            .map_err(|_| Error::invalid_argument("a Text frame must be UTF-8".to_owned())),
        TransferFormat::Binary => Ok(Message::Binary(data)),
    }
}

fn send_failed(error: tungstenite::Error) -> Error {
    match error {
        tungstenite::Error::AlreadyClosed | tungstenite::Error::ConnectionClosed => {
            Error::transport(NOT_OPEN)
        }
        error => Error::transport(format!("WebSocket send failed: {error}")).with_source(error),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::transport::send_queue::testing::*;

    async fn peer(server: &GoServer, hub: &str, format: TransferFormat) -> Peer {
        let http = http_client(&[]);
        let url = negotiate(&http, &format!("{}/{hub}", server.base_url), None).await;
        Peer::connect(&WebSocketTransport, &http, url, format, None)
            .await
            .expect("the WebSocket connects")
    }

    #[tokio::test]
    async fn go_server_json_echo_then_graceful_stop() {
        let server = GoServer::start(&[]);
        let mut peer = peer(&server, "testhub", TransferFormat::Text).await;
        assert_eq!(peer.link.kind, TransportKind::WebSockets);
        peer.handshake().await;
        assert_eq!(peer.invoke("Echo", json!(["hello"])).await, json!("hello"));
        assert_eq!(
            peer.invoke("GetActiveTransportName", json!([])).await,
            json!("WebSockets")
        );
        // Dropping the sender stops the transport: close 1000, reported as a clean close.
        peer.stop();
        assert_eq!(peer.closed().await, None);
        peer.assert_ended().await;
    }

    #[tokio::test]
    async fn go_server_messagepack_uses_binary_frames() {
        let server = GoServer::start(&[]);
        let mut peer = peer(&server, "testhub", TransferFormat::Binary).await;
        // The handshake is JSON even for MessagePack; here it travels in a Binary frame.
        peer.send(&b"{\"protocol\":\"messagepack\",\"version\":1}\x1e"[..])
            .await
            .unwrap();
        assert_eq!(&peer.message().await[..], b"{}\x1e");
        // Invocation [1, {}, "1", "Echo", ["hi"]] with its VarInt length prefix.
        let invocation = b"\x0e\x95\x01\x80\xa11\xa4Echo\x91\xa2hi";
        peer.send(&invocation[..]).await.unwrap();
        // Completion [3, {}, "1", 3, "hi"] (the Go server writes the result kind as int8 `d0 03`); a
        // Ping [6] may come first.
        loop {
            let data = peer.message().await;
            if data[..] == b"\x02\x91\x06"[..] {
                continue;
            }
            assert_eq!(&data[..], b"\x0a\x95\x03\x80\xa11\xd0\x03\xa2hi");
            break;
        }
    }

    #[tokio::test]
    async fn go_server_sees_user_agent_cookies_user_headers_and_bearer_token() {
        let server = GoServer::start(&[]);
        let http = http_client(&[("X-Hublink-Test", "yes")]);
        let url = negotiate(
            &http,
            &format!("{}/authorizedhub", server.base_url),
            Some("secret-token"),
        )
        .await;
        // The token goes in the Authorization header, not in the URL.
        let mut peer = Peer::connect(
            &WebSocketTransport,
            &http,
            url,
            TransferFormat::Text,
            Some("secret-token"),
        )
        .await
        .expect("the WebSocket connects with the bearer token");
        peer.handshake().await;
        assert_eq!(
            peer.invoke("GetToken", json!([])).await,
            json!("secret-token")
        );

        // The cookies the negotiate answer set travel with the upgrade request.
        let mut peer = peer_with(&server, &http).await;
        assert_eq!(
            peer.invoke("GetCookie", json!(["testCookie"])).await,
            json!("testValue")
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
            peer.invoke("GetHeader", json!(["Authorization"])).await,
            json!("")
        );
    }

    async fn peer_with(server: &GoServer, http: &HttpClient) -> Peer {
        let url = negotiate(http, &format!("{}/testhub", server.base_url), None).await;
        let mut peer = Peer::connect(&WebSocketTransport, http, url, TransferFormat::Text, None)
            .await
            .expect("the WebSocket connects");
        peer.handshake().await;
        peer
    }

    #[tokio::test]
    async fn go_server_refusal_fails_connect_with_the_official_text_and_the_status() {
        let server = GoServer::start(&[]);
        let http = http_client(&[]);
        // Without a token the authorized hub answers the upgrade with 401.
        let url = negotiate(
            &http,
            &format!("{}/authorizedhub", server.base_url),
            Some("t"),
        )
        .await;
        let error = Peer::connect(&WebSocketTransport, &http, url, TransferFormat::Text, None)
            .await
            .err()
            .expect("connect fails");
        assert_eq!(error.kind(), crate::ErrorKind::Transport, "{error:?}");
        assert_eq!(error.status(), Some(401), "{error:?}");
        let text = error.to_string();
        assert!(text.starts_with(FAILED_TO_CONNECT), "{text}");
        assert!(text.contains("401"), "{text}");

        // Not a SignalR endpoint. (The Go server accepts unknown connection ids on WebSockets.)
        let url = Url::parse(&format!("{}/nosuchhub?id=x", server.base_url)).unwrap();
        let error = Peer::connect(&WebSocketTransport, &http, url, TransferFormat::Text, None)
            .await
            .err()
            .expect("connect fails");
        let text = error.to_string();
        assert!(text.starts_with(FAILED_TO_CONNECT), "{text}");
        assert!(text.contains("404"), "{text}");
    }

    #[tokio::test]
    async fn nothing_listening_fails_connect_with_the_official_text() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let url = Url::parse(&format!("http://127.0.0.1:{port}/hub?id=x")).unwrap();
        let error = Peer::connect(
            &WebSocketTransport,
            &http_client(&[]),
            url,
            TransferFormat::Text,
            None,
        )
        .await
        .err()
        .expect("connect fails");
        let text = error.to_string();
        assert!(text.starts_with(FAILED_TO_CONNECT), "{text}");
        assert!(text.len() > FAILED_TO_CONNECT.len() + 3, "a cause: {text}");
    }

    #[tokio::test]
    async fn go_server_close_code_1009_is_reported_with_code_and_reason() {
        let server = GoServer::start(&["-max-message-size", "1000"]);
        let mut peer = peer(&server, "testhub", TransferFormat::Text).await;
        peer.handshake().await;
        let (_, frame) = peer.invocation("Echo", json!(["x".repeat(2000)]));
        peer.send(frame).await.unwrap();
        let reason = peer.closed().await.expect("an error close");
        let text = reason.to_string();
        assert!(
            text.starts_with("WebSocket closed with status code: 1009 (read limited at"),
            "{text}"
        );
        assert!(text.ends_with(")."), "{text}");
        // Sends after the close fail instead of vanishing.
        let (_, frame) = peer.invocation("Echo", json!(["late"]));
        if let Ok(done) = tokio::time::timeout(
            WAIT,
            peer.link.outgoing.send(OutgoingFrame {
                data: frame,
                written: None,
            }),
        )
        .await
        {
            assert!(done.is_err(), "the transport no longer takes frames");
        }
    }

    #[tokio::test]
    async fn go_server_close_without_status_is_1005() {
        let server = GoServer::start(&[]);
        let mut peer = peer(&server, "testhub", TransferFormat::Text).await;
        peer.handshake().await;
        // The Go server answers an Ack with a Close message and a close frame without status.
        peer.send(&b"{\"type\":8,\"sequenceId\":1}\x1e"[..])
            .await
            .unwrap();
        let reason = peer.closed().await.expect("an error close");
        assert_eq!(
            reason,
            Error::transport(
                "WebSocket closed with status code: 1005 (no reason given).".to_owned()
            )
        );
    }

    #[tokio::test]
    async fn queued_frames_are_written_in_order() {
        let server = GoServer::start(&[]);
        let mut peer = peer(&server, "testhub", TransferFormat::Text).await;
        peer.handshake().await;
        let mut ids = Vec::new();
        let mut signals = Vec::new();
        for n in 0..50 {
            let (id, frame) = peer.invocation("Echo", json!([format!("m{n}")]));
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
        // The Go server completes invocations in any order; all of them must come.
        let mut results = std::collections::BTreeSet::new();
        while results.len() < ids.len() {
            let message = peer.json().await;
            if message["type"] == 3 {
                assert!(message.get("error").is_none(), "{message}");
                results.insert(message["result"].as_str().unwrap().to_owned());
            }
        }
        assert!((0..50).all(|n| results.contains(&format!("m{n}"))));
    }

    #[test]
    fn close_texts_are_the_official_ones() {
        assert_eq!(
            closed_with_status(1, "just cause"),
            "WebSocket closed with status code: 1 (just cause)."
        );
        assert_eq!(
            closed_with_status(1011, ""),
            "WebSocket closed with status code: 1011 (no reason given)."
        );
    }

    async fn test_server_peer(hub_url: &str) -> Peer {
        let http = http_client(&[]);
        let url = negotiate(&http, hub_url, None).await;
        let mut peer = Peer::connect(&WebSocketTransport, &http, url, TransferFormat::Text, None)
            .await
            .expect("the WebSocket connects");
        peer.handshake().await;
        peer
    }

    #[tokio::test]
    async fn test_server_close_1000_is_clean_and_a_dropped_socket_is_1006() {
        let server = test_server(Default::default()).await;
        let hub = format!("{}/testhub", server.base_url());

        let mut peer = test_server_peer(&hub).await;
        assert_eq!(
            peer.invoke("GetActiveTransportName", json!([])).await,
            json!("WebSockets")
        );
        assert_eq!(peer.invoke("Echo", json!(["ok"])).await, json!("ok"));
        // CloseMe: a Close message, then close frame 1000.
        let (_, frame) = peer.invocation("CloseMe", json!([null, false]));
        peer.send(frame).await.unwrap();
        loop {
            let message = peer.json().await;
            if message["type"] == 7 {
                break;
            }
        }
        assert_eq!(peer.closed().await, None);

        // Abort: the socket is dropped without a close frame.
        let mut peer = test_server_peer(&hub).await;
        let (_, frame) = peer.invocation("Abort", json!([]));
        peer.send(frame).await.unwrap();
        let reason = peer.closed().await.expect("an error close").to_string();
        assert!(
            reason.starts_with("WebSocket closed with status code: 1006 ("),
            "{reason}"
        );
    }

    #[tokio::test]
    async fn test_server_unknown_id_fails_connect_with_404() {
        let server = test_server(Default::default()).await;
        let url = Url::parse(&format!("{}/testhub?id=unknown", server.base_url())).unwrap();
        let error = Peer::connect(
            &WebSocketTransport,
            &http_client(&[]),
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
    async fn test_server_frames_split_or_coalesced_arrive_whole() {
        let server = test_server(Default::default()).await;
        for fault in ["split_frames", "coalesce_frames"] {
            let hub = format!("{}/testhub?faults={fault}", server.base_url());
            let mut peer = test_server_peer(&hub).await;
            let long = "y".repeat(20_000);
            assert_eq!(
                peer.invoke("Echo", json!([long])).await,
                json!(long),
                "{fault}"
            );
        }
    }

    /// A bare WebSocket peer written here: it pings, checks the pong, sends one message and
    /// closes with an application code.
    #[tokio::test]
    async fn pings_are_answered_and_any_close_code_is_reported() {
        use tokio::net::TcpListener;
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let peer_task = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let mut ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
            ws.send(Message::Ping(Bytes::from_static(b"are you there")))
                .await
                .unwrap();
            let pong = loop {
                match ws.next().await {
                    Some(Ok(Message::Pong(payload))) => break payload,
                    Some(Ok(_)) => continue,
                    other => panic!("no pong: {other:?}"),
                }
            };
            ws.send(Message::text("hello\u{1e}")).await.unwrap();
            ws.close(Some(CloseFrame {
                code: CloseCode::from(4001),
                reason: Utf8Bytes::from_static("just cause"),
            }))
            .await
            .unwrap();
            while let Some(Ok(_)) = ws.next().await {}
            pong
        });
        let url = Url::parse(&format!("http://127.0.0.1:{port}/hub")).unwrap();
        let mut peer = Peer::connect(
            &WebSocketTransport,
            &http_client(&[]),
            url,
            TransferFormat::Text,
            None,
        )
        .await
        .unwrap();
        assert_eq!(&peer.message().await[..], b"hello\x1e");
        assert_eq!(
            peer.closed().await,
            Some(Error::transport(
                "WebSocket closed with status code: 4001 (just cause).".to_owned()
            ))
        );
        assert_eq!(&peer_task.await.unwrap()[..], b"are you there");
    }

    /// `https` becomes `wss`: the peer here gets a TLS ClientHello, then hangs up.
    #[tokio::test]
    async fn https_urls_open_tls() {
        use tokio::io::AsyncReadExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let peer_task = tokio::spawn(async move {
            let (mut tcp, _) = listener.accept().await.unwrap();
            let mut first = [0u8; 3];
            tcp.read_exact(&mut first).await.unwrap();
            first
        });
        let url = Url::parse(&format!("https://127.0.0.1:{port}/hub?id=x")).unwrap();
        let error = Peer::connect(
            &WebSocketTransport,
            &http_client(&[]),
            url,
            TransferFormat::Text,
            None,
        )
        .await
        .err()
        .expect("connect fails");
        assert!(error.to_string().starts_with(FAILED_TO_CONNECT), "{error}");
        // A TLS handshake record (0x16), TLS 1.x.
        assert_eq!(&peer_task.await.unwrap()[..2], &[0x16, 0x03]);
    }
}
