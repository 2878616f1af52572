//! One SignalR connection: the transport-independent part (handshake, hub messages, keep-alive,
//! timeouts, stateful reconnect), run as one task per connection that owns all its state.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::HeaderMap;
use bytes::Bytes;
use futures_util::future::BoxFuture;
use hublink_proto::handshake::{parse_handshake_request, HandshakeResponse};
use hublink_proto::transports::TransportKind;
use hublink_proto::{
    Close, Completion, CompletionOutcome, HubMessage, HubProtocol, Invocation, MessageDecoder,
    Payload, ProtocolError, Value,
};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};
use tokio::sync::oneshot;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::faults::{DropGaps, Faults};
use crate::hub::{self, Ctx, UploadItem};
use crate::ServerState;

/// How long invocations queued before a connection ended may still take to run.
const QUEUED_INVOCATIONS_GRACE: Duration = Duration::from_secs(5);
/// Which hub an endpoint serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) enum HubKind {
    Test,
    Authorized,
    Uncreatable,
}

/// A hub endpoint.
#[derive(Debug)]
pub(crate) struct Endpoint {
    /// Lower-case path without the leading slash.
    pub path: &'static str,
    pub hub: HubKind,
    pub transports: &'static [TransportKind],
    pub stateful: bool,
    pub auth: bool,
}

const ALL: &[TransportKind] = &TransportKind::ALL;

pub(crate) const ENDPOINTS: &[Endpoint] = &[
    Endpoint {
        path: "testhub",
        hub: HubKind::Test,
        transports: ALL,
        stateful: true,
        auth: false,
    },
    Endpoint {
        path: "testhub-nowebsockets",
        hub: HubKind::Test,
        transports: &[TransportKind::ServerSentEvents, TransportKind::LongPolling],
        stateful: true,
        auth: false,
    },
    Endpoint {
        path: "testhub-nostateful",
        hub: HubKind::Test,
        transports: ALL,
        stateful: false,
        auth: false,
    },
    Endpoint {
        path: "authorizedhub",
        hub: HubKind::Authorized,
        transports: ALL,
        stateful: true,
        auth: true,
    },
    Endpoint {
        path: "uncreatable",
        hub: HubKind::Uncreatable,
        transports: ALL,
        stateful: false,
        auth: false,
    },
];

pub(crate) fn find_endpoint(path: &str) -> Option<&'static Endpoint> {
    ENDPOINTS.iter().find(|e| e.path == path)
}

/// What a transport writes: one transport message, a clean end, or an abrupt drop.
#[derive(Debug)]
pub(crate) enum OutFrame {
    Data { bytes: Vec<u8>, binary: bool },
    Close,
    Abort,
}

/// What a session task reacts to.
pub(crate) enum Event {
    /// A transport took the connection over (first connect, or a resumed WebSocket).
    Attach {
        kind: TransportKind,
        tx: UnboundedSender<OutFrame>,
        generation: u64,
    },
    /// Bytes from the client: a WebSocket frame (with the generation of the WebSocket that read
    /// it) or a POST body (`None`: Long Polling and SSE have one transport for the life of the
    /// connection).
    Data {
        bytes: Bytes,
        generation: Option<u64>,
    },
    /// The transport of this generation is gone.
    Detached { generation: u64 },
    /// A hub message to send to the client.
    Outgoing(HubMessage),
    /// Invoke a client method and wait for its result (client results).
    InvokeClient {
        target: String,
        arguments: Vec<Payload>,
        reply: oneshot::Sender<Result<Payload, String>>,
    },
    /// Send this Close message and end the connection.
    Close(Close),
    /// Drop the transport without a Close (a stateful connection then waits for a resume).
    Abort,
    /// `drop_randomly` dropped the transport (as `Abort` does): a stateful connection waits for
    /// a resume, any other ends.
    RandomDrop,
    /// Send these bytes as one transport message, unchecked.
    Raw(Vec<u8>),
}

/// The HTTP request the hub sees as `Context.GetHttpContext()`.
#[derive(Debug, Clone, Default)]
pub(crate) struct RequestInfo {
    pub headers: HeaderMap,
    pub query: Vec<(String, String)>,
}

