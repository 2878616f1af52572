//! A server that sends bad input gets a clear error on the caller's side — never a panic, never a
//! hang. Real sockets throughout: the in-repo test server with fault injection
//! (tests/testserver/README.md, `?faults=…` and the hub methods `Abort`, `SendMalformed`,
//! `StallFor`), and small misbehaving servers written here for what the test server cannot do
//! (raw HTTP/1.1 over a `TcpListener`; WebSockets through tokio-tungstenite, which hublink
//! already depends on).
//!
//! Every wait is bounded by `tokio::time::timeout`, so a hang fails the test instead of stalling
//! the suite. A panic hook records panics per thread: `#[tokio::test]` runs a current-thread
//! runtime, so the connection's background tasks run on the test's own thread, and a panic in
//! one of them — which tokio would otherwise swallow — fails the test.
//!
//! Test names and `// scenario:` comments carry scenario names (tests/scenarios/scenarios.txt).

mod common;

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::time::{Duration, Instant};

use futures_util::{stream, SinkExt, StreamExt};
use hublink::{
    Error, ErrorKind, HubConnection, HubConnectionBuilder, HubConnectionState, HubProtocol,
    TransportKind, UploadStream,
};
use hublink_proto::handshake::parse_handshake_request;
use hublink_proto::{Completion, CompletionOutcome, HubMessage, Invocation, ProtocolError};
use hublink_testserver::{TestServer, TestServerOptions};

use common::{calls, tag, COMBINATIONS};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::time::{sleep, timeout};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

/// The bound of every single wait in this file.
const WAIT: Duration = Duration::from_secs(10);

/// The official texts the assertions compare with.
const CONNECTION_CLOSED: &str =
    "Invocation canceled due to the underlying connection being closed.";
const SERVER_TIMEOUT: &str = "Server timeout elapsed without receiving a message from the server.";
const NOT_CONNECTED: &str = "Cannot send data if the connection is not in the 'Connected' State.";
const EXPECTED_HANDSHAKE: &str = "Expected a handshake response from the server.";
const CLOSED_BEFORE_HANDSHAKE: &str =
    "The underlying connection was closed before the hub handshake could complete.";
const REDIRECT_LIMIT: &str = "Negotiate redirection limit exceeded.";
const LEGACY_SERVER: &str = "Detected a connection attempt to an ASP.NET SignalR Server. This client only supports connecting to an ASP.NET Core SignalR Server. See https://aka.ms/signalr-core-differences for details.";
const NEGOTIATE_FAILED: &str = "Failed to complete negotiation with the server: ";

// ---------------------------------------------------------------------------------------------
// Panics, hangs and close events.

static PANICS: Mutex<Vec<String>> = Mutex::new(Vec::new());
static HOOK: Once = Once::new();

fn thread_name() -> String {
    std::thread::current()
        .name()
        .unwrap_or("<unnamed>")
        .to_owned()
}

/// Records every panic with the name of its thread (then prints it as usual).
fn watch_panics() {
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICS
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(thread_name());
            default(info);
        }));
    });
}

/// Fails if anything panicked on this test's thread (a swallowed panic in a spawned task).
fn assert_no_panics() {
    let me = thread_name();
    let count = PANICS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .filter(|t| **t == me)
        .count();
    assert_eq!(count, 0, "a task of this test panicked (see the output)");
}

/// Awaits `future` for at most [`WAIT`]; a hang fails the test with `what`.
async fn within<T>(what: impl std::fmt::Display, future: impl Future<Output = T>) -> T {
    match timeout(WAIT, future).await {
        Ok(value) => value,
        Err(_) => panic!("hang: {what} did not finish within {WAIT:?}"),
    }
}

type Closes = mpsc::UnboundedReceiver<Option<Error>>;

/// Every `on_close` of `connection`, in order.
fn closes(connection: &HubConnection) -> Closes {
    let (tx, rx) = mpsc::unbounded_channel();
    connection.on_close(move |error| {
        let _ = tx.send(error);
    });
    rx
}

/// The next close event (bounded).
async fn next_close(closes: &mut Closes, what: &str) -> Option<Error> {
    within(format!("{what}: on_close"), closes.recv())
        .await
        .expect("the close channel stays open")
}

fn assert_no_close(closes: &mut Closes, what: &str) {
    if let Ok(close) = closes.try_recv() {
        panic!("{what}: on_close must not be called, got {close:?}");
    }
}

/// After a close, the connection is Disconnected and refuses calls with the official text.
async fn assert_disconnected(connection: &HubConnection, what: &str) {
    assert_eq!(
        connection.state(),
        HubConnectionState::Disconnected,
        "{what}"
    );
    let err = within(what, connection.invoke::<String>("Echo", ("late",)))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        Error::new(ErrorKind::InvalidState, NOT_CONNECTED),
        "{what}: a call after the close"
    );
}

/// With an Echo in flight the connection closes cleanly (`on_close` without an error); the
/// invocation fails with the official text.
async fn assert_clean_close_fails_the_pending_invoke(
    connection: &HubConnection,
    closes: &mut Closes,
    what: &str,
) {
    let caller = connection.clone();
    let pending = tokio::spawn(async move { caller.invoke::<String>("Echo", ("x",)).await });
    assert_eq!(
        next_close(closes, what).await,
        None,
        "{what}: a clean close"
    );
    let error = within(what, pending).await.unwrap().unwrap_err();
    assert_eq!(
        error,
        Error::new(ErrorKind::ConnectionClosed, CONNECTION_CLOSED),
        "{what}"
    );
    assert_disconnected(connection, what).await;
}

/// The next item of `pending` is `error`.
async fn assert_stream_fails_with<S>(pending: &mut S, error: &Error, name: &str)
where
    S: futures_util::Stream<Item = Result<String, Error>> + Unpin,
{
    match within(name, pending.next()).await {
        Some(Err(e)) => assert_eq!(&e, error, "{name}: the pending stream fails with it"),
        other => panic!("{name}: the pending stream must fail, got {other:?}"),
    }
}

/// An invocation in flight: `UploadSum` over an upload that never ends.
fn endless_upload(connection: &HubConnection) -> tokio::task::JoinHandle<Result<i64, Error>> {
    let caller = connection.clone();
    tokio::spawn(async move {
        let forever = UploadStream::new(stream::pending::<i64>());
        caller.invoke::<i64>("UploadSum", (forever,)).await
    })
}

/// The `(size, max)` of a close error that must be a protocol error `MessageTooLarge`.
fn message_too_large(error: Option<Error>, what: &str) -> (usize, usize) {
    let error = error.unwrap_or_else(|| panic!("{what}: expected MessageTooLarge, got None"));
    assert_eq!(error.kind(), ErrorKind::Protocol, "{what}: {error:?}");
    match error.protocol_error() {
        Some(protocol_error @ ProtocolError::MessageTooLarge { size, max }) => {
            assert_eq!(error.to_string(), protocol_error.to_string(), "{what}");
            (*size, *max)
        }
        other => panic!("{what}: expected MessageTooLarge, got {other:?} in {error:?}"),
    }
}

fn assert_protocol_error(error: &Error, what: &str) {
    assert_eq!(error.kind(), ErrorKind::Protocol, "{what}: {error:?}");
    match error.protocol_error() {
        Some(protocol_error @ ProtocolError::InvalidMessage(text)) => {
            assert!(text.starts_with("Invalid"), "{what}: unclear text {text:?}");
            assert_eq!(error.to_string(), protocol_error.to_string(), "{what}");
        }
        other => panic!("{what}: expected ProtocolError::InvalidMessage(..), got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// The in-repo test server.

async fn test_server() -> TestServer {
    TestServer::start(TestServerOptions::default())
        .await
        .expect("test server starts")
}

fn faulty(server: &TestServer, faults: &str) -> String {
    format!("{}/testhub?faults={faults}", server.base_url())
}

fn builder(url: &str, transport: TransportKind, protocol: HubProtocol) -> HubConnectionBuilder {
    HubConnectionBuilder::new()
        .with_url(url)
        .with_transports([transport])
        .with_protocol(protocol)
}

async fn start(connection: &HubConnection, what: &str) {
    within(format!("{what}: start"), connection.start())
        .await
        .unwrap_or_else(|e| panic!("{what}: start failed: {e}"));
}

/// Builds the connection, records its close events and starts it.
async fn connected(builder: HubConnectionBuilder, what: &str) -> (HubConnection, Closes) {
    let connection = builder.build().unwrap();
    let closes = closes(&connection);
    start(&connection, what).await;
    (connection, closes)
}

// ---------------------------------------------------------------------------------------------
// Misbehaving servers: raw HTTP/1.1, one request per TCP connection (`Connection: close`).

#[derive(Debug)]
struct Request {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn is_negotiate(&self) -> bool {
        self.method == "POST" && self.path.ends_with("/negotiate")
    }

    fn is_websocket(&self) -> bool {
        self.header("upgrade")
            .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Reads one request: the head, then `Content-Length` bytes of body. Reads nothing past the
/// head of a WebSocket upgrade (the client waits for the 101 before it sends frames).
async fn read_request(stream: &mut TcpStream) -> Option<Request> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(end) = find(&buf, b"\r\n\r\n") {
            break end;
        }
        if buf.len() > 64 * 1024 {
            return None;
        }
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let method = first.next()?.to_owned();
    let target = first.next()?.to_owned();
    let path = target.split('?').next().unwrap_or_default().to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let mut request = Request {
        method,
        path,
        headers,
        body: buf[head_end + 4..].to_vec(),
    };
    let length = request
        .header("content-length")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(0);
    while request.body.len() < length {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            break;
        }
        request.body.extend_from_slice(&chunk[..n]);
    }
    Some(request)
}

async fn respond(mut stream: TcpStream, status: &str, content_type: &str, body: &[u8]) {
    let mut head = format!("HTTP/1.1 {status}\r\nConnection: close\r\n");
    if !status.starts_with("204") {
        head.push_str(&format!(
            "Content-Type: {content_type}\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    head.push_str("\r\n");
    let _ = stream.write_all(head.as_bytes()).await;
    let _ = stream.write_all(body).await;
    let _ = stream.shutdown().await;
}

async fn respond_json(stream: TcpStream, body: &str) {
    respond(stream, "200 OK", "application/json", body.as_bytes()).await;
}

/// Keeps a connection open without ever answering.
async fn park<T>(held: T) {
    std::future::pending::<()>().await;
    drop(held);
}

/// A v1 negotiate answer offering one transport.
fn negotiate_answer(transport: &str) -> String {
    format!(
        r#"{{"negotiateVersion":1,"connectionId":"bad-server","connectionToken":"bad-token","availableTransports":[{{"transport":"{transport}","transferFormats":["Text","Binary"]}}]}}"#
    )
}

/// A server on 127.0.0.1 that hands every request to `handler`; it logs "METHOD /path".
struct FakeServer {
    base_url: String,
    log: Arc<Mutex<Vec<String>>>,
    accept: tokio::task::JoinHandle<()>,
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

impl FakeServer {
    fn hub_url(&self) -> String {
        format!("{}/hub", self.base_url)
    }

    fn count(&self, request: &str) -> usize {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|r| *r == request)
            .count()
    }

    fn requests(&self) -> usize {
        self.log.lock().unwrap().len()
    }
}

async fn fake_server<F, Fut>(handler: F) -> FakeServer
where
    F: Fn(Request, TcpStream) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base_url = format!("http://{}", listener.local_addr().unwrap());
    let log = Arc::new(Mutex::new(Vec::new()));
    let handler = Arc::new(handler);
    let accept_log = log.clone();
    let accept = tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let handler = handler.clone();
            let log = accept_log.clone();
            tokio::spawn(async move {
                if let Some(request) = read_request(&mut stream).await {
                    log.lock()
                        .unwrap()
                        .push(format!("{} {}", request.method, request.path));
                    handler(request, stream).await;
                }
            });
        }
    });
    FakeServer {
        base_url,
        log,
        accept,
    }
}

type Ws = WebSocketStream<TcpStream>;

async fn accept_websocket(mut stream: TcpStream, request: &Request) -> Ws {
    let key = request
        .header("sec-websocket-key")
        .expect("a WebSocket upgrade carries a key");
    let answer = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\r\n",
        derive_accept_key(key.as_bytes())
    );
    stream
        .write_all(answer.as_bytes())
        .await
        .expect("the upgrade answer is written");
    WebSocketStream::from_raw_socket(stream, Role::Server, None).await
}

/// Reads the client's handshake request; returns its protocol.
async fn read_handshake(ws: &mut Ws) -> HubProtocol {
    let mut buf = Vec::new();
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(text))) => buf.extend_from_slice(text.as_bytes()),
            Some(Ok(Message::Binary(data))) => buf.extend_from_slice(&data),
            Some(Ok(_)) => continue,
            other => panic!("fake server: the client went away before its handshake: {other:?}"),
        }
        if let Some((request, _)) =
            parse_handshake_request(&buf, 1 << 20).expect("a valid handshake request")
        {
            return HubProtocol::from_name(&request.protocol).expect("a known protocol");
        }
    }
}

