//! Helpers shared by the transports: the POST send queue of the HTTP transports (the official
//! `TransportSendQueue`), a set-once flag for stopping tasks, and HTTP error texts.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use reqwest::header::{HeaderName, HeaderValue, CONTENT_TYPE};
use reqwest::{Method, StatusCode};
use tokio::sync::{mpsc, watch};
use url::Url;

use super::OutgoingFrame;
use crate::access_token::{is_unauthorized_response, AccessToken};
use crate::error::ErrorKind;
use crate::error::{Error, Result};
use crate::http::reqwest_failure;
use crate::http::HttpClient;

/// The official text for sends that were still waiting when the transport stopped.
pub(crate) const CONNECTION_STOPPED: &str = "Connection stopped.";

/// Frames waiting behind an in-flight POST are joined into one body up to this size; what
/// does not fit goes in the next POST. (The official queue has no cap. Some servers limit the
/// whole POST body to their maximum message size, 32 KiB by default, so a cap at that size
/// keeps a burst of small messages from being refused; one frame larger than this is still
/// sent, alone.)
pub(crate) const MAX_BATCH_BYTES: usize = 32 * 1024;

/// A flag that is set once and can be awaited by any number of tasks.
#[derive(Clone, Debug)]
pub(crate) struct Flag(Arc<watch::Sender<bool>>);

impl Flag {
    pub(crate) fn new() -> Self {
        Flag(Arc::new(watch::channel(false).0))
    }

    /// Sets the flag; waiters wake up. Setting it again does nothing.
    pub(crate) fn set(&self) {
        self.0.send_replace(true);
    }

    /// Resolves once the flag is set (at once if it is already).
    pub(crate) async fn wait(&self) {
        let mut receiver = self.0.subscribe();
        // The sender lives in `self`, so this only returns once the flag is set.
        let _ = receiver.wait_for(|set| *set).await;
    }
}

/// The text of the official `HttpError`: `<status text>: Status code '<code>'`.
pub(crate) fn http_status_error(status: StatusCode) -> String {
    format!(
        "{}: Status code '{}'",
        status.canonical_reason().unwrap_or(""),
        status.as_u16()
    )
}

/// A body read up to a limit.
pub(crate) enum Body {
    Whole(Bytes),
    /// Longer than the limit: this many bytes had arrived when reading stopped.
    TooLarge(usize),
}

/// Reads `response`'s body chunk by chunk, stopping as soon as it is longer than `limit`.
pub(crate) async fn read_body(response: reqwest::Response, limit: usize) -> reqwest::Result<Body> {
    use futures_util::StreamExt;
    if response
        .content_length()
        .is_some_and(|length| length > limit as u64)
    {
        return Ok(Body::TooLarge(
            response.content_length().unwrap_or_default() as usize,
        ));
    }
    let mut chunks = response.bytes_stream();
    let mut body = bytes::BytesMut::new();
    let mut only: Option<Bytes> = None;
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk?;
        let size = body.len() + only.as_ref().map_or(0, Bytes::len) + chunk.len();
        if size > limit {
            return Ok(Body::TooLarge(size));
        }
        // The usual body is one chunk: kept as it is, without a copy.
        match only.take() {
            None if body.is_empty() => only = Some(chunk),
            first => {
                if let Some(first) = first {
                    body.extend_from_slice(&first);
                }
                body.extend_from_slice(&chunk);
            }
        }
    }
    Ok(Body::Whole(only.unwrap_or_else(|| body.freeze())))
}

/// How much of a refusal's body becomes its error text.
const MAX_ERROR_BODY: usize = 1024;

/// The error of a refused request, as the official `HttpError`: the answer's text (ASP.NET
/// Core answers an unknown connection with 404 "No Connection with that ID"), or the status's
/// reason when there is none, then `: Status code '<code>'`. At most [`MAX_ERROR_BODY`] bytes
/// of the answer are read.
pub(crate) async fn refusal(response: reqwest::Response) -> Error {
    let status = response.status();
    let body = match read_body(response, MAX_ERROR_BODY).await {
        Ok(Body::Whole(body)) => String::from_utf8_lossy(&body).trim().to_owned(),
        _ => String::new(),
    };
    let text = if body.is_empty() {
        http_status_error(status)
    } else {
        format!("{body}: Status code '{}'", status.as_u16())
    };
    Error::transport(text).with_status(status.as_u16())
}