impl RequestInfo {
    pub fn query_value(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    }

    pub fn cookie(&self, name: &str) -> Option<String> {
        self.headers
            .get_all("cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_owned())
    }
}

/// The shared handle of a connection (HTTP handlers and other connections use it).
pub(crate) struct Conn {
    pub id: String,
    pub token: String,
    pub endpoint: &'static Endpoint,
    pub negotiated_stateful: bool,
    pub faults: Faults,
    pub user: Option<String>,
    pub events: UnboundedSender<Event>,
    pub transport: Mutex<Option<TransportKind>>,
    pub ws_attached: AtomicBool,
    /// Set when a stateful connection lost its WebSocket and waits for a resume.
    pub resumable: AtomicBool,
    pub ended: AtomicBool,
    pub generation: AtomicU64,
    pub info: Mutex<RequestInfo>,
    pub lp_rx: tokio::sync::Mutex<Option<UnboundedReceiver<OutFrame>>>,
    pub lp_cancel: Mutex<Option<CancellationToken>>,
    pub lp_first_done: AtomicBool,
    pub lp_aborted: AtomicBool,
    /// The arguments of every `Record` call, in the order the hub ran them.
    pub recorded: Mutex<Vec<Payload>>,
    /// How many POSTs (sends) reached this connection.
    pub posts: AtomicU64,
}

impl Conn {
    pub fn next_generation(&self) -> u64 {
        self.generation.fetch_add(1, Ordering::SeqCst) + 1
    }

    pub fn send(&self, event: Event) -> bool {
        self.events.send(event).is_ok()
    }
}

/// Creates and registers a connection and starts its session task.
pub(crate) fn create_connection(
    server: &Arc<ServerState>,
    endpoint: &'static Endpoint,
    negotiated_stateful: bool,
    faults: Faults,
    user: Option<String>,
    info: RequestInfo,
) -> Arc<Conn> {
    let (tx, rx) = unbounded_channel();
    let conn = Arc::new(Conn {
        id: new_id(),
        token: new_id(),
        endpoint,
        negotiated_stateful,
        faults,
        user,
        events: tx,
        transport: Mutex::new(None),
        ws_attached: AtomicBool::new(false),
        resumable: AtomicBool::new(false),
        ended: AtomicBool::new(false),
        generation: AtomicU64::new(0),
        info: Mutex::new(info),
        lp_rx: tokio::sync::Mutex::new(None),
        lp_cancel: Mutex::new(None),
        lp_first_done: AtomicBool::new(false),
        lp_aborted: AtomicBool::new(false),
        recorded: Mutex::new(Vec::new()),
        posts: AtomicU64::new(0),
    });
    server
        .by_token
        .lock()
        .unwrap()
        .insert(conn.token.clone(), conn.clone());
    server
        .by_id
        .lock()
        .unwrap()
        .insert(conn.id.clone(), conn.clone());
    let session = Session::new(conn.clone(), server.clone());
    tokio::spawn(session.run(rx));
    conn
}

fn new_id() -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(uuid::Uuid::new_v4().as_bytes())
}

/// ASP.NET's text for a hub message above `MaximumReceiveMessageSize`.
fn receive_error_text(error: &ProtocolError) -> String {
    match error {
        ProtocolError::MessageTooLarge { max, .. } => format!(
            "Connection closed with an error. InvalidDataException: The maximum message size of {max}B was exceeded. The message size can be configured in AddHubOptions."
        ),
        other => format!("Connection closed with an error. InvalidDataException: {other}"),
    }
}