/// One WebSocket frame of the protocol's kind: Text for JSON, Binary for MessagePack.
fn frame(protocol: HubProtocol, bytes: Vec<u8>) -> Message {
    match protocol {
        HubProtocol::Json => Message::text(String::from_utf8(bytes).expect("JSON is UTF-8")),
        HubProtocol::MessagePack => Message::binary(bytes),
    }
}

fn encode(protocol: HubProtocol, message: &HubMessage) -> Vec<u8> {
    let mut out = Vec::new();
    protocol.write_message(message, &mut out).unwrap();
    out
}

/// The hub messages of the client's next data frame (`None` once the client is gone).
async fn next_messages(ws: &mut Ws, protocol: HubProtocol) -> Option<Vec<HubMessage>> {
    loop {
        let data = match ws.next().await? {
            Ok(Message::Text(text)) => text.as_bytes().to_vec(),
            Ok(Message::Binary(data)) => data.to_vec(),
            Ok(Message::Close(_)) | Err(_) => return None,
            Ok(_) => continue,
        };
        return Some(
            protocol
                .parse_messages(&data, 1 << 20)
                .expect("the client sends valid messages"),
        );
    }
}

/// The Completion answering `Echo(x)` with `x`.
fn echo_completion(invocation: &Invocation) -> Option<HubMessage> {
    let id = invocation.invocation_id.clone()?;
    Some(HubMessage::Completion(Completion {
        invocation_id: id,
        outcome: CompletionOutcome::Result(invocation.arguments.first()?.clone()),
        headers: vec![],
    }))
}

/// Reads until the client closes, so the close handshake can finish.
async fn drain(mut ws: Ws) {
    while let Some(Ok(_)) = ws.next().await {}
}

/// A server offering only WebSockets whose sockets, once the client's handshake request is
/// read, are handed to `on_socket`.
async fn websocket_server<F, Fut>(on_socket: F) -> FakeServer
where
    F: Fn(Ws, HubProtocol) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let on_socket = Arc::new(on_socket);
    fake_server(move |request, stream| {
        let on_socket = on_socket.clone();
        async move {
            if request.is_negotiate() {
                return respond_json(stream, &negotiate_answer("WebSockets")).await;
            }
            if !request.is_websocket() {
                return respond(stream, "404 Not Found", "text/plain", b"").await;
            }
            let mut ws = accept_websocket(stream, &request).await;
            let protocol = read_handshake(&mut ws).await;
            on_socket(ws, protocol).await;
        }
    })
    .await
}

/// How the Long Polling server below answers the polls after the handshake.
#[derive(Clone, Copy)]
struct LongPollingScript {
    /// The status of the first poll after the client's first invocation; `None`: never answer.
    final_status: Option<&'static str>,
    /// Whether DELETE is answered (202) or left hanging.
    answer_delete: bool,
}

/// A server offering only Long Polling: the first poll answers 200 empty, the second the
/// handshake answer; every later poll waits for the client's first invocation (a POST with a
/// type-1 message), then follows `script`.
async fn long_polling_server(script: LongPollingScript) -> FakeServer {
    let polls = Arc::new(AtomicUsize::new(0));
    let (invoked, _) = watch::channel(false);
    let invoked = Arc::new(invoked);
    fake_server(move |request, stream| {
        let polls = polls.clone();
        let invoked = invoked.clone();
        async move {
            match request.method.as_str() {
                "POST" if request.is_negotiate() => {
                    respond_json(stream, &negotiate_answer("LongPolling")).await
                }
                "GET" => match polls.fetch_add(1, Ordering::SeqCst) {
                    0 => respond(stream, "200 OK", "text/plain", b"").await,
                    1 => respond(stream, "200 OK", "text/plain", b"{}\x1e").await,
                    _ => {
                        let mut waiting = invoked.subscribe();
                        let _ = waiting.wait_for(|invoked| *invoked).await;
                        match script.final_status {
                            Some(status) => respond(stream, status, "text/plain", b"").await,
                            None => park(stream).await,
                        }
                    }
                },
                "POST" => {
                    if find(&request.body, b"\"type\":1").is_some() {
                        invoked.send_replace(true);
                    }
                    respond(stream, "200 OK", "text/plain", b"").await
                }
                "DELETE" if script.answer_delete => {
                    respond(stream, "202 Accepted", "text/plain", b"").await
                }
                "DELETE" => park(stream).await,
                _ => respond(stream, "405 Method Not Allowed", "text/plain", b"").await,
            }
        }
    })
    .await
}

// ---------------------------------------------------------------------------------------------
// Malformed frames after the handshake.

// scenario: {t}.{p}.bad-input.malformed
#[tokio::test]
async fn malformed_after_closes_with_a_protocol_error_and_fails_pending_streams() {
    watch_panics();
    let server = test_server().await;
    for (transport, protocol) in COMBINATIONS {
        let name = tag(transport, protocol);
        // Message 1 is the handshake answer, message 2 the Echo completion; then the garbage.
        let (connection, mut closes) = connected(
            builder(&faulty(&server, "malformed_after:2"), transport, protocol),
            &name,
        )
        .await;
        let mut pending = connection
            .stream::<String>("InfiniteStream", ())
            .unwrap_or_else(|e| panic!("{name}: the stream did not start: {e}"));
        let echoed: String = within(&name, connection.invoke("Echo", ("before",)))
            .await
            .unwrap_or_else(|e| panic!("{name}: Echo before the garbage failed: {e}"));
        assert_eq!(echoed, "before", "{name}");
        let error = next_close(&mut closes, &name)
            .await
            .unwrap_or_else(|| panic!("{name}: the close carries the error"));
        assert_protocol_error(&error, &name);
        assert_stream_fails_with(&mut pending, &error, &name).await;
        assert_disconnected(&connection, &name).await;
        assert_no_close(&mut closes, &name);
    }
    assert_no_panics();
}

// scenario: {t}.{p}.bad-input.malformed
#[tokio::test]
async fn send_malformed_fails_the_pending_invoke_and_stream_with_the_close_error() {
    watch_panics();
    let server = test_server().await;
    for (transport, protocol) in COMBINATIONS {
        let name = tag(transport, protocol);
        let url = format!("{}/testhub", server.base_url());
        let (connection, mut closes) = connected(builder(&url, transport, protocol), &name).await;
        let mut pending = connection
            .stream::<String>("InfiniteStream", ())
            .unwrap_or_else(|e| panic!("{name}: the stream did not start: {e}"));
        // The server writes the garbage before this invocation's completion.
        let invoke_error = within(&name, connection.invoke::<()>("SendMalformed", ()))
            .await
            .unwrap_err();
        assert_protocol_error(&invoke_error, &name);
        let error = next_close(&mut closes, &name).await;
        assert_eq!(error.as_ref(), Some(&invoke_error), "{name}: same error");
        assert_stream_fails_with(&mut pending, &invoke_error, &name).await;
        assert_disconnected(&connection, &name).await;
    }
    assert_no_panics();
}

/// MessagePack framing: the VarInt length prefix, then the body.
fn msgpack_frame(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut len = body.len();
    loop {
        let byte = (len & 0x7f) as u8;
        len >>= 7;
        if len == 0 {
            out.push(byte);
            break;
        }
        out.push(byte | 0x80);
    }
    out.extend_from_slice(body);
    out
}

/// A short MessagePack string (fixstr).
fn msgpack_str(text: &str) -> Vec<u8> {
    assert!(text.len() < 32);
    [&[0xa0 | text.len() as u8][..], text.as_bytes()].concat()
}