/// Sends `builder`'s request with `headers` set over whatever the user's headers said (the
/// transport's `Accept` and `Content-Type` are protocol, not preference).
pub(crate) async fn send_with_headers(
    builder: reqwest::RequestBuilder,
    headers: &[(HeaderName, &'static str)],
) -> reqwest::Result<reqwest::Response> {
    let (client, request) = builder.build_split();
    let mut request = request?;
    for (name, value) in headers {
        request
            .headers_mut()
            .insert(name.clone(), HeaderValue::from_static(value));
    }
    client.execute(request).await
}

/// Where the POSTs of an HTTP transport go.
pub(crate) struct PostTarget {
    pub http: HttpClient,
    /// The connect URL (no `access_token` query: the token travels in the header).
    pub url: Url,
    pub access_token: AccessToken,
    pub content_type: &'static str,
}

impl PostTarget {
    /// One POST; success is a 2xx answer, like the official HTTP clients.
    async fn post(&self, body: Bytes) -> Result<()> {
        let response = self
            .access_token
            .authorized(
                ErrorKind::Transport,
                |token| {
                    let builder = self
                        .http
                        .request(Method::POST, &self.url, token.as_deref())
                        .timeout(self.http.timeout)
                        .body(body.clone());
                    let content_type = self.content_type;
                    async move { send_with_headers(builder, &[(CONTENT_TYPE, content_type)]).await }
                },
                is_unauthorized_response,
            )
            .await?
            .map_err(|e| reqwest_failure(e, ErrorKind::Transport, str::to_owned))?;
        let status = response.status();
        if status.is_success() {
            // Read the (small, bounded) answer so the connection can be reused.
            let _ = read_body(response, MAX_ERROR_BODY).await;
            Ok(())
        } else {
            tracing::debug!(status = status.as_u16(), "send POST refused");
            Err(refusal(response).await)
        }
    }
}

/// Why the send queue ended.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum QueueEnd {
    /// The link's sender was dropped and every queued frame was sent: stop the transport.
    Stopped,
    /// The transport closed (`closed` was set); waiting frames failed with "Connection stopped.".
    TransportClosed,
}

/// Sends the link's frames as POSTs, one at a time: frames that arrive while a POST is in
/// flight are sent together as one POST once it returns, their bytes concatenated in order.
/// Each frame's `written` gets the result of the POST that carried it.
pub(crate) async fn run_send_queue(
    target: PostTarget,
    mut frames: mpsc::Receiver<OutgoingFrame>,
    closed: Flag,
) -> QueueEnd {
    let mut carried: Option<OutgoingFrame> = None;
    loop {
        let first = match carried.take() {
            Some(frame) => frame,
            None => {
                tokio::select! {
                    biased;
                    _ = closed.wait() => break,
                    frame = frames.recv() => match frame {
                        Some(frame) => frame,
                        None => return QueueEnd::Stopped,
                    },
                }
            }
        };
        let mut size = first.data.len();
        let mut batch = vec![first];
        while size < MAX_BATCH_BYTES {
            match frames.try_recv() {
                Ok(frame) if size + frame.data.len() > MAX_BATCH_BYTES => {
                    carried = Some(frame);
                    break;
                }
                Ok(frame) => {
                    size += frame.data.len();
                    batch.push(frame);
                }
                Err(_) => break,
            }
        }
        let body = if batch.len() == 1 {
            batch[0].data.clone()
        } else {
            let mut body = BytesMut::with_capacity(size);
            for frame in &batch {
                body.extend_from_slice(&frame.data);
            }
            body.freeze()
        };
        let result = tokio::select! {
            biased;
            _ = closed.wait() => Err(Error::transport(CONNECTION_STOPPED)),
            result = target.post(body) => result,
        };
        for frame in batch {
            if let Some(written) = frame.written {
                written.send(result.clone());
            }
        }
    }
    // The transport closed: fail what waits, and make further sends fail at once.
    let stopped = || Err(Error::transport(CONNECTION_STOPPED));
    if let Some(frame) = carried {
        if let Some(written) = frame.written {
            written.send(stopped());
        }
    }
    frames.close();
    while let Some(frame) = frames.recv().await {
        if let Some(written) = frame.written {
            written.send(stopped());
        }
    }
    QueueEnd::TransportClosed
}

/// What the transports' tests share: the third-party Go server and a tiny JSON hub client.
#[cfg(test)]
pub(crate) mod testing {
    use std::io::{BufRead, BufReader};
    use std::path::PathBuf;
    use std::process::{Child, Command, Stdio};
    use std::sync::OnceLock;
    use std::time::Duration;

    use bytes::Bytes;
    use serde_json::Value;
    use tokio::sync::oneshot;
    use url::Url;

    use crate::error::{Error, Result};
    use crate::http::{HttpClient, HttpOptions};
    use crate::protocol::negotiate::connect_url;
    use crate::protocol::transports::TransferFormat;
    use crate::transport::{
        ConnectRequest, OutgoingFrame, Transport, TransportEvent, TransportLink,
    };

    /// How long a test waits for any one thing.
    pub(crate) const WAIT: Duration = Duration::from_secs(10);

    /// The Go server (`tests/go-server`, philippseith/signalr), built once per test run.
    pub(crate) struct GoServer {
        child: Child,
        pub(crate) base_url: String,
    }

    /// Builds the Go server once per version of its sources: the binary's name carries a hash
    /// of them, and it is built under a temporary name and renamed into place, so parallel
    /// test runs neither race nor leave a binary per run behind.
    fn go_server_binary() -> &'static PathBuf {
        static BINARY: OnceLock<PathBuf> = OnceLock::new();
        BINARY.get_or_init(|| {
            use std::hash::{Hash, Hasher};
            let source = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/go-server");
            let mut hasher = std::collections::hash_map::DefaultHasher::new();
            for file in ["main.go", "go.mod", "go.sum"] {
                std::fs::read(source.join(file))
                    .unwrap_or_else(|e| panic!("reading {}: {e}", source.join(file).display()))
                    .hash(&mut hasher);
            }
            let binary =
                std::env::temp_dir().join(format!("hublink-goserver-{:016x}", hasher.finish()));
            if binary.exists() {
                return binary;
            }
            let building = binary.with_extension(format!("{}.tmp", std::process::id()));
            let output = Command::new("go")
                .arg("build")
                .arg("-o")
                .arg(&building)
                .arg(".")
                .current_dir(&source)
                .output()
                .unwrap_or_else(|e| {
                    panic!(
                        "these tests need the Go toolchain (Go >= 1.25) to build the Go test \
                         server in {}, and running `go` failed: {e}",
                        source.display()
                    )
                });
            assert!(
                output.status.success(),
                "building the Go test server failed:\n{}",
                String::from_utf8_lossy(&output.stderr)
            );
            std::fs::rename(&building, &binary).expect("the built Go server moves into place");
            binary
        })
    }

    impl GoServer {
        /// Starts a server with these extra flags and waits for the URL it prints.
        pub(crate) fn start(flags: &[&str]) -> GoServer {
            let mut child = Command::new(go_server_binary())
                .args(["-log", "none"])
                .args(flags)
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .expect("the Go test server starts");
            let mut line = String::new();
            BufReader::new(child.stdout.take().expect("stdout is piped"))
                .read_line(&mut line)
                .expect("the Go test server prints its URL");
            let base_url = line.trim().to_owned();
            assert!(
                base_url.starts_with("http://"),
                "the Go test server printed {line:?}"
            );
            GoServer { child, base_url }
        }
    }

    impl Drop for GoServer {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    pub(crate) fn http_client(headers: &[(&str, &str)]) -> HttpClient {
        let headers = headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        let options = HttpOptions::new(headers, Vec::new(), crate::DEFAULT_HTTP_TIMEOUT)
            .expect("valid headers");
        let url = Url::parse("http://127.0.0.1/").expect("a URL");
        HttpClient::new(&options, &url).expect("an HTTP client")
    }

    /// POSTs `<hub>/negotiate?negotiateVersion=1` with `http` (so its cookies land in the jar)
    /// and returns the connect URL `<hub>?id=<connectionToken>`.
    pub(crate) async fn negotiate(http: &HttpClient, hub_url: &str, token: Option<&str>) -> Url {
        let hub = Url::parse(hub_url).expect("a hub URL");
        let mut negotiate = hub.clone();
        negotiate.set_path(&format!("{}/negotiate", hub.path()));
        negotiate
            .query_pairs_mut()
            .append_pair("negotiateVersion", "1");
        let response = http
            .request(reqwest::Method::POST, &negotiate, token)
            .send()
            .await
            .expect("negotiate answers");
        assert_eq!(response.status(), 200, "negotiate status");
        let body = response.bytes().await.expect("a negotiate answer");
        let body: Value = serde_json::from_slice(&body).expect("a JSON negotiate answer");
        let id = body["connectionToken"]
            .as_str()
            .expect("a connectionToken")
            .to_owned();
        connect_url(&hub, Some(&id))
    }

    /// A connected transport and a minimal JSON-protocol hub client on top of it.
    pub(crate) struct Peer {
        pub(crate) link: TransportLink,
        buffer: Vec<u8>,
        next_id: u64,
    }

    impl Peer {
        pub(crate) async fn connect(
            transport: &dyn Transport,
            http: &HttpClient,
            url: Url,
            format: TransferFormat,
            token: Option<&str>,
        ) -> Result<Peer> {
            let request = ConnectRequest {
                url,
                format,
                access_token: crate::access_token::AccessToken::fixed(token.map(str::to_owned)),
                http: http.clone(),
                max_message_size: crate::protocol::DEFAULT_MAX_MESSAGE_SIZE,
            };
            let link = tokio::time::timeout(WAIT, transport.connect(request))
                .await
                .expect("connect finishes")?;
            Ok(Peer {
                link,
                buffer: Vec::new(),
                next_id: 0,
            })
        }

        /// Queues a frame; the receiver tells when it was written.
        pub(crate) async fn queue(
            &mut self,
            data: impl Into<Bytes>,
        ) -> oneshot::Receiver<Result<()>> {
            let (written, done) = oneshot::channel();
            self.link
                .outgoing
                .send(OutgoingFrame {
                    data: data.into(),
                    written: Some(written.into()),
                })
                .await
                .expect("the transport takes frames");
            done
        }

        /// Sends a frame and waits until it was written.
        pub(crate) async fn send(&mut self, data: impl Into<Bytes>) -> Result<()> {
            let done = self.queue(data).await;
            tokio::time::timeout(WAIT, done)
                .await
                .expect("the frame is written in time")
                .expect("the transport answers every frame")
        }

        /// Stops the transport the way the hub driver does: by dropping the link's sender.
        pub(crate) fn stop(&mut self) {
            self.link.outgoing = tokio::sync::mpsc::channel(1).0.into();
        }

        /// Asserts that no event follows (`Closed` was the last one).
        pub(crate) async fn assert_ended(&mut self) {
            let next = tokio::time::timeout(WAIT, self.link.incoming.recv())
                .await
                .expect("the event channel ends");
            assert!(next.is_none(), "an event after Closed: {next:?}");
        }

        /// The next transport event.
        pub(crate) async fn event(&mut self) -> Option<TransportEvent> {
            tokio::time::timeout(WAIT, self.link.incoming.recv())
                .await
                .expect("an event in time")
        }

        /// The next raw transport message (panics on `Closed`).
        pub(crate) async fn message(&mut self) -> Bytes {
            match self.event().await {
                Some(TransportEvent::Message(data)) => data,
                other => panic!("expected a message, got {other:?}"),
            }
        }

        /// Waits for `Closed`, dropping messages on the way.
        pub(crate) async fn closed(&mut self) -> Option<Error> {
            loop {
                match self.event().await {
                    Some(TransportEvent::Message(_)) => continue,
                    Some(TransportEvent::Closed(reason)) => return reason,
                    None => panic!("the transport ended without Closed"),
                }
            }
        }

        /// The next JSON hub message (record-separated), reading transport messages as needed.
        pub(crate) async fn json(&mut self) -> Value {
            loop {
                if let Some(end) = self.buffer.iter().position(|&b| b == 0x1e) {
                    let record: Vec<u8> = self.buffer.drain(..=end).collect();
                    return serde_json::from_slice(&record[..end]).expect("a JSON hub message");
                }
                let data = self.message().await;
                self.buffer.extend_from_slice(&data);
            }
        }

        /// The JSON handshake; expects `{}`.
        pub(crate) async fn handshake(&mut self) {
            self.send(&b"{\"protocol\":\"json\",\"version\":1}\x1e"[..])
                .await
                .expect("the handshake is written");
            assert_eq!(self.json().await, serde_json::json!({}));
        }

        /// The text of an invocation of `target`, with the next invocation id.
        pub(crate) fn invocation(&mut self, target: &str, arguments: Value) -> (String, Bytes) {
            self.next_id += 1;
            let id = self.next_id.to_string();
            let mut text = serde_json::json!({
                "type": 1,
                "invocationId": id,
                "target": target,
                "arguments": arguments,
            })
            .to_string()
            .into_bytes();
            text.push(0x1e);
            (id, Bytes::from(text))
        }

        /// The Completion of invocation `id`, skipping pings and other messages.
        pub(crate) async fn completion(&mut self, id: &str) -> Value {
            loop {
                let message = self.json().await;
                if message["type"] == 3 && message["invocationId"] == id {
                    return message;
                }
            }
        }

        /// Invokes `target` and returns its result (panics on an error Completion).
        pub(crate) async fn invoke(&mut self, target: &str, arguments: Value) -> Value {
            let (id, frame) = self.invocation(target, arguments);
            self.send(frame).await.expect("the invocation is written");
            let completion = self.completion(&id).await;
            assert!(
                completion.get("error").is_none(),
                "{target} failed: {completion}"
            );
            completion["result"].clone()
        }
    }

    /// A TCP relay in front of a server that writes down the request line of every HTTP
    /// request passing through (`"POST /testhub?id=…"`). It answers nothing itself: it lets a
    /// test see how many POSTs, polls and DELETEs a transport really sent.
    pub(crate) struct RequestLog {
        pub(crate) base_url: String,
        requests: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
        task: tokio::task::JoinHandle<()>,
    }

    impl RequestLog {
        pub(crate) async fn start(target_base_url: &str) -> RequestLog {
            use tokio::net::{TcpListener, TcpStream};
            let target = Url::parse(target_base_url).expect("a base URL");
            let target = format!(
                "{}:{}",
                target.host_str().expect("a host"),
                target.port_or_known_default().expect("a port")
            );
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let base_url = format!("http://{}", listener.local_addr().unwrap());
            let requests = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
            let log = requests.clone();
            let task = tokio::spawn(async move {
                while let Ok((client, _)) = listener.accept().await {
                    let Ok(server) = TcpStream::connect(&target).await else {
                        continue;
                    };
                    tokio::spawn(relay(client, server, log.clone()));
                }
            });
            RequestLog {
                base_url,
                requests,
                task,
            }
        }

        /// The request lines seen so far that start with `method`.
        pub(crate) fn requests(&self, method: &str) -> Vec<String> {
            let prefix = format!("{method} ");
            self.requests
                .lock()
                .unwrap()
                .iter()
                .filter(|line| line.starts_with(&prefix))
                .cloned()
                .collect()
        }
    }

    impl Drop for RequestLog {
        fn drop(&mut self) {
            self.task.abort();
        }
    }

    async fn relay(
        client: tokio::net::TcpStream,
        server: tokio::net::TcpStream,
        log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    ) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (mut client_read, mut client_write) = client.into_split();
        let (mut server_read, mut server_write) = server.into_split();
        let answers = tokio::spawn(async move {
            let _ = tokio::io::copy(&mut server_read, &mut client_write).await;
            let _ = client_write.shutdown().await;
        });
        let mut parser = RequestParser::default();
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            let n = match client_read.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            for line in parser.feed(&buffer[..n]) {
                log.lock().unwrap().push(line);
            }
            if server_write.write_all(&buffer[..n]).await.is_err() {
                break;
            }
        }
        let _ = server_write.shutdown().await;
        let _ = answers.await;
    }

    /// Finds request lines in an HTTP/1.1 byte stream (bodies with Content-Length only, as
    /// reqwest sends them; stops at an Upgrade).
    #[derive(Default)]
    struct RequestParser {
        pending: Vec<u8>,
        body_left: usize,
        upgraded: bool,
    }

    impl RequestParser {
        fn feed(&mut self, data: &[u8]) -> Vec<String> {
            let mut lines = Vec::new();
            if self.upgraded {
                return lines;
            }
            self.pending.extend_from_slice(data);
            loop {
                if self.body_left > 0 {
                    let skip = self.body_left.min(self.pending.len());
                    self.pending.drain(..skip);
                    self.body_left -= skip;
                    if self.body_left > 0 {
                        return lines;
                    }
                }
                let Some(end) = self.pending.windows(4).position(|w| w == b"\r\n\r\n") else {
                    return lines;
                };
                let head = String::from_utf8_lossy(&self.pending[..end]).into_owned();
                self.pending.drain(..end + 4);
                let mut head_lines = head.split("\r\n");
                lines.push(head_lines.next().unwrap_or_default().to_owned());
                for header in head_lines {
                    let Some((name, value)) = header.split_once(':') else {
                        continue;
                    };
                    if name.eq_ignore_ascii_case("content-length") {
                        self.body_left = value.trim().parse().unwrap_or(0);
                    } else if name.eq_ignore_ascii_case("upgrade") {
                        self.upgraded = true;
                    }
                }
                if self.upgraded {
                    return lines;
                }
            }
        }
    }

    /// The in-repo test server (`tests/testserver`), in this process.
    pub(crate) async fn test_server(
        options: hublink_testserver::TestServerOptions,
    ) -> hublink_testserver::TestServer {
        hublink_testserver::TestServer::start(options)
            .await
            .expect("the test server starts")
    }
}