struct Session {
    conn: Arc<Conn>,
    server: Arc<ServerState>,
    tx: Option<UnboundedSender<OutFrame>>,
    kind: Option<TransportKind>,
    generation: u64,
    attached_once: bool,
    created: Instant,
    hs_buf: Vec<u8>,
    hs_deadline: Option<Instant>,
    protocol: Option<HubProtocol>,
    decoder: Option<MessageDecoder>,
    last_sent: Instant,
    last_recv: Instant,
    sent_count: u64,
    dropped_by_fault: bool,
    /// `drop_randomly`: the gaps still to come, the transport messages sent so far that it
    /// counts (each message once, when it first goes out: not the Sequence of a resume nor
    /// the replay of messages sent before), and the count at which the next drop is due.
    random_drops: Option<DropGaps>,
    random_drop_count: u64,
    next_random_drop: u64,
    /// Set while `resume` writes a message `drop_randomly` does not count.
    replaying: bool,
    /// The highest sequence id that went out on a transport (stateful reconnect).
    first_sent_seq: u64,
    // stateful reconnect
    stateful: bool,
    out_seq: u64,
    buffer: VecDeque<(u64, Vec<u8>)>,
    buffered_bytes: usize,
    in_next: u64,
    in_highest: u64,
    ack_deadline: Option<Instant>,
    /// An Ack fell due while the WebSocket was down: it goes out right after the resume.
    ack_missed: bool,
    grace_deadline: Option<Instant>,
    // hub state
    uploads: HashMap<String, UnboundedSender<UploadItem>>,
    streams: HashMap<String, CancellationToken>,
    client_results: HashMap<String, oneshot::Sender<Result<Payload, String>>>,
    next_client_id: u64,
    jobs: Option<UnboundedSender<BoxFuture<'static, ()>>>,
    worker: Option<tokio::task::JoinHandle<()>>,
    tasks: CancellationToken,
}

enum Flow {
    Continue,
    End,
}

impl Session {
    fn new(conn: Arc<Conn>, server: Arc<ServerState>) -> Self {
        let now = Instant::now();
        let mut random_drops = conn.faults.drop_randomly.map(|d| d.gaps());
        let next_random_drop = random_drops.as_mut().and_then(Iterator::next).unwrap_or(0);
        Session {
            conn,
            server,
            tx: None,
            kind: None,
            generation: 0,
            attached_once: false,
            created: now,
            hs_buf: Vec::new(),
            hs_deadline: None,
            protocol: None,
            decoder: None,
            last_sent: now,
            last_recv: now,
            sent_count: 0,
            dropped_by_fault: false,
            random_drops,
            random_drop_count: 0,
            next_random_drop,
            replaying: false,
            first_sent_seq: 0,
            stateful: false,
            out_seq: 0,
            buffer: VecDeque::new(),
            buffered_bytes: 0,
            in_next: 1,
            in_highest: 0,
            ack_deadline: None,
            ack_missed: false,
            grace_deadline: None,
            uploads: HashMap::new(),
            streams: HashMap::new(),
            client_results: HashMap::new(),
            next_client_id: 0,
            jobs: None,
            worker: None,
            tasks: CancellationToken::new(),
        }
    }

    async fn run(mut self, mut events: UnboundedReceiver<Event>) {
        let shutdown = self.server.shutdown.clone();
        loop {
            let deadline = self.next_deadline();
            let flow = tokio::select! {
                ev = events.recv() => match ev {
                    Some(ev) => self.handle(ev).await,
                    None => Flow::End,
                },
                _ = tokio::time::sleep_until(deadline) => self.on_timer(),
                _ = shutdown.cancelled() => {
                    self.end_with_close(Close::default());
                    Flow::End
                }
            };
            if let Flow::End = flow {
                break;
            }
        }
        self.cleanup();
    }

    fn opts(&self) -> &crate::TestServerOptions {
        &self.server.options
    }

    /// Long Polling has no client timeout (inherent keep-alive); polls count as activity there,
    /// so a client that stopped polling is dropped after twice the poll timeout (at least the
    /// client timeout).
    fn receive_timeout(&self) -> Duration {
        let o = self.opts();
        if self.kind == Some(TransportKind::LongPolling) {
            o.client_timeout
                .max(o.long_poll_timeout * 2 + Duration::from_secs(5))
        } else {
            o.client_timeout
        }
    }

    fn handshake_done(&self) -> bool {
        self.protocol.is_some()
    }