/// Bad frames a server sends in answer to the invocation `id`, the N-th for `Case{N}`: each
/// breaks the protocol in its own way. `binary`: send it in a Binary frame even for JSON.
fn bad_frame(protocol: HubProtocol, case: usize, id: &str) -> Option<(Vec<u8>, bool)> {
    match protocol {
        HubProtocol::Json => {
            let text = match case {
                0 => format!(r#"{{"type":3,"invocationId":"{id}","result":1,"error":"both"}}"#),
                1 => r#"{"type":2,"item":1}"#.to_owned(),
                2 => "[1,2,3]".to_owned(),
                3 => format!(r#"{{"type":"3","invocationId":"{id}"}}"#),
                4 => format!(r#"{{"type":3,"invocationId":"{id}","result":1"#),
                5 => r#"{"type":7,"error":42}"#.to_owned(),
                6 => r#"{"type":1,"target":"x","arguments":{}}"#.to_owned(),
                7 => r#"{"type":3,"invocationId":"","result":1}"#.to_owned(),
                8 => r#"{"type":-1}"#.to_owned(),
                // Not UTF-8 (in a Binary frame: a Text frame would break the WebSocket).
                9 => return Some((b"\xff\xfe{\"type\":6}\x1e".to_vec(), true)),
                _ => return None,
            };
            Some(([text.as_bytes(), b"\x1e"].concat(), false))
        }
        HubProtocol::MessagePack => {
            let id = msgpack_str(id);
            let body: Vec<u8> = match case {
                // [c1]: a reserved marker.
                0 => vec![0x91, 0xc1],
                // [1, 5]: headers that are not a map.
                1 => vec![0x92, 0x01, 0x05],
                // [3, {}, id, 3]: a result kind without the result.
                2 => [&[0x94, 0x03, 0x80][..], &id, &[0x03]].concat(),
                // [3, {}, id, 9, nil]: an unknown result kind.
                3 => [&[0x95, 0x03, 0x80][..], &id, &[0x09, 0xc0]].concat(),
                // [3, {}, id, 3, array32(2^31 - 1)]: a claimed array that is not there.
                4 => [
                    &[0x95, 0x03, 0x80][..],
                    &id,
                    &[0x03, 0xdd, 0x7f, 0xff, 0xff, 0xff],
                ]
                .concat(),
                // 5: not an array.
                5 => vec![0x05],
                // [] : an empty array.
                6 => vec![0x90],
                // [2, {}, 7, 1]: a StreamItem with a numeric id.
                7 => vec![0x94, 0x02, 0x80, 0x07, 0x01],
                _ => return None,
            };
            Some((msgpack_frame(&body), true))
        }
    }
}

/// Result nesting 100 000 levels deep, answering the invocation `id`.
fn deeply_nested(protocol: HubProtocol, id: &str) -> Vec<u8> {
    const DEPTH: usize = 100_000;
    match protocol {
        HubProtocol::Json => format!(
            r#"{{"type":3,"invocationId":"{id}","result":{}{}}}{}"#,
            "[".repeat(DEPTH),
            "]".repeat(DEPTH),
            '\u{1e}'
        )
        .into_bytes(),
        HubProtocol::MessagePack => {
            let mut body = [&[0x95, 0x03, 0x80][..], &msgpack_str(id), &[0x03]].concat();
            body.extend(std::iter::repeat_n(0x91, DEPTH));
            body.push(0xc0);
            msgpack_frame(&body)
        }
    }
}

/// A server that answers `Case{N}` invocations with [`bad_frame`] N and `Deep` with
/// [`deeply_nested`].
async fn bad_frame_server() -> FakeServer {
    websocket_server(|mut ws, protocol| async move {
        if ws.send(frame(protocol, b"{}\x1e".to_vec())).await.is_err() {
            return;
        }
        while let Some(messages) = next_messages(&mut ws, protocol).await {
            for message in messages {
                let HubMessage::Invocation(Invocation {
                    invocation_id: Some(id),
                    target,
                    ..
                }) = message
                else {
                    continue;
                };
                let (bytes, binary) = match target.strip_prefix("Case") {
                    Some(n) => bad_frame(protocol, n.parse().unwrap(), &id).unwrap(),
                    None => (
                        deeply_nested(protocol, &id),
                        protocol == HubProtocol::MessagePack,
                    ),
                };
                let message = if binary {
                    Message::binary(bytes)
                } else {
                    frame(protocol, bytes)
                };
                if ws.send(message).await.is_err() {
                    return;
                }
            }
        }
    })
    .await
}

// scenario: ws.json.bad-input.malformed, ws.msgpack.bad-input.malformed
#[tokio::test]
async fn every_kind_of_bad_frame_closes_with_a_protocol_error_and_fails_the_pending_invoke() {
    watch_panics();
    let server = bad_frame_server().await;
    for protocol in [HubProtocol::Json, HubProtocol::MessagePack] {
        let mut case = 0;
        while bad_frame(protocol, case, "0").is_some() {
            let name = format!("{} case {case}", tag(TransportKind::WebSockets, protocol));
            let (connection, mut closes) = connected(
                builder(&server.hub_url(), TransportKind::WebSockets, protocol),
                &name,
            )
            .await;
            let method = format!("Case{case}");
            let error = within(&name, connection.invoke::<serde_json::Value>(&method, ()))
                .await
                .unwrap_err();
            assert_protocol_error(&error, &name);
            assert_eq!(
                next_close(&mut closes, &name).await,
                Some(error),
                "{name}: on_close"
            );
            assert_disconnected(&connection, &name).await;
            case += 1;
        }
    }
    assert_no_panics();
}

// scenario: ws.json.bad-input.malformed, ws.msgpack.bad-input.malformed
#[tokio::test]
async fn a_deeply_nested_result_fails_the_invoke_without_overflowing_the_stack() {
    watch_panics();
    let server = bad_frame_server().await;
    for protocol in [HubProtocol::Json, HubProtocol::MessagePack] {
        let name = tag(TransportKind::WebSockets, protocol);
        let connection = builder(&server.hub_url(), TransportKind::WebSockets, protocol)
            .build()
            .unwrap();
        start(&connection, &name).await;
        let result = within(&name, connection.invoke::<serde_json::Value>("Deep", ())).await;
        // Either the decoder refuses the message (and the connection closes) or the caller's
        // conversion does; never a crash.
        match result {
            Err(e) if matches!(e.kind(), ErrorKind::Protocol | ErrorKind::InvalidArgument) => {}
            other => panic!("{name}: expected an error, got {other:?}"),
        }
        within(&name, connection.stop()).await.unwrap();
    }
    assert_no_panics();
}

// ---------------------------------------------------------------------------------------------
// Oversized messages.

// scenario: {t}.{p}.bad-input.oversized
#[tokio::test]
async fn a_message_above_max_message_size_closes_with_message_too_large() {
    watch_panics();
    let server = test_server().await;
    const MAX: usize = 64 * 1024;
    for (transport, protocol) in COMBINATIONS {
        let name = tag(transport, protocol);
        let url = faulty(&server, "oversized_message:200000");
        let connection = builder(&url, transport, protocol)
            .with_max_message_size(MAX)
            .build()
            .unwrap();
        let mut closes = closes(&connection);
        let error = match within(&name, connection.start()).await {
            Ok(()) => next_close(&mut closes, &name).await,
            // Long Polling: the test server answers the handshake and the oversized message
            // in one poll, which is above the transport limit, so start fails with it.
            Err(error) if transport == TransportKind::LongPolling => {
                assert_no_close(&mut closes, &name);
                Some(error)
            }
            Err(error) => panic!("{name}: start failed: {error}"),
        };
        let (size, max) = message_too_large(error, &name);
        assert_eq!(max, MAX, "{name}");
        assert!(size > MAX, "{name}: size {size}");
        assert_disconnected(&connection, &name).await;
    }
    // The default maximum (1 MiB) against the default oversized message (2 MiB).
    let (_connection, mut closes) = connected(
        builder(
            &faulty(&server, "oversized_message"),
            TransportKind::WebSockets,
            HubProtocol::Json,
        ),
        "default maximum",
    )
    .await;
    let error = next_close(&mut closes, "default maximum").await;
    let (_, max) = message_too_large(error, "default maximum");
    assert_eq!(max, 1024 * 1024);
    assert_no_panics();
}

// scenario: ws.msgpack.bad-input.oversized
#[tokio::test]
async fn a_huge_length_prefix_closes_with_message_too_large() {
    watch_panics();
    const MAX: usize = 64 * 1024;
    // A length prefix claiming 2 GB, then a trickle of bytes: the client neither buffers nor
    // waits for them.
    let server = websocket_server(|mut ws, _| async move {
        if ws.send(Message::text("{}\x1e")).await.is_err() {
            return;
        }
        let _ = ws
            .send(Message::binary(vec![0xff, 0xff, 0xff, 0xff, 0x07, 0x95]))
            .await;
        let filler = vec![b'x'; 16 * 1024];
        while ws.send(Message::binary(filler.clone())).await.is_ok() {
            sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    let protocol = HubProtocol::MessagePack;
    let name = tag(TransportKind::WebSockets, protocol);
    let (connection, mut closes) = connected(
        builder(&server.hub_url(), TransportKind::WebSockets, protocol).with_max_message_size(MAX),
        &name,
    )
    .await;
    let error = next_close(&mut closes, &name).await;
    let (size, max) = message_too_large(error, &name);
    assert_eq!(max, MAX, "{name}");
    assert_eq!(size, 0x7fff_ffff, "{name}: the claimed size");
    assert_disconnected(&connection, &name).await;
    assert_no_panics();
}

/// Sends `frame` as one raw WebSocket frame (server to client: unmasked) with `opcode`,
/// announcing `announced` bytes of payload (the frame may hold fewer).
async fn send_raw_frame(ws: &mut Ws, opcode: u8, announced: u64, payload: &[u8]) {
    let mut head = vec![0x80 | opcode];
    match announced {
        0..=125 => head.push(announced as u8),
        126..=0xffff => {
            head.push(126);
            head.extend((announced as u16).to_be_bytes());
        }
        _ => {
            head.push(127);
            head.extend(announced.to_be_bytes());
        }
    }
    let _ = ws.flush().await;
    let socket = ws.get_mut();
    let _ = socket.write_all(&head).await;
    let _ = socket.write_all(payload).await;
    let _ = socket.flush().await;
}

/// The code of the close frame the client sends next (`None` if it sends none).
async fn client_close_code(ws: &mut Ws) -> Option<u16> {
    loop {
        match timeout(WAIT, ws.next()).await.ok()?? {
            Ok(Message::Close(frame)) => return frame.map(|f| f.code.into()),
            Ok(_) => continue,
            Err(_) => return None,
        }
    }
}

// scenario: ws.json.bad-input.partial-message, ws.msgpack.bad-input.partial-message
#[tokio::test]
async fn a_partial_message_at_the_end_of_a_frame_fails_at_once_with_the_official_text() {
    watch_panics();
    // Each transport message must hold whole messages (as in the official clients): what is
    // left at its end fails the connection at once, although the server keeps pinging (only
    // decoded messages count as activity, so nothing keeps a zombie connection alive).
    for (protocol, bad, expected) in [
        (
            HubProtocol::Json,
            b"{\"type\":6}".to_vec(),
            ProtocolError::Incomplete,
        ),
        (
            HubProtocol::MessagePack,
            vec![0x80],
            ProtocolError::BadLengthPrefix,
        ),
        (
            HubProtocol::MessagePack,
            vec![0x05, 0x91, 0x06],
            ProtocolError::IncompleteFrame,
        ),
    ] {
        let name = format!("{} {expected:?}", tag(TransportKind::WebSockets, protocol));
        let server = websocket_server(move |mut ws, protocol| {
            let bad = bad.clone();
            async move {
                if ws.send(Message::text("{}\x1e")).await.is_err() {
                    return;
                }
                sleep(Duration::from_millis(200)).await;
                if ws.send(frame(protocol, bad)).await.is_err() {
                    return;
                }
                let ping = encode(protocol, &HubMessage::Ping);
                while ws.send(frame(protocol, ping.clone())).await.is_ok() {
                    sleep(Duration::from_millis(50)).await;
                }
            }
        })
        .await;
        let (connection, mut closes) = connected(
            builder(&server.hub_url(), TransportKind::WebSockets, protocol),
            &name,
        )
        .await;
        let started = Instant::now();
        let pending = endless_upload(&connection);
        let error = next_close(&mut closes, &name).await;
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{name}: failed after {:?}",
            started.elapsed()
        );
        let expected_error = Error::from(expected.clone());
        assert_eq!(error.as_ref(), Some(&expected_error), "{name}");
        assert_eq!(error.unwrap().protocol_error(), Some(&expected), "{name}");
        let invoke = within(&name, pending).await.unwrap();
        assert_eq!(invoke, Err(expected_error), "{name}: the call in flight");
        assert_disconnected(&connection, &name).await;
    }
    assert_no_panics();
}

// scenario: ws.json.bad-input.invalid-utf8
#[tokio::test]
async fn invalid_utf8_in_a_text_frame_closes_with_1007() {
    watch_panics();
    let (codes, mut codes_rx) = mpsc::unbounded_channel();
    let server = websocket_server(move |mut ws, _| {
        let codes = codes.clone();
        async move {
            if ws.send(Message::text("{}\x1e")).await.is_err() {
                return;
            }
            sleep(Duration::from_millis(100)).await;
            send_raw_frame(&mut ws, 0x1, 2, &[0xff, 0xfe]).await;
            let _ = codes.send(client_close_code(&mut ws).await);
        }
    })
    .await;
    let name = "ws.json invalid UTF-8";
    let (connection, mut closes) = connected(
        builder(
            &server.hub_url(),
            TransportKind::WebSockets,
            HubProtocol::Json,
        ),
        name,
    )
    .await;
    let started = Instant::now();
    let error = next_close(&mut closes, name)
        .await
        .expect("the connection fails");
    assert!(started.elapsed() < Duration::from_secs(2), "{name}");
    assert_eq!(error.kind(), ErrorKind::Transport, "{name}: {error}");
    assert!(error.to_string().contains("UTF-8"), "{name}: {error}");
    assert_eq!(
        within(name, codes_rx.recv()).await,
        Some(Some(1007)),
        "{name}: the close code the server got"
    );
    assert_disconnected(&connection, name).await;
    assert_no_panics();
}

// scenario: ws.json.handshake.invalid-utf8
#[tokio::test]
async fn invalid_utf8_instead_of_the_handshake_answer_fails_start_and_never_fires_on_close() {
    watch_panics();
    let (codes, mut codes_rx) = mpsc::unbounded_channel();
    let server = websocket_server(move |mut ws, _| {
        let codes = codes.clone();
        async move {
            send_raw_frame(&mut ws, 0x1, 2, &[0xff, 0xfe]).await;
            let _ = codes.send(client_close_code(&mut ws).await);
        }
    })
    .await;
    let name = "ws.json invalid UTF-8 handshake";
    for _ in 0..5 {
        let connection = builder(
            &server.hub_url(),
            TransportKind::WebSockets,
            HubProtocol::Json,
        )
        .build()
        .unwrap();
        let mut closes = closes(&connection);
        let error = within(name, connection.start()).await.unwrap_err();
        assert!(error.to_string().contains("UTF-8"), "{name}: {error}");
        assert_eq!(connection.state(), HubConnectionState::Disconnected);
        assert_eq!(
            within(name, codes_rx.recv()).await,
            Some(Some(1007)),
            "{name}: the close code the server got"
        );
        sleep(Duration::from_millis(50)).await;
        assert_no_close(&mut closes, name);
    }
    assert_no_panics();
}

// scenario: ws.json.bad-input.huge-frame, ws.msgpack.bad-input.huge-frame
#[tokio::test]
async fn a_huge_frame_fails_at_its_header_with_message_too_large_and_1009() {
    watch_panics();
    const MAX: usize = 64 * 1024;
    for protocol in [HubProtocol::Json, HubProtocol::MessagePack] {
        let name = tag(TransportKind::WebSockets, protocol);
        let (codes, mut codes_rx) = mpsc::unbounded_channel();
        // A frame announcing 64 MB, of which only a little ever comes: the client must fail
        // at the header, not buffer (or wait for) the body.
        let server = websocket_server(move |mut ws, protocol| {
            let codes = codes.clone();
            async move {
                if ws.send(Message::text("{}\x1e")).await.is_err() {
                    return;
                }
                let opcode = if protocol == HubProtocol::Json {
                    0x1
                } else {
                    0x2
                };
                send_raw_frame(&mut ws, opcode, 64 << 20, &[b'x'; 1024]).await;
                let _ = codes.send(client_close_code(&mut ws).await);
            }
        })
        .await;
        let (connection, mut closes) = connected(
            builder(&server.hub_url(), TransportKind::WebSockets, protocol)
                .with_max_message_size(MAX),
            &name,
        )
        .await;
        let started = Instant::now();
        let error = next_close(&mut closes, &name).await;
        assert!(started.elapsed() < Duration::from_secs(2), "{name}");
        let (size, max) = message_too_large(error, &name);
        assert_eq!((size, max), (64 << 20, MAX), "{name}");
        assert_eq!(
            within(&name, codes_rx.recv()).await,
            Some(Some(1009)),
            "{name}"
        );
        assert_disconnected(&connection, &name).await;
    }
    assert_no_panics();
}

// ---------------------------------------------------------------------------------------------
// Unknown message types.

/// The unknown types (and types a server never sends) this server mixes into its answers.
fn unknown_messages(protocol: HubProtocol) -> Vec<u8> {
    match protocol {
        HubProtocol::Json => [
            r#"{"type":99,"foo":[1,2,{"bar":null}]}"#,
            r#"{"type":10,"invocationId":5,"target":[]}"#,
            r#"{"type":4,"invocationId":"77","target":"x","arguments":[]}"#,
            r#"{"type":5,"invocationId":"77"}"#,
            r#"{"type":8,"sequenceId":1}"#,
            r#"{"type":9,"sequenceId":1}"#,
        ]
        .iter()
        .flat_map(|m| [m.as_bytes(), &b"\x1e"[..]].concat())
        .collect(),
        HubProtocol::MessagePack => [
            // [99, {}], [10], [5, {}, "77"], [8, 1], [9, 1]
            &[0x03, 0x92, 0x63, 0x80][..],
            &[0x02, 0x91, 0x0a],
            &[0x06, 0x93, 0x05, 0x80, 0xa2, 0x37, 0x37],
            &[0x03, 0x92, 0x08, 0x01],
            &[0x03, 0x92, 0x09, 0x01],
        ]
        .concat(),
    }
}

// scenario: ws.json.bad-input.unknown-type, ws.msgpack.bad-input.unknown-type
#[tokio::test]
async fn unknown_message_types_are_ignored_and_the_connection_keeps_working() {
    watch_panics();
    let server = websocket_server(|mut ws, protocol| async move {
        // Unknown messages right behind the handshake answer, in the same frame.
        let mut first = b"{}\x1e".to_vec();
        first.extend(unknown_messages(protocol));
        if ws.send(frame(protocol, first)).await.is_err() {
            return;
        }
        while let Some(messages) = next_messages(&mut ws, protocol).await {
            for message in messages {
                let HubMessage::Invocation(invocation) = message else {
                    continue;
                };
                if invocation.target == "Stop" {
                    return drain(ws).await;
                }
                let Some(completion) = echo_completion(&invocation) else {
                    continue;
                };
                // Unknown messages alone in a frame, then before the answer in its frame.
                let mut answer = unknown_messages(protocol);
                let call = HubMessage::Invocation(Invocation {
                    invocation_id: None,
                    target: "Message".into(),
                    arguments: invocation.arguments.clone(),
                    stream_ids: None,
                    headers: vec![],
                });
                answer.extend(encode(protocol, &call));
                answer.extend(unknown_messages(protocol));
                answer.extend(encode(protocol, &completion));
                let sent = ws.send(frame(protocol, unknown_messages(protocol))).await;
                if sent.is_err() || ws.send(frame(protocol, answer)).await.is_err() {
                    return;
                }
            }
        }
    })
    .await;
    for protocol in [HubProtocol::Json, HubProtocol::MessagePack] {
        let name = tag(TransportKind::WebSockets, protocol);
        let connection = builder(&server.hub_url(), TransportKind::WebSockets, protocol)
            .build()
            .unwrap();
        let mut closes = closes(&connection);
        let mut calls = calls(&connection, "Message");
        start(&connection, &name).await;
        for word in ["one", "two", "three"] {
            let echoed: String = within(&name, connection.invoke("Echo", (word,)))
                .await
                .unwrap_or_else(|e| panic!("{name}: Echo({word}) failed: {e}"));
            assert_eq!(echoed, word, "{name}");
            let called = within(&name, calls.recv()).await;
            assert_eq!(called.as_deref(), Some(word), "{name}: the client method");
        }
        assert_eq!(connection.state(), HubConnectionState::Connected, "{name}");
        assert_no_close(&mut closes, &name);
        let _ = within(&name, connection.send("Stop", ())).await;
        within(&name, connection.stop()).await.unwrap();
        assert_eq!(next_close(&mut closes, &name).await, None, "{name}");
    }
    assert_no_panics();
}

// ---------------------------------------------------------------------------------------------
// Split and coalesced frames.

// scenario: ws.json.framing.split, ws.msgpack.framing.split
#[tokio::test]
async fn a_message_split_across_frames_fails_at_once_as_in_the_official_clients() {
    watch_panics();
    let server = test_server().await;
    for protocol in [HubProtocol::Json, HubProtocol::MessagePack] {
        let name = format!("{} split_frames", tag(TransportKind::WebSockets, protocol));
        // The handshake answer may come in pieces; the messages after it may not.
        let (connection, mut closes) = connected(
            builder(
                &faulty(&server, "split_frames"),
                TransportKind::WebSockets,
                protocol,
            ),
            &name,
        )
        .await;
        let started = Instant::now();
        let caller = connection.clone();
        let echo = tokio::spawn(async move { caller.invoke::<String>("Echo", ("x",)).await });
        let error = next_close(&mut closes, &name).await.expect("an error");
        assert!(started.elapsed() < Duration::from_secs(2), "{name}");
        let expected = match protocol {
            HubProtocol::Json => ProtocolError::Incomplete,
            HubProtocol::MessagePack => ProtocolError::IncompleteFrame,
        };
        assert_eq!(error.protocol_error(), Some(&expected), "{name}: {error}");
        assert_eq!(within(&name, echo).await.unwrap(), Err(error), "{name}");
        assert_disconnected(&connection, &name).await;
    }
    assert_no_panics();
}

// scenario: ws.json.framing.coalesced, ws.msgpack.framing.coalesced
#[tokio::test]
async fn coalesced_frames_still_decode() {
    watch_panics();
    let server = test_server().await;
    {
        let faults = "coalesce_frames";
        for protocol in [HubProtocol::Json, HubProtocol::MessagePack] {
            let name = format!("{} {faults}", tag(TransportKind::WebSockets, protocol));
            let connection = builder(
                &faulty(&server, faults),
                TransportKind::WebSockets,
                protocol,
            )
            .build()
            .unwrap();
            let mut closes = closes(&connection);
            let mut calls = calls(&connection, "Message");
            start(&connection, &name).await;
            let text = "你好，世界！ split me";
            let echoed: String = within(&name, connection.invoke("Echo", (text,)))
                .await
                .unwrap();
            assert_eq!(echoed, text, "{name}");
            let copies: Vec<String> = within(&name, connection.invoke("EchoN", ("ab", 50)))
                .await
                .unwrap();
            assert_eq!(copies, vec!["ab".to_owned(); 50], "{name}");
            let items = within(&name, async {
                let stream = connection.stream::<i64>("StreamCount", (30,))?;
                let items = stream.collect::<Vec<_>>().await;
                items.into_iter().collect::<Result<Vec<i64>, Error>>()
            })
            .await
            .unwrap();
            assert_eq!(items, (0..30).collect::<Vec<_>>(), "{name}");
            within(&name, connection.send("InvokeWithString", ("pushed",)))
                .await
                .unwrap();
            let called = within(&name, calls.recv()).await;
            assert_eq!(called.as_deref(), Some("pushed"), "{name}");
            assert_no_close(&mut closes, &name);
            within(&name, connection.stop()).await.unwrap();
            assert_eq!(next_close(&mut closes, &name).await, None, "{name}");
        }
    }
    assert_no_panics();
}

// scenario: ws.json.framing.byte-per-frame, ws.msgpack.framing.byte-per-frame
#[tokio::test]
async fn one_byte_per_frame_fails_at_the_first_message_after_the_handshake() {
    watch_panics();
    let server = websocket_server(|mut ws, protocol| async move {
        let send_bytes = |bytes: Vec<u8>| {
            bytes
                .into_iter()
                .map(|b| Ok::<_, tokio_tungstenite::tungstenite::Error>(frame(protocol, vec![b])))
                .collect::<Vec<_>>()
        };
        // The handshake answer and a ping, one byte per frame.
        let mut start = b"{}\x1e".to_vec();
        start.extend(encode(protocol, &HubMessage::Ping));
        if ws
            .send_all(&mut stream::iter(send_bytes(start)))
            .await
            .is_err()
        {
            return;
        }
        drain(ws).await;
    })
    .await;
    for protocol in [HubProtocol::Json, HubProtocol::MessagePack] {
        let name = tag(TransportKind::WebSockets, protocol);
        // The handshake answer may come in pieces (the official clients need it whole; this
        // one is lenient there), but a hub message cut short fails at once.
        let (connection, mut closes) = connected(
            builder(&server.hub_url(), TransportKind::WebSockets, protocol),
            &name,
        )
        .await;
        let error = next_close(&mut closes, &name).await.expect("an error");
        let expected = match protocol {
            HubProtocol::Json => ProtocolError::Incomplete,
            // The first byte, 0x02, is a whole length prefix; the body is missing.
            HubProtocol::MessagePack => ProtocolError::IncompleteFrame,
        };
        assert_eq!(error.protocol_error(), Some(&expected), "{name}: {error}");
        assert_disconnected(&connection, &name).await;
    }
    assert_no_panics();
}

// ---------------------------------------------------------------------------------------------
// Broken handshake answers.

/// Starts a connection against `server` and returns the error start() failed with.
async fn failed_start(
    server: &FakeServer,
    protocol: HubProtocol,
    handshake_timeout: Duration,
    what: &str,
) -> (Error, Duration) {
    let connection = builder(&server.hub_url(), TransportKind::WebSockets, protocol)
        .with_handshake_timeout(handshake_timeout)
        .build()
        .unwrap();
    let mut closes = closes(&connection);
    let began = Instant::now();
    let result = within(format!("{what}: start"), connection.start()).await;
    let elapsed = began.elapsed();
    let error = result.expect_err(what);
    assert_eq!(
        connection.state(),
        HubConnectionState::Disconnected,
        "{what}"
    );
    sleep(Duration::from_millis(50)).await;
    assert_no_close(&mut closes, what);
    (error, elapsed)
}

/// A WebSocket server answering the handshake request with `answer` (as given, in one frame of
/// the client's kind), then holding the socket open.
async fn handshake_server(answer: &'static [u8]) -> FakeServer {
    websocket_server(move |mut ws, protocol| async move {
        if ws.send(frame(protocol, answer.to_vec())).await.is_ok() {
            drain(ws).await;
        }
    })
    .await
}

// scenario: ws.json.handshake.error
#[tokio::test]
async fn a_handshake_error_fails_start_with_the_official_text() {
    watch_panics();
    let server = handshake_server(b"{\"error\":\"Handshake was canceled.\"}\x1e").await;
    let (error, _) = failed_start(&server, HubProtocol::Json, WAIT, "error answer").await;
    assert_eq!(
        error,
        Error::new(
            ErrorKind::Handshake,
            "Server returned handshake error: Handshake was canceled."
        )
    );
    assert_no_panics();
}

// scenario: ws.json.handshake.closed
#[tokio::test]
async fn a_socket_closed_before_the_handshake_answer_fails_start() {
    watch_panics();
    // A clean close (1000) without an answer.
    let server = websocket_server(|mut ws, _| async move {
        let normal = CloseFrame {
            code: CloseCode::Normal,
            reason: "".into(),
        };
        let _ = ws.close(Some(normal)).await;
        drain(ws).await;
    })
    .await;
    let (error, _) = failed_start(&server, HubProtocol::Json, WAIT, "clean close").await;
    assert_eq!(
        error,
        Error::new(ErrorKind::Handshake, CLOSED_BEFORE_HANDSHAKE)
    );
    // The TCP connection dropped without a close frame.
    let server = websocket_server(|ws, _| async move { drop(ws) }).await;
    let (error, _) = failed_start(&server, HubProtocol::Json, WAIT, "dropped socket").await;
    assert_eq!(
        error.kind(),
        ErrorKind::Transport,
        "dropped socket: expected the transport's close error, got {error:?}"
    );
    assert!(
        error
            .to_string()
            .starts_with("WebSocket closed with status code: 1006"),
        "{error}"
    );
    assert_no_panics();
}

// scenario: ws.json.handshake.hub-message, ws.msgpack.handshake.hub-message
#[tokio::test]
async fn a_hub_message_instead_of_the_handshake_answer_fails_start_with_handshake_error() {
    watch_panics();
    let server = handshake_server(b"{\"type\":6}\x1e").await;
    for protocol in [HubProtocol::Json, HubProtocol::MessagePack] {
        let name = tag(TransportKind::WebSockets, protocol);
        let (error, _) = failed_start(&server, protocol, WAIT, &name).await;
        assert_eq!(error.kind(), ErrorKind::Handshake, "{name}: {error:?}");
        assert!(
            error.to_string().contains(EXPECTED_HANDSHAKE),
            "{name}: {error}"
        );
    }
    assert_no_panics();
}

// scenario: ws.json.handshake.not-json
#[tokio::test]
async fn a_handshake_answer_that_is_not_json_fails_start_with_handshake_error() {
    watch_panics();
    let server = handshake_server(b"hello, world\x1e").await;
    let (error, _) = failed_start(&server, HubProtocol::Json, WAIT, "not JSON").await;
    assert_eq!(error.kind(), ErrorKind::Handshake, "not JSON: {error:?}");
    assert!(error.to_string().contains("not valid JSON"), "{error}");
    assert_no_panics();
}

// scenario: ws.json.handshake.no-separator
#[tokio::test]
async fn a_handshake_answer_without_separator_fails_start_at_the_handshake_timeout() {
    watch_panics();
    let server = handshake_server(b"{}").await;
    let (error, elapsed) = failed_start(
        &server,
        HubProtocol::Json,
        Duration::from_millis(500),
        "no separator",
    )
    .await;
    assert_eq!(error.kind(), ErrorKind::Timeout, "{error:?}");
    assert!(error.is_timeout(), "{error:?}");
    assert!(error.to_string().contains("500 ms"), "{error:?}");
    assert!(elapsed < Duration::from_secs(3), "took {elapsed:?}");
    assert_no_panics();
}

/// A WebSocket server answering the handshake request with an unterminated JSON string that
/// never ends.
async fn endless_handshake_server() -> FakeServer {
    websocket_server(|mut ws, _| async move {
        let filler = "{\"a\":\"".to_owned() + &"x".repeat(16 * 1024);
        while ws.send(Message::text(filler.clone())).await.is_ok() {
            sleep(Duration::from_millis(5)).await;
        }
    })
    .await
}

// scenario: ws.json.handshake.no-separator
#[tokio::test]
async fn an_endless_handshake_answer_fails_start_with_handshake_error() {
    watch_panics();
    let server = endless_handshake_server().await;
    let connection = builder(
        &server.hub_url(),
        TransportKind::WebSockets,
        HubProtocol::Json,
    )
    .with_max_message_size(64 * 1024)
    .build()
    .unwrap();
    let error = within("endless answer", connection.start())
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Handshake, "{error:?}");
    assert_no_panics();
}

// scenario: ws.json.handshake.no-separator
#[tokio::test]
async fn an_endless_handshake_answer_fails_start_long_before_the_handshake_timeout() {
    // The part of the case above that holds today: bounded by the maximum message size, not
    // the handshake timeout, and a clear error.
    watch_panics();
    let server = endless_handshake_server().await;
    let connection = builder(
        &server.hub_url(),
        TransportKind::WebSockets,
        HubProtocol::Json,
    )
    .with_max_message_size(64 * 1024)
    .with_handshake_timeout(Duration::from_secs(60))
    .build()
    .unwrap();
    let began = Instant::now();
    let error = within("endless answer", connection.start())
        .await
        .unwrap_err();
    assert!(
        began.elapsed() < Duration::from_secs(5),
        "{:?}",
        began.elapsed()
    );
    assert!(
        error
            .to_string()
            .contains("more than the maximum of 65536 bytes"),
        "{error}"
    );
    assert_eq!(connection.state(), HubConnectionState::Disconnected);
    assert_no_panics();
}

// scenario: {t}.{p}.handshake.timeout
#[tokio::test]
async fn a_delayed_handshake_fails_start_at_the_handshake_timeout() {
    watch_panics();
    let server = test_server().await;
    for (transport, protocol) in COMBINATIONS {
        let name = tag(transport, protocol);
        let connection = builder(
            &faulty(&server, "delay_handshake_ms:8000"),
            transport,
            protocol,
        )
        .with_handshake_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
        let mut closes = closes(&connection);
        let began = Instant::now();
        let error = within(&name, connection.start()).await.unwrap_err();
        let elapsed = began.elapsed();
        assert_eq!(
            error,
            Error::new(
                ErrorKind::Timeout,
                "The server did not answer the handshake within 300 ms."
            ),
            "{name}"
        );
        assert!(elapsed < Duration::from_secs(3), "{name}: took {elapsed:?}");
        assert_eq!(
            connection.state(),
            HubConnectionState::Disconnected,
            "{name}"
        );
        assert_no_close(&mut closes, &name);
    }
    assert_no_panics();
}

// ---------------------------------------------------------------------------------------------
// Negotiate.

async fn failed_negotiate(server: &FakeServer, http_timeout: Duration, what: &str) -> Error {
    let connection = HubConnectionBuilder::new()
        .with_url(server.hub_url())
        .with_http_timeout(http_timeout)
        .build()
        .unwrap();
    let mut closes = closes(&connection);
    let error = within(format!("{what}: start"), connection.start())
        .await
        .expect_err(what);
    assert_eq!(
        connection.state(),
        HubConnectionState::Disconnected,
        "{what}"
    );
    assert_no_close(&mut closes, what);
    error
}

// scenario: any.any.negotiate.redirect-loop
#[tokio::test]
async fn endless_negotiate_redirects_stop_after_exactly_100_requests() {
    watch_panics();
    let server = fake_server(|request, stream| async move {
        let host = request.header("host").unwrap_or_default().to_owned();
        respond_json(stream, &format!(r#"{{"url":"http://{host}/hub"}}"#)).await
    })
    .await;
    let error = failed_negotiate(&server, WAIT, "redirect loop").await;
    assert_eq!(error, Error::new(ErrorKind::Negotiation, REDIRECT_LIMIT));
    assert_eq!(server.count("POST /hub/negotiate"), 100);
    assert_eq!(server.requests(), 100, "nothing but negotiates");
    assert_no_panics();
}

// scenario: any.any.negotiate.stall
#[tokio::test]
async fn a_stalled_negotiate_fails_start_after_the_http_timeout() {
    watch_panics();
    // No answer at all; then a head whose body never comes.
    let silent = fake_server(|_, stream| park(stream)).await;
    let half = fake_server(|_, mut stream| async move {
        let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n{\"connectionId\":";
        let _ = stream.write_all(head.as_bytes()).await;
        park(stream).await
    })
    .await;
    for (server, what) in [(&silent, "no answer"), (&half, "body stalls")] {
        let began = Instant::now();
        let error = failed_negotiate(server, Duration::from_millis(500), what).await;
        let elapsed = began.elapsed();
        assert!(elapsed >= Duration::from_millis(450), "{what}: {elapsed:?}");
        assert!(elapsed < Duration::from_secs(3), "{what}: took {elapsed:?}");
        // The request timed out: a timeout, whether the head or the body stalled.
        assert_eq!(error.kind(), ErrorKind::Timeout, "{what}: {error:?}");
        assert!(error.is_timeout(), "{what}: {error:?}");
        let message = error.to_string();
        assert!(message.starts_with(NEGOTIATE_FAILED), "{what}: {message}");
    }
    assert_no_panics();
}

// scenario: any.any.negotiate.stall
#[tokio::test]
async fn a_stalled_negotiate_says_it_timed_out() {
    watch_panics();
    let silent = fake_server(|_, stream| park(stream)).await;
    let error = failed_negotiate(&silent, Duration::from_millis(300), "no answer").await;
    let text = error.to_string();
    assert!(text.contains("timed out"), "{text}");
    assert!(
        !text.contains("negotiateVersion"),
        "no URL in the text: {text}"
    );
    assert_no_panics();
}

// scenario: any.any.negotiate.not-json
#[tokio::test]
async fn a_negotiate_answer_that_is_not_json_fails_start() {
    watch_panics();
    let server = fake_server(|_, stream| async move {
        respond(
            stream,
            "200 OK",
            "text/html",
            b"<html><body>Welcome</body></html>",
        )
        .await
    })
    .await;
    let error = failed_negotiate(&server, WAIT, "not JSON").await;
    assert_eq!(error.kind(), ErrorKind::Negotiation, "not JSON: {error:?}");
    assert_eq!(
        error.status(),
        None,
        "a 200 answer that is not JSON: {error:?}"
    );
    let message = error.to_string();
    assert!(
        message.starts_with("Invalid negotiation response received: the body is not valid JSON"),
        "{message}"
    );
    assert_no_panics();
}

// scenario: any.any.negotiate.huge
#[tokio::test]
async fn a_huge_negotiate_answer_fails_start_without_reading_it_all() {
    watch_panics();
    // 2 MiB of valid JSON (padded), with a Content-Length; then an endless body without one.
    let sized = fake_server(|_, stream| async move {
        let mut body = " ".repeat(2 * 1024 * 1024);
        body.push_str(&negotiate_answer("WebSockets"));
        respond_json(stream, &body).await
    })
    .await;
    let endless = fake_server(|_, mut stream| async move {
        let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n";
        if stream.write_all(head.as_bytes()).await.is_err() {
            return;
        }
        let chunk = vec![b' '; 64 * 1024];
        while stream.write_all(&chunk).await.is_ok() {}
    })
    .await;
    for (server, what) in [(&sized, "2 MiB answer"), (&endless, "endless answer")] {
        let error = failed_negotiate(server, WAIT, what).await;
        assert_eq!(error.kind(), ErrorKind::Negotiation, "{what}: {error:?}");
        assert_eq!(error.status(), None, "{what}: {error:?}");
        let message = error.to_string();
        assert!(message.starts_with(NEGOTIATE_FAILED), "{what}: {message}");
        assert!(message.contains("1048576 bytes"), "{what}: {message}");
    }
    assert_no_panics();
}

// scenario: any.any.negotiate.no-connection-id
#[tokio::test]
async fn a_negotiate_answer_without_connection_id_fails_start() {
    watch_panics();
    let server = fake_server(|_, stream| async move {
        respond_json(
            stream,
            r#"{"negotiateVersion":1,"connectionToken":"t","availableTransports":[{"transport":"WebSockets","transferFormats":["Text","Binary"]}]}"#,
        )
        .await
    })
    .await;
    let error = failed_negotiate(&server, WAIT, "no connectionId").await;
    assert_eq!(
        error,
        Error::new(
            ErrorKind::Negotiation,
            "Invalid negotiation response received: Missing required property 'connectionId'."
        )
    );
    assert_no_panics();
}

// scenario: any.any.negotiate.legacy-server
#[tokio::test]
async fn a_legacy_asp_net_signalr_negotiate_answer_fails_start_with_the_official_text() {
    watch_panics();
    // What an ASP.NET (not Core) SignalR 2.x server answers.
    let server = fake_server(|_, stream| async move {
        respond_json(
            stream,
            r#"{"Url":"/signalr","ConnectionToken":"X97dw3uxW4NPPggQsYVcNcyQcuz4w2","ConnectionId":"05265228-1e2c-46c5-82a1-6a5bcc3f0143","KeepAliveTimeout":20.0,"DisconnectTimeout":30.0,"ConnectionTimeout":110.0,"TryWebSockets":true,"ProtocolVersion":"1.5","TransportConnectTimeout":5.0,"LongPollDelay":0.0}"#,
        )
        .await
    })
    .await;
    let error = failed_negotiate(&server, WAIT, "legacy server").await;
    assert_eq!(error, Error::new(ErrorKind::Negotiation, LEGACY_SERVER));
    assert_no_panics();
}

// ---------------------------------------------------------------------------------------------
// The transport dropping.

// scenario: {t}.{p}.close.transport-drop
#[tokio::test]
async fn a_transport_dropped_mid_stream_fails_the_stream_and_calls_in_flight() {
    watch_panics();
    let server = test_server().await;
    for (transport, protocol) in COMBINATIONS {
        let name = tag(transport, protocol);
        // The handshake answer and 4 stream items, then the transport goes.
        let url = faulty(&server, "drop_after_messages:5");
        let (connection, mut closes) = connected(builder(&url, transport, protocol), &name).await;
        // An invocation in flight that runs alongside the stream (it waits for its upload).
        let in_flight = endless_upload(&connection);
        sleep(Duration::from_millis(100)).await;
        let mut items = connection
            .stream::<i64>("StreamCount", (1000,))
            .unwrap_or_else(|e| panic!("{name}: the stream did not start: {e}"));
        let mut received = Vec::new();
        let end = within(&name, async {
            loop {
                match items.next().await {
                    Some(Ok(item)) => received.push(item),
                    other => break other,
                }
            }
        })
        .await;
        // Items the server queued before the drop may still arrive, in order, never all.
        assert!(received.len() < 1000, "{name}: {} items", received.len());
        let expected: Vec<i64> = (0..received.len() as i64).collect();
        assert_eq!(received, expected, "{name}");
        let error = match end {
            Some(Err(error)) => error,
            other => panic!("{name}: the stream must end with an error, got {other:?}"),
        };
        let close = next_close(&mut closes, &name).await;
        assert_eq!(
            close.as_ref(),
            Some(&error),
            "{name}: on_close has the error"
        );
        let invoke = within(&name, in_flight).await.unwrap();
        assert_eq!(invoke, Err(error), "{name}: the invocation in flight");
        assert_disconnected(&connection, &name).await;
    }
    assert_no_panics();
}

// scenario: {t}.{p}.close.abort
#[tokio::test]
async fn abort_on_the_server_fails_calls_in_flight() {
    watch_panics();
    let server = test_server().await;
    for (transport, protocol) in COMBINATIONS {
        let name = tag(transport, protocol);
        let url = format!("{}/testhub", server.base_url());
        let (connection, mut closes) = connected(builder(&url, transport, protocol), &name).await;
        let mut pending = connection
            .stream::<String>("InfiniteStream", ())
            .unwrap_or_else(|e| panic!("{name}: the stream did not start: {e}"));
        let in_flight = endless_upload(&connection);
        sleep(Duration::from_millis(100)).await;
        within(&name, connection.send("Abort", ())).await.unwrap();
        let error = next_close(&mut closes, &name)
            .await
            .unwrap_or_else(|| panic!("{name}: a dropped transport is an error"));
        assert_stream_fails_with(&mut pending, &error, &name).await;
        let invoke = within(&name, in_flight).await.unwrap();
        assert_eq!(invoke, Err(error), "{name}: the invocation in flight");
        assert_disconnected(&connection, &name).await;
    }
    assert_no_panics();
}

// ---------------------------------------------------------------------------------------------
// Long Polling status codes.

// scenario: lp.json.handshake.poll-status, lp.msgpack.handshake.poll-status
#[tokio::test]
async fn long_polling_poll_errors_before_the_handshake_answer_fail_start() {
    watch_panics();
    let server = test_server().await;
    for protocol in [HubProtocol::Json, HubProtocol::MessagePack] {
        for (status, expected) in [
            (
                404,
                Error::new(ErrorKind::Transport, "Not Found: Status code '404'").with_status(404),
            ),
            (
                500,
                Error::new(
                    ErrorKind::Transport,
                    "Internal Server Error: Status code '500'",
                )
                .with_status(500),
            ),
            (
                204,
                Error::new(ErrorKind::Handshake, CLOSED_BEFORE_HANDSHAKE),
            ),
        ] {
            let name = format!(
                "{} poll {status}",
                tag(TransportKind::LongPolling, protocol)
            );
            let url = faulty(&server, &format!("poll_status:{status}"));
            let connection = builder(&url, TransportKind::LongPolling, protocol)
                .build()
                .unwrap();
            let mut closes = closes(&connection);
            let error = within(&name, connection.start()).await.unwrap_err();
            assert_eq!(error, expected, "{name}");
            assert_eq!(
                connection.state(),
                HubConnectionState::Disconnected,
                "{name}"
            );
            assert_no_close(&mut closes, &name);
        }
    }
    assert_no_panics();
}

/// A JSON connection started against [`long_polling_server`] whose poll after the first
/// invocation answers `final_status` (DELETE is answered). Keep the server alive.
async fn long_polling_connected(
    final_status: &'static str,
    what: &str,
) -> (FakeServer, HubConnection, Closes) {
    let server = long_polling_server(LongPollingScript {
        final_status: Some(final_status),
        answer_delete: true,
    })
    .await;
    let url = server.hub_url();
    let (connection, closes) = connected(
        builder(&url, TransportKind::LongPolling, HubProtocol::Json),
        what,
    )
    .await;
    (server, connection, closes)
}

// scenario: lp.json.close.poll-error
#[tokio::test]
async fn long_polling_poll_errors_close_the_connection_with_the_status() {
    watch_panics();
    for (status, code, text) in [
        ("404 Not Found", 404, "Not Found: Status code '404'"),
        (
            "500 Internal Server Error",
            500,
            "Internal Server Error: Status code '500'",
        ),
    ] {
        let (_server, connection, mut closes) = long_polling_connected(status, status).await;
        let error = within(status, connection.invoke::<String>("Echo", ("x",)))
            .await
            .unwrap_err();
        assert_eq!(
            error,
            Error::new(ErrorKind::Transport, text).with_status(code),
            "{status}"
        );
        assert_eq!(
            next_close(&mut closes, status).await,
            Some(error),
            "{status}"
        );
        assert_disconnected(&connection, status).await;
    }
    assert_no_panics();
}

// scenario: lp.json.close.poll-204
#[tokio::test]
async fn long_polling_204_closes_the_connection_cleanly() {
    watch_panics();
    let (_server, connection, mut closes) = long_polling_connected("204 No Content", "204").await;
    assert_clean_close_fails_the_pending_invoke(&connection, &mut closes, "204").await;
    assert_no_panics();
}

// scenario: ws.json.close.server-close-1000
#[tokio::test]
async fn a_websocket_closed_with_1000_closes_the_connection_cleanly() {
    watch_panics();
    let server = websocket_server(|mut ws, protocol| async move {
        if ws.send(frame(protocol, b"{}\x1e".to_vec())).await.is_err() {
            return;
        }
        // At the first invocation: a normal closure, no Close message, no Completion.
        let _ = next_messages(&mut ws, protocol).await;
        let normal = CloseFrame {
            code: CloseCode::Normal,
            reason: "".into(),
        };
        let _ = ws.close(Some(normal)).await;
        drain(ws).await;
    })
    .await;
    let (connection, mut closes) = connected(
        builder(
            &server.hub_url(),
            TransportKind::WebSockets,
            HubProtocol::Json,
        ),
        "1000",
    )
    .await;
    assert_clean_close_fails_the_pending_invoke(&connection, &mut closes, "1000").await;
    assert_no_panics();
}

// ---------------------------------------------------------------------------------------------
// A silent server.

// scenario: ws.json.timeout.server-timeout, ws.msgpack.timeout.server-timeout, sse.json.timeout.server-timeout
#[tokio::test]
async fn a_silent_server_times_out_and_fails_pending_calls() {
    watch_panics();
    let server = test_server().await;
    for (transport, protocol) in [
        (TransportKind::WebSockets, HubProtocol::Json),
        (TransportKind::WebSockets, HubProtocol::MessagePack),
        (TransportKind::ServerSentEvents, HubProtocol::Json),
    ] {
        let name = tag(transport, protocol);
        let (connection, mut closes) = connected(
            builder(&faulty(&server, "no_pings"), transport, protocol)
                .with_server_timeout(Duration::from_millis(500)),
            &name,
        )
        .await;
        let began = Instant::now();
        // The server sleeps 5 s before it answers: nothing arrives meanwhile.
        let error = within(&name, connection.invoke::<()>("StallFor", (5000,)))
            .await
            .unwrap_err();
        assert!(began.elapsed() < Duration::from_secs(3), "{name}");
        let expected = Error::new(ErrorKind::Timeout, SERVER_TIMEOUT);
        assert_eq!(error, expected, "{name}: the pending invoke");
        assert_eq!(
            next_close(&mut closes, &name).await,
            Some(expected),
            "{name}"
        );
        assert_disconnected(&connection, &name).await;
    }
    assert_no_panics();
}

// ---------------------------------------------------------------------------------------------
// stop() while the server does not answer.

/// stop() finishes within `bound_secs` seconds, fails `in_flight` with the official text and
/// closes cleanly.
async fn assert_stop_fails_the_call_in_flight<T: std::fmt::Debug + PartialEq>(
    connection: &HubConnection,
    closes: &mut Closes,
    in_flight: tokio::task::JoinHandle<Result<T, Error>>,
    bound_secs: u64,
    name: &str,
) {
    let began = Instant::now();
    within(format!("{name}: stop"), connection.stop())
        .await
        .unwrap();
    assert!(
        began.elapsed() < Duration::from_secs(bound_secs),
        "{name}: stop took {:?}",
        began.elapsed()
    );
    let invoke = within(name, in_flight).await.unwrap();
    assert_eq!(
        invoke,
        Err(Error::new(ErrorKind::ConnectionClosed, CONNECTION_CLOSED)),
        "{name}"
    );
    assert_eq!(next_close(closes, name).await, None, "{name}");
    assert_disconnected(connection, name).await;
}

// scenario: {t}.{p}.stop.unanswered-invoke
#[tokio::test]
async fn stop_completes_while_an_invoke_is_unanswered_and_fails_it() {
    watch_panics();
    let server = test_server().await;
    for (transport, protocol) in COMBINATIONS {
        let name = tag(transport, protocol);
        let url = format!("{}/testhub", server.base_url());
        let (connection, mut closes) = connected(builder(&url, transport, protocol), &name).await;
        let caller = connection.clone();
        let in_flight =
            tokio::spawn(async move { caller.invoke::<()>("StallFor", (60_000,)).await });
        sleep(Duration::from_millis(100)).await;
        assert_stop_fails_the_call_in_flight(&connection, &mut closes, in_flight, 3, &name).await;
    }
    assert_no_panics();
}

// scenario: ws.json.stop.unresponsive-server, lp.json.stop.unresponsive-server
#[tokio::test]
async fn stop_completes_against_a_server_that_never_answers_anything() {
    watch_panics();
    // WebSockets: after the handshake answer the server neither reads nor writes nor closes.
    let ws_server = websocket_server(|mut ws, protocol| async move {
        if ws.send(frame(protocol, b"{}\x1e".to_vec())).await.is_ok() {
            park(ws).await;
        }
    })
    .await;
    // Long Polling: polls after the invocation and the DELETE are never answered.
    let lp_server = long_polling_server(LongPollingScript {
        final_status: None,
        answer_delete: false,
    })
    .await;
    for (server, transport, name) in [
        (&ws_server, TransportKind::WebSockets, "ws"),
        (&lp_server, TransportKind::LongPolling, "lp"),
    ] {
        let (connection, mut closes) = connected(
            builder(&server.hub_url(), transport, HubProtocol::Json)
                .with_http_timeout(Duration::from_secs(1)),
            name,
        )
        .await;
        let caller = connection.clone();
        let in_flight = tokio::spawn(async move { caller.invoke::<String>("Echo", ("x",)).await });
        sleep(Duration::from_millis(200)).await;
        assert_stop_fails_the_call_in_flight(&connection, &mut closes, in_flight, 7, name).await;
    }
    assert_no_panics();
}

// ---------------------------------------------------------------------------------------------
// Server-Sent Events: a raw event stream.

/// A server offering only Server-Sent Events: the event stream begins with the handshake
/// answer, then `events` writes what it likes to the socket; POSTs are answered 200 and
/// otherwise ignored.
async fn sse_server<F, Fut>(events: F) -> FakeServer
where
    F: Fn(TcpStream) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let events = Arc::new(events);
    fake_server(move |request, mut stream| {
        let events = events.clone();
        async move {
            if request.is_negotiate() {
                return respond_json(stream, &negotiate_answer("ServerSentEvents")).await;
            }
            match request.method.as_str() {
                "GET" => {
                    let head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nConnection: close\r\n\r\n";
                    if stream.write_all(head.as_bytes()).await.is_err()
                        || stream.write_all(b"data: {}\x1e\n\n").await.is_err()
                    {
                        return;
                    }
                    events(stream).await;
                }
                "POST" => respond(stream, "200 OK", "text/plain", b"").await,
                _ => respond(stream, "202 Accepted", "text/plain", b"").await,
            }
        }
    })
    .await
}

/// A `Message(text)` invocation as an SSE event with the given line ending.
fn sse_message_event(text: &[u8], line_end: &[u8]) -> Vec<u8> {
    let mut event = b"data: {\"type\":1,\"target\":\"Message\",\"arguments\":[\"".to_vec();
    event.extend_from_slice(text);
    event.extend_from_slice(b"\"]}\x1e");
    event.extend_from_slice(line_end);
    event.extend_from_slice(line_end);
    event
}

// scenario: sse.json.bad-input.invalid-utf8
#[tokio::test]
async fn sse_invalid_utf8_is_decoded_as_u_fffd_and_later_events_still_arrive() {
    watch_panics();
    let server = sse_server(|mut stream| async move {
        let _ = stream
            .write_all(&sse_message_event(b"bad \xff\xfe!", b"\n"))
            .await;
        let _ = stream
            .write_all(&sse_message_event(b"after", b"\r\n"))
            .await;
        loop {
            sleep(Duration::from_millis(50)).await;
            if stream
                .write_all(b"data: {\"type\":6}\x1e\n\n")
                .await
                .is_err()
            {
                return;
            }
        }
    })
    .await;
    let name = "sse.json invalid UTF-8";
    let connection = builder(
        &server.hub_url(),
        TransportKind::ServerSentEvents,
        HubProtocol::Json,
    )
    .with_server_timeout(Duration::from_secs(2))
    .build()
    .unwrap();
    let mut calls = calls(&connection, "Message");
    let mut closes = closes(&connection);
    start(&connection, name).await;
    assert_eq!(
        within(name, calls.recv()).await.as_deref(),
        Some("bad \u{fffd}\u{fffd}!")
    );
    assert_eq!(within(name, calls.recv()).await.as_deref(), Some("after"));
    // The pings keep it alive past the server timeout.
    sleep(Duration::from_secs(3)).await;
    assert_no_close(&mut closes, name);
    assert_eq!(connection.state(), HubConnectionState::Connected);
    within(name, connection.stop()).await.unwrap();
    assert_no_panics();
}

// scenario: sse.json.framing.bare-cr
#[tokio::test]
async fn sse_an_event_ended_by_a_bare_cr_is_delivered_at_once() {
    watch_panics();
    let server = sse_server(|mut stream| async move {
        let _ = stream.write_all(&sse_message_event(b"cr", b"\r")).await;
        // Then nothing: the event must not wait for more bytes.
        park(stream).await;
    })
    .await;
    let name = "sse.json bare CR";
    let connection = builder(
        &server.hub_url(),
        TransportKind::ServerSentEvents,
        HubProtocol::Json,
    )
    .build()
    .unwrap();
    let mut calls = calls(&connection, "Message");
    start(&connection, name).await;
    let called = timeout(Duration::from_secs(1), calls.recv())
        .await
        .expect("delivered within 1 s");
    assert_eq!(called.as_deref(), Some("cr"));
    assert_eq!(connection.state(), HubConnectionState::Connected);
    within(name, connection.stop()).await.unwrap();
    assert_no_panics();
}

// scenario: sse.json.bad-input.endless-event
#[tokio::test]
async fn sse_an_endless_event_fails_while_it_is_read() {
    watch_panics();
    const MAX: usize = 64 * 1024;
    let written = Arc::new(AtomicUsize::new(0));
    let counter = written.clone();
    let server = sse_server(move |mut stream| {
        let counter = counter.clone();
        async move {
            let _ = stream.write_all(b"data: ").await;
            let filler = vec![b'x'; 16 * 1024];
            while stream.write_all(&filler).await.is_ok() {
                counter.fetch_add(filler.len(), Ordering::SeqCst);
                sleep(Duration::from_millis(5)).await;
            }
        }
    })
    .await;
    let name = "sse.json endless event";
    let (connection, mut closes) = connected(
        builder(
            &server.hub_url(),
            TransportKind::ServerSentEvents,
            HubProtocol::Json,
        )
        .with_max_message_size(MAX),
        name,
    )
    .await;
    let started = Instant::now();
    let error = next_close(&mut closes, name).await;
    assert!(started.elapsed() < Duration::from_secs(3), "{name}");
    let (size, max) = message_too_large(error, name);
    assert_eq!(max, MAX);
    assert!(
        size > 2 * MAX && size <= 2 * MAX + 64 * 1024 + 16 * 1024,
        "{size}"
    );
    assert!(written.load(Ordering::SeqCst) < 4 * MAX + 1024 * 1024);
    assert_disconnected(&connection, name).await;
    assert_no_panics();
}

// scenario: sse.json.framing.large-event
#[tokio::test]
async fn sse_a_large_event_is_parsed_in_linear_time() {
    watch_panics();
    const SIZE: usize = 8 << 20;
    let server = sse_server(|mut stream| async move {
        // An event of another type (the client ignores it, so no JSON is parsed), in lines of
        // 64 KiB written in chunks of 16 KiB, then a message.
        let mut event = b"event: other\n".to_vec();
        let line = format!("data: {}\n", "y".repeat(64 * 1024));
        while event.len() < SIZE {
            event.extend_from_slice(line.as_bytes());
        }
        event.push(b'\n');
        for chunk in event.chunks(16 * 1024) {
            if stream.write_all(chunk).await.is_err() {
                return;
            }
        }
        let _ = stream.write_all(&sse_message_event(b"done", b"\n")).await;
        park(stream).await;
    })
    .await;
    let name = "sse.json 8 MB event";
    let connection = builder(
        &server.hub_url(),
        TransportKind::ServerSentEvents,
        HubProtocol::Json,
    )
    .with_max_message_size(SIZE)
    .build()
    .unwrap();
    let mut calls = calls(&connection, "Message");
    let started = Instant::now();
    start(&connection, name).await;
    assert_eq!(within(name, calls.recv()).await.as_deref(), Some("done"));
    // Quadratic parsing took seconds of CPU for this in a release build.
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    within(name, connection.stop()).await.unwrap();
    assert_no_panics();
}

// ---------------------------------------------------------------------------------------------
// Long Polling: bodies and lost causes.

// scenario: lp.json.bad-input.endless-body
#[tokio::test]
async fn long_polling_an_endless_body_fails_once_over_the_limit() {
    watch_panics();
    const MAX: usize = 64 * 1024;
    let polls = Arc::new(AtomicUsize::new(0));
    let server = fake_server(move |request, mut stream| {
        let polls = polls.clone();
        async move {
            match request.method.as_str() {
                "POST" if request.is_negotiate() => {
                    respond_json(stream, &negotiate_answer("LongPolling")).await
                }
                "GET" => match polls.fetch_add(1, Ordering::SeqCst) {
                    0 => respond(stream, "200 OK", "text/plain", b"").await,
                    1 => respond(stream, "200 OK", "text/plain", b"{}\x1e").await,
                    _ => {
                        // No Content-Length: the body ends with the connection, never.
                        let head = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n";
                        if stream.write_all(head.as_bytes()).await.is_err() {
                            return;
                        }
                        let filler = vec![b'x'; 16 * 1024];
                        while stream.write_all(&filler).await.is_ok() {
                            sleep(Duration::from_millis(5)).await;
                        }
                    }
                },
                "DELETE" => respond(stream, "202 Accepted", "text/plain", b"").await,
                _ => respond(stream, "200 OK", "text/plain", b"").await,
            }
        }
    })
    .await;
    let name = "lp.json endless body";
    let (connection, mut closes) = connected(
        builder(
            &server.hub_url(),
            TransportKind::LongPolling,
            HubProtocol::Json,
        )
        .with_max_message_size(MAX),
        name,
    )
    .await;
    let started = Instant::now();
    let error = next_close(&mut closes, name).await;
    assert!(started.elapsed() < Duration::from_secs(3), "{name}");
    let (size, max) = message_too_large(error, name);
    assert_eq!(max, MAX);
    assert!(size > 2 * MAX && size <= 2 * MAX + 128 * 1024, "{size}");
    assert_disconnected(&connection, name).await;
    assert_no_panics();
}

// scenario: lp.json.handshake.poll-404-during-handshake
#[tokio::test]
async fn long_polling_a_404_poll_during_the_handshake_fails_start_with_its_cause() {
    watch_panics();
    let polls = Arc::new(AtomicUsize::new(0));
    let server = fake_server(move |request, stream| {
        let polls = polls.clone();
        async move {
            match request.method.as_str() {
                "POST" if request.is_negotiate() => {
                    respond_json(stream, &negotiate_answer("LongPolling")).await
                }
                "GET" => match polls.fetch_add(1, Ordering::SeqCst) {
                    0 => respond(stream, "200 OK", "text/plain", b"").await,
                    _ => {
                        sleep(Duration::from_millis(200)).await;
                        respond(
                            stream,
                            "404 Not Found",
                            "text/plain",
                            b"No Connection with that ID",
                        )
                        .await
                    }
                },
                // The handshake POST never gets an answer.
                "POST" => park(stream).await,
                _ => respond(stream, "404 Not Found", "text/plain", b"").await,
            }
        }
    })
    .await;
    let name = "lp.json 404 during the handshake";
    let connection = builder(
        &server.hub_url(),
        TransportKind::LongPolling,
        HubProtocol::Json,
    )
    .build()
    .unwrap();
    let mut closes = closes(&connection);
    let started = Instant::now();
    let error = within(name, connection.start()).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(3), "{name}");
    assert_eq!(
        error,
        Error::new(
            ErrorKind::Transport,
            "No Connection with that ID: Status code '404'"
        )
        .with_status(404)
    );
    assert_eq!(error.status(), Some(404));
    assert_eq!(connection.state(), HubConnectionState::Disconnected);
    sleep(Duration::from_millis(50)).await;
    assert_no_close(&mut closes, name);
    assert_no_panics();
}

// ---------------------------------------------------------------------------------------------
// Handles dropped without stop().

// scenario: ws.json.stop.drop-without-stop
#[tokio::test]
async fn dropping_every_handle_without_stop_closes_the_connection() {
    watch_panics();
    // What the server saw: whether a hub Close message came, and the WebSocket close code.
    let (seen, mut seen_rx) = mpsc::unbounded_channel();
    let server = websocket_server(move |mut ws, protocol| {
        let seen = seen.clone();
        async move {
            if ws.send(Message::text("{}\x1e")).await.is_err() {
                return;
            }
            let mut close_message = false;
            let code = loop {
                match timeout(WAIT, ws.next()).await {
                    Ok(Some(Ok(Message::Close(frame)))) => break frame.map(|f| u16::from(f.code)),
                    Ok(Some(Ok(Message::Text(text)))) => {
                        let messages = protocol
                            .parse_messages(text.as_bytes(), 1 << 20)
                            .unwrap_or_default();
                        close_message |= messages.iter().any(|m| matches!(m, HubMessage::Close(_)));
                    }
                    Ok(Some(Ok(_))) => {}
                    _ => break None,
                }
            };
            let _ = seen.send((close_message, code));
        }
    })
    .await;
    let name = "ws.json drop without stop";
    let (connection, mut closes) = connected(
        builder(
            &server.hub_url(),
            TransportKind::WebSockets,
            HubProtocol::Json,
        ),
        name,
    )
    .await;
    // A clone keeps it running.
    let clone = connection.clone();
    drop(connection);
    sleep(Duration::from_millis(300)).await;
    assert_no_close(&mut closes, name);
    assert_eq!(clone.state(), HubConnectionState::Connected);
    // The last handle stops it in the background, as stop() would.
    let started = Instant::now();
    drop(clone);
    assert_eq!(
        next_close(&mut closes, name).await,
        None,
        "{name}: a clean close"
    );
    assert!(started.elapsed() < Duration::from_secs(2), "{name}");
    assert_eq!(
        within(name, seen_rx.recv()).await,
        Some((true, Some(1000))),
        "{name}: the server got a Close message, then close 1000"
    );
    assert_no_panics();
}

// scenario: lp.json.send.refused-post, lp.msgpack.send.refused-post, sse.json.send.refused-post
#[tokio::test]
async fn a_refused_send_post_fails_the_call_it_carried_and_the_connection_lives_on() {
    watch_panics();
    let server = test_server().await;
    // The first POST (the handshake) is served; every later one answers 500.
    let url = faulty(&server, "send_status:500,send_status_after:1");
    let refused = Error::new(
        ErrorKind::Transport,
        "Internal Server Error: Status code '500'",
    )
    .with_status(500);
    for (transport, protocol) in [
        (TransportKind::ServerSentEvents, HubProtocol::Json),
        (TransportKind::LongPolling, HubProtocol::Json),
        (TransportKind::LongPolling, HubProtocol::MessagePack),
    ] {
        let name = tag(transport, protocol);
        let (connection, mut closes) = connected(builder(&url, transport, protocol), &name).await;
        let began = Instant::now();
        let invoke = within(&name, connection.invoke::<String>("Echo", ("x",))).await;
        assert_eq!(invoke.unwrap_err(), refused, "{name}: invoke");
        let mut items = connection.stream::<String>("InfiniteStream", ()).unwrap();
        assert_stream_fails_with(&mut items, &refused, &format!("{name}: stream")).await;
        let send = within(&name, connection.send("Echo", ("x",))).await;
        assert_eq!(send.unwrap_err(), refused, "{name}: send");
        assert!(
            began.elapsed() < Duration::from_secs(3),
            "{name}: the failures took {:?}",
            began.elapsed()
        );
        assert_eq!(
            connection.state(),
            HubConnectionState::Connected,
            "{name}: a refused POST does not end the connection"
        );
        assert_no_close(&mut closes, &name);
        within(&name, connection.stop()).await.unwrap();
    }
    assert_no_panics();
}