    fn next_deadline(&self) -> Instant {
        let o = self.opts();
        let mut d: Vec<Instant> = Vec::new();
        if !self.attached_once {
            d.push(self.created + o.unused_connection_timeout);
        }
        if let Some(h) = self.hs_deadline {
            d.push(h);
        }
        if self.handshake_done() && self.tx.is_some() {
            if !self.conn.faults.no_pings {
                d.push(self.last_sent + o.keep_alive_interval);
            }
            d.push(self.last_recv + self.receive_timeout());
        }
        d.extend(self.ack_deadline);
        d.extend(self.grace_deadline);
        d.into_iter()
            .min()
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600))
    }

    fn on_timer(&mut self) -> Flow {
        let now = Instant::now();
        let o = self.opts().clone();
        if !self.attached_once && now >= self.created + o.unused_connection_timeout {
            return Flow::End;
        }
        if let Some(h) = self.hs_deadline {
            if now >= h {
                eprintln!(
                    "hublink-testserver: connection {}: handshake timed out",
                    self.conn.id
                );
                self.close_transport();
                return Flow::End;
            }
        }
        if let Some(g) = self.grace_deadline {
            if now >= g {
                return Flow::End;
            }
        }
        if let Some(a) = self.ack_deadline {
            if now >= a {
                self.ack_deadline = None;
                if self.tx.is_some() {
                    self.send_message(&HubMessage::Ack {
                        sequence_id: self.in_highest,
                    });
                } else {
                    self.ack_missed = true;
                }
            }
        }
        if self.handshake_done() && self.tx.is_some() {
            if now >= self.last_recv + self.receive_timeout() {
                eprintln!(
                    "hublink-testserver: connection {}: client timeout",
                    self.conn.id
                );
                self.end_with_close(Close {
                    error: None,
                    allow_reconnect: Some(true),
                });
                return Flow::End;
            }
            if !self.conn.faults.no_pings && now >= self.last_sent + o.keep_alive_interval {
                self.send_message(&HubMessage::Ping);
            }
        }
        Flow::Continue
    }

    async fn handle(&mut self, ev: Event) -> Flow {
        match ev {
            Event::Attach {
                kind,
                tx,
                generation,
            } => {
                if !self.attached_once {
                    self.attached_once = true;
                    self.kind = Some(kind);
                    self.tx = Some(tx);
                    self.generation = generation;
                    self.hs_deadline = Some(Instant::now() + self.opts().handshake_timeout);
                    self.last_recv = Instant::now();
                } else if self.stateful && kind == TransportKind::WebSockets {
                    if let Some(old) = self.tx.take() {
                        let _ = old.send(OutFrame::Abort);
                    }
                    self.tx = Some(tx);
                    self.generation = generation;
                    self.grace_deadline = None;
                    self.last_recv = Instant::now();
                    self.conn.resumable.store(false, Ordering::SeqCst);
                    self.resume();
                } else {
                    let _ = tx.send(OutFrame::Close);
                }
                Flow::Continue
            }
            Event::Data {
                generation: Some(generation),
                ..
            } if generation != self.generation => {
                // A frame read by a WebSocket that a resumed one has replaced: the client
                // replays whatever the server has not acknowledged, so counting this one too
                // would run it twice (numbered after the new transport's Sequence).
                Flow::Continue
            }
            Event::Data { bytes, .. } => {
                self.last_recv = Instant::now();
                if self.handshake_done() {
                    if let Some(d) = self.decoder.as_mut() {
                        d.push(&bytes);
                    }
                    self.process_messages()
                } else {
                    self.hs_buf.extend_from_slice(&bytes);
                    self.process_handshake().await
                }
            }
            Event::Detached { generation } => {
                if generation != self.generation || self.tx.is_none() {
                    return Flow::Continue;
                }
                self.tx = None;
                self.on_transport_lost()
            }
            Event::Outgoing(msg) => {
                if self.handshake_done() {
                    self.send_message(&msg);
                }
                Flow::Continue
            }
            Event::InvokeClient {
                target,
                arguments,
                reply,
            } => {
                if !self.handshake_done() {
                    let _ = reply.send(Err("The connection is not connected.".into()));
                    return Flow::Continue;
                }
                self.next_client_id += 1;
                let id = format!("s{}", self.next_client_id);
                self.client_results.insert(id.clone(), reply);
                self.send_message(&HubMessage::Invocation(Invocation {
                    invocation_id: Some(id),
                    target,
                    arguments,
                    stream_ids: None,
                    headers: Vec::new(),
                }));
                Flow::Continue
            }
            Event::Close(close) => {
                self.end_with_close(close);
                Flow::End
            }
            Event::Abort => self.drop_transport(),
            // `write_frame` already dropped the transport (unless a new one came since).
            Event::RandomDrop if self.tx.is_none() => self.on_transport_lost(),
            Event::RandomDrop => Flow::Continue,
            Event::Raw(bytes) => {
                self.write_frame(bytes);
                Flow::Continue
            }
        }
    }

    /// The transport went away (or was dropped on purpose): wait for a resume if stateful.
    fn on_transport_lost(&mut self) -> Flow {
        if self.stateful && self.kind == Some(TransportKind::WebSockets) {
            self.grace_deadline = Some(Instant::now() + self.opts().stateful_reconnect_grace);
            self.conn.resumable.store(true, Ordering::SeqCst);
            Flow::Continue
        } else {
            Flow::End
        }
    }

    fn drop_transport(&mut self) -> Flow {
        self.abort_transport();
        self.on_transport_lost()
    }

    /// Ends the transport without a Close (WebSockets: no close frame).
    fn abort_transport(&mut self) {
        if let Some(tx) = self.tx.take() {
            if self.kind == Some(TransportKind::LongPolling) {
                self.conn.lp_aborted.store(true, Ordering::SeqCst);
            }
            let _ = tx.send(OutFrame::Abort);
        }
    }

    /// A stateful connection got its WebSocket back: Sequence, then the unacknowledged messages.
    fn resume(&mut self) {
        let faults = self.conn.faults.clone();
        if faults.ignore_sequence {
            return;
        }
        let first = self
            .buffer
            .front()
            .map_or(self.out_seq + 1, |(seq, _)| *seq);
        let sequence_id = faults.bad_sequence.unwrap_or(first);
        self.replaying = true;
        self.send_message(&HubMessage::Sequence { sequence_id });
        let replay: Vec<(u64, Vec<u8>)> = self.buffer.iter().cloned().collect();
        for (seq, bytes) in replay {
            // `drop_randomly` counts a replayed message only if it never went out before.
            self.replaying = seq <= self.first_sent_seq;
            if self.tx.is_some() {
                self.first_sent_seq = self.first_sent_seq.max(seq);
            }
            self.write_frame(bytes);
        }
        self.replaying = false;
        if std::mem::take(&mut self.ack_missed) {
            self.send_message(&HubMessage::Ack {
                sequence_id: self.in_highest,
            });
        }
    }

    async fn process_handshake(&mut self) -> Flow {
        let max = self.opts().max_message_size;
        let (request, consumed) = match parse_handshake_request(&self.hs_buf, max) {
            Ok(None) => return Flow::Continue,
            Ok(Some(r)) => r,
            Err(e) => {
                let text = match e {
                    ProtocolError::MessageTooLarge { .. } => "Handshake was canceled.".to_owned(),
                    e => format!(
                        "An unexpected error occurred during connection handshake. InvalidDataException: {e}"
                    ),
                };
                return self.handshake_failure(text);
            }
        };
        self.hs_deadline = None;
        let Some(protocol) = HubProtocol::from_name(&request.protocol) else {
            return self.handshake_failure(format!(
                "The protocol '{}' is not supported.",
                request.protocol
            ));
        };
        if request.version > 2 {
            return self.handshake_failure(format!(
                "The server does not support version {} of the '{}' protocol.",
                request.version, request.protocol
            ));
        }
        let kind = self.kind.unwrap_or(TransportKind::WebSockets);
        if !kind.can_carry(protocol.transfer_format()) {
            return self.handshake_failure(format!(
                "Cannot use the '{}' protocol on the current transport. The transport does not support '{}' transfer format.",
                request.protocol,
                protocol.transfer_format().name()
            ));
        }
        if let Some(delay) = self.conn.faults.delay_handshake {
            tokio::time::sleep(delay).await;
        }
        self.protocol = Some(protocol);
        self.stateful = self.conn.negotiated_stateful
            && request.version >= 2
            && kind == TransportKind::WebSockets;
        self.write_frame(HandshakeResponse::success().to_bytes());
        let mut decoder = protocol.decoder(max);
        decoder.push(&self.hs_buf[consumed..]);
        self.hs_buf = Vec::new();
        self.decoder = Some(decoder);
        let (jobs_tx, mut jobs_rx) = unbounded_channel::<BoxFuture<'static, ()>>();
        self.jobs = Some(jobs_tx);
        self.worker = Some(tokio::spawn(async move {
            while let Some(job) = jobs_rx.recv().await {
                job.await;
            }
        }));
        if self.conn.endpoint.hub == HubKind::Uncreatable {
            self.end_with_close(Close {
                error: Some("Connection closed with an error. InvalidOperationException: Unable to resolve service for type 'System.Object' while attempting to activate 'FunctionalTests.UncreatableHub'.".into()),
                allow_reconnect: None,
            });
            return Flow::End;
        }
        if let Some(size) = self.conn.faults.oversized_message {
            self.send_message(&HubMessage::Invocation(Invocation {
                invocation_id: None,
                target: "Oversized".into(),
                arguments: vec![Payload::Value(Value::String("x".repeat(size)))],
                stream_ids: None,
                headers: Vec::new(),
            }));
        }
        self.process_messages()
    }

    fn handshake_failure(&mut self, error: String) -> Flow {
        eprintln!(
            "hublink-testserver: connection {}: handshake failed: {error}",
            self.conn.id
        );
        let bytes = HandshakeResponse::failure(error).to_bytes();
        if let Some(tx) = &self.tx {
            let _ = tx.send(OutFrame::Data {
                bytes,
                binary: false,
            });
        }
        self.close_transport();
        Flow::End
    }

    fn process_messages(&mut self) -> Flow {
        loop {
            let Some(decoder) = self.decoder.as_mut() else {
                return Flow::Continue;
            };
            match decoder.next_message() {
                Ok(Some(msg)) => {
                    if let Flow::End = self.on_message(msg) {
                        return Flow::End;
                    }
                }
                Ok(None) => return Flow::Continue,
                Err(e) => {
                    eprintln!(
                        "hublink-testserver: connection {}: bad input: {e}",
                        self.conn.id
                    );
                    self.end_with_close(Close {
                        error: Some(receive_error_text(&e)),
                        allow_reconnect: None,
                    });
                    return Flow::End;
                }
            }
        }
    }

    fn on_message(&mut self, msg: HubMessage) -> Flow {
        if self.stateful && msg.is_sequenced() {
            let id = self.in_next;
            self.in_next += 1;
            if id <= self.in_highest {
                // The last replayed duplicate after a resume: the client has not seen an Ack
                // for it (one due while the transport was down is never sent), so ack again,
                // as the official MessageBuffer does; else a client held back by its full
                // replay buffer would wait forever.
                if id == self.in_highest && self.ack_deadline.is_none() {
                    self.ack_deadline = Some(Instant::now() + self.opts().ack_delay);
                }
                return Flow::Continue;
            }
            self.in_highest = id;
            if self.ack_deadline.is_none() {
                self.ack_deadline = Some(Instant::now() + self.opts().ack_delay);
            }
        }
        match msg {
            HubMessage::Invocation(inv) => {
                self.on_invocation(
                    inv.target,
                    inv.invocation_id,
                    inv.arguments,
                    inv.stream_ids.unwrap_or_default(),
                    inv.headers,
                    false,
                );
            }
            HubMessage::StreamInvocation(inv) => {
                self.on_invocation(
                    inv.target,
                    Some(inv.invocation_id),
                    inv.arguments,
                    inv.stream_ids.unwrap_or_default(),
                    inv.headers,
                    true,
                );
            }
            HubMessage::StreamItem(item) => {
                if let Some(tx) = self.uploads.get(&item.invocation_id) {
                    let _ = tx.send(UploadItem::Item(item.item));
                }
            }
            HubMessage::Completion(c) => {
                if let Some(tx) = self.uploads.remove(&c.invocation_id) {
                    if let CompletionOutcome::Error(e) = c.outcome {
                        let _ = tx.send(UploadItem::Error(e));
                    }
                } else if let Some(reply) = self.client_results.remove(&c.invocation_id) {
                    let _ = reply.send(match c.outcome {
                        CompletionOutcome::Result(p) => Ok(p),
                        CompletionOutcome::Void => Ok(Payload::Value(Value::Null)),
                        CompletionOutcome::Error(e) => Err(e),
                    });
                }
            }
            HubMessage::CancelInvocation(c) => {
                if let Some(token) = self.streams.remove(&c.invocation_id) {
                    token.cancel();
                    self.server
                        .cancelled_streams
                        .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
            }
            HubMessage::Ping => {}
            HubMessage::Close(_) => {
                self.close_transport();
                return Flow::End;
            }
            HubMessage::Ack { sequence_id } => {
                while let Some((seq, bytes)) = self.buffer.front() {
                    if *seq > sequence_id {
                        break;
                    }
                    self.buffered_bytes -= bytes.len();
                    self.buffer.pop_front();
                }
            }
            HubMessage::Sequence { sequence_id } => {
                if sequence_id > self.in_highest + 1 {
                    self.end_with_close(Close {
                        error: Some(
                            "Sequence ID greater than amount of messages we've received.".into(),
                        ),
                        allow_reconnect: None,
                    });
                    return Flow::End;
                }
                self.in_next = sequence_id;
            }
        }
        Flow::Continue
    }

    fn on_invocation(
        &mut self,
        target: String,
        id: Option<String>,
        arguments: Vec<Payload>,
        stream_ids: Vec<String>,
        headers: Vec<(String, String)>,
        streaming: bool,
    ) {
        let fail = |s: &mut Session, id: &Option<String>, error: String| {
            if let Some(id) = id {
                s.send_message(&HubMessage::Completion(Completion {
                    invocation_id: id.clone(),
                    outcome: CompletionOutcome::Error(error),
                    headers: Vec::new(),
                }));
            }
        };
        let Some(method) = hub::find(self.conn.endpoint.hub, &target) else {
            return fail(
                self,
                &id,
                format!("Failed to invoke '{target}' due to an error on the server. HubException: Method does not exist."),
            );
        };
        if method.streaming && !streaming {
            return fail(
                self,
                &id,
                format!("The client attempted to invoke the streaming '{target}' method with a non-streaming invocation."),
            );
        }
        if !method.streaming && streaming {
            return fail(
                self,
                &id,
                format!("The client attempted to invoke the non-streaming '{target}' method with a streaming invocation."),
            );
        }
        if arguments.len() != method.params {
            return fail(
                self,
                &id,
                format!(
                    "Failed to invoke '{target}' due to an error on the server. InvalidDataException: Invocation provides {} argument(s) but target expects {}.",
                    arguments.len(),
                    method.params
                ),
            );
        }
        if stream_ids.len() != method.uploads {
            return fail(
                self,
                &id,
                format!(
                    "Failed to invoke '{target}' due to an error on the server. InvalidDataException: Client sent {} stream(s), Hub method expects {}.",
                    stream_ids.len(),
                    method.uploads
                ),
            );
        }
        let mut uploads = Vec::new();
        for sid in stream_ids {
            let (tx, rx) = unbounded_channel();
            self.uploads.insert(sid, tx);
            uploads.push(rx);
        }
        let cancel = self.tasks.child_token();
        if streaming {
            if let Some(id) = &id {
                self.streams.insert(id.clone(), cancel.clone());
            }
        }
        let ctx = Ctx {
            events: self.conn.events.clone(),
            conn: self.conn.clone(),
            server: self.server.clone(),
            protocol: self.protocol.unwrap_or(HubProtocol::Json),
            transport: self.kind.unwrap_or(TransportKind::WebSockets),
            headers,
        };
        let fut = hub::invoke(
            ctx, method, target, id, arguments, uploads, cancel, streaming,
        );
        let spawn_alone = streaming || method.uploads > 0;
        if spawn_alone {
            let tasks = self.tasks.clone();
            tokio::spawn(async move {
                tokio::select! {
                    _ = fut => {}
                    _ = tasks.cancelled() => {}
                }
            });
        } else if let Some(jobs) = &self.jobs {
            let _ = jobs.send(fut);
        }
    }

    /// Encodes, numbers (stateful reconnect) and writes one hub message.
    fn send_message(&mut self, msg: &HubMessage) {
        let Some(protocol) = self.protocol else {
            return;
        };
        let mut bytes = Vec::new();
        if let Err(e) = protocol.write_message(msg, &mut bytes) {
            eprintln!("hublink-testserver: cannot encode a message: {e}");
            return;
        }
        if self.stateful && msg.is_sequenced() {
            self.out_seq += 1;
            if self.tx.is_some() {
                self.first_sent_seq = self.out_seq;
            }
            self.buffered_bytes += bytes.len();
            self.buffer.push_back((self.out_seq, bytes.clone()));
            if self.buffered_bytes > self.opts().stateful_reconnect_buffer_size {
                eprintln!(
                    "hublink-testserver: connection {}: stateful reconnect buffer full ({} bytes)",
                    self.conn.id, self.buffered_bytes
                );
            }
        }
        self.write_frame(bytes);
    }

    /// Writes one transport message and applies the counting faults.
    fn write_frame(&mut self, bytes: Vec<u8>) {
        let binary = self.protocol == Some(HubProtocol::MessagePack);
        let Some(tx) = &self.tx else {
            return;
        };
        let _ = tx.send(OutFrame::Data { bytes, binary });
        self.last_sent = Instant::now();
        self.sent_count += 1;
        let faults = &self.conn.faults;
        if faults.malformed_after == Some(self.sent_count) {
            let raw = if binary {
                vec![0x02, 0xc1, 0xc1]
            } else {
                b"{\"type\":\x1e".to_vec()
            };
            let _ = tx.send(OutFrame::Data { bytes: raw, binary });
        }
        if let Some(n) = faults.drop_after_messages {
            if self.sent_count >= n && !self.dropped_by_fault {
                self.dropped_by_fault = true;
                let _ = self.conn.events.send(Event::Abort);
            }
        }
        // A replay of what was sent before is not counted: one longer than the gap would drop
        // every resumed transport at once, and the connection would never get anywhere.
        if let (Some(gaps), false) = (self.random_drops.as_mut(), self.replaying) {
            self.random_drop_count += 1;
            if self.random_drop_count >= self.next_random_drop {
                self.next_random_drop = self.random_drop_count + gaps.next().unwrap_or(1);
                // At once, so that nothing more goes out on this transport (queued hub
                // messages would otherwise delay the drop); the session hears of it next.
                self.abort_transport();
                let _ = self.conn.events.send(Event::RandomDrop);
            }
        }
    }

    fn close_transport(&mut self) {
        if let Some(tx) = self.tx.take() {
            let _ = tx.send(OutFrame::Close);
        }
    }

    /// Sends a Close message (if the handshake was done) and ends the transport cleanly.
    fn end_with_close(&mut self, close: Close) {
        if self.handshake_done() {
            self.send_message(&HubMessage::Close(close));
        }
        self.close_transport();
    }

    fn cleanup(&mut self) {
        self.conn.ended.store(true, Ordering::SeqCst);
        self.conn.resumable.store(false, Ordering::SeqCst);
        self.close_transport();
        self.tasks.cancel();
        // As ASP.NET Core, the invocations read before the end still run (a send followed at
        // once by the client's Close is not lost): the worker drains its queue, for a bounded
        // time (a stalled method is then dropped).
        self.jobs = None;
        if let Some(worker) = self.worker.take() {
            let abort = worker.abort_handle();
            tokio::spawn(async move {
                if tokio::time::timeout(QUEUED_INVOCATIONS_GRACE, worker)
                    .await
                    .is_err()
                {
                    abort.abort();
                }
            });
        }
        self.uploads.clear();
        self.client_results.clear();
        {
            let mut groups = self.server.groups.lock().unwrap();
            for members in groups.values_mut() {
                members.remove(&self.conn.id);
            }
            groups.retain(|_, m| !m.is_empty());
        }
        // Keep the connection findable for a moment, so that a late poll gets 204, not 404.
        let server = self.server.clone();
        let conn = self.conn.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(5)).await;
            server.by_token.lock().unwrap().remove(&conn.token);
            server.by_id.lock().unwrap().remove(&conn.id);
        });
    }
}
