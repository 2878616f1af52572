//! Entry points for the fuzz targets of `fuzz/` (built only with `--cfg fuzzing`, which
//! cargo-fuzz sets): the Server-Sent Events parser, and the hub driver over an in-memory
//! transport. Not part of the API.
//!
//! The in-memory transport keeps the contract of the real ones (`transport/mod.rs`): every
//! frame's `written` completes once taken, and dropping the link's sender closes it
//! gracefully with one `Closed(None)`.

use std::sync::OnceLock;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};
use url::Url;

use crate::error::{Error, Result};
use crate::http::{HttpClient, HttpOptions};
use crate::hub::driver::{Command, Driver, DriverSettings, Ended, StatefulLink};
use crate::hub::stream::{stream_buffer, StreamReceiver};
use crate::protocol::keep_alive::KeepAlive;
use crate::protocol::transports::TransportKind;
use crate::protocol::{HubMessage, HubProtocol, Invocation, Payload, StreamInvocation};
use crate::transport::event_stream;
use crate::transport::{ConnectRequest, OutgoingFrame, TransportEvent, TransportLink};

/// The SSE transport's `text/event-stream` parser.
pub struct EventStreamParser(event_stream::EventStreamParser);

impl EventStreamParser {
    /// A parser failing events (or lines) above `limit` bytes.
    pub fn new(limit: usize) -> Self {
        EventStreamParser(event_stream::EventStreamParser::new(limit))
    }

    /// Parses `chunk`, passing each completed event's type and data to `on_event`; `Err`
    /// carries the size of the event that passed the limit.
    pub fn feed(
        &mut self,
        chunk: &[u8],
        mut on_event: impl FnMut(String, Bytes),
    ) -> std::result::Result<(), usize> {
        self.0
            .feed(chunk, |event| on_event(event.kind, event.data))
            .map_err(|too_large| too_large.size)
    }

    /// The bytes the parser holds: the unfinished line and the current event's data.
    pub fn buffered(&self) -> usize {
        self.0.buffered()
    }
}

/// How the driver under test runs.
#[derive(Debug, Clone)]
pub struct DriverSetup {
    /// The hub protocol.
    pub protocol: HubProtocol,
    /// Keep-alive ping interval and server timeout in milliseconds; `None`: no timers, as on
    /// Long Polling.
    pub keep_alive_ms: Option<(u64, u64)>,
    /// Stateful reconnect with this replay buffer size. The reconnect it tries when the
    /// transport closes goes to a closed local port and fails at once.
    pub stateful_buffer: Option<usize>,
    /// The largest hub message accepted.
    pub max_message_size: usize,
    /// Bytes that came with the handshake answer (the decoder starts with them).
    pub after_handshake: Vec<u8>,
}

/// How the driver ended.
#[derive(Debug)]
pub struct DriverEnded {
    /// The error, or `None` for a clean end.
    pub error: Option<Error>,
    /// Whether the server's Close allowed a reconnect.
    pub allow_reconnect: bool,
    /// Every frame the driver wrote to the transport, in order.
    pub written: Vec<Bytes>,
}

/// The hub driver (the task owning a running connection) over an in-memory transport.
/// Create it inside a tokio runtime with time and IO enabled; it runs as a task of it.
pub struct DriverUnderTest {
    protocol: HubProtocol,
    /// Transport messages to the driver; `None` once the transport closed.
    incoming: Option<mpsc::Sender<TransportEvent>>,
    commands: mpsc::UnboundedSender<Command>,
    /// The server's invocations, kept as a dispatcher would take them.
    _invocations: mpsc::UnboundedReceiver<Invocation>,
    written: mpsc::UnboundedReceiver<Bytes>,
    ended: oneshot::Receiver<Ended>,
}

impl DriverUnderTest {
    /// Starts the driver and its in-memory transport.
    pub fn start(setup: DriverSetup) -> Self {
        let (incoming_tx, incoming_rx) = mpsc::channel(crate::transport::INCOMING_CAPACITY);
        let (outgoing_tx, outgoing_rx) = mpsc::channel(crate::transport::OUTGOING_CAPACITY);
        let (written_tx, written) = mpsc::unbounded_channel();
        tokio::spawn(in_memory_transport(
            outgoing_rx,
            incoming_tx.clone(),
            written_tx,
        ));
        let link = TransportLink {
            kind: TransportKind::WebSockets,
            outgoing: outgoing_tx.into(),
            incoming: incoming_rx.into(),
        };
        let mut decoder = setup.protocol.decoder(setup.max_message_size);
        decoder.push(&setup.after_handshake);
        let keep_alive = match setup.keep_alive_ms {
            Some((interval, timeout)) => {
                KeepAlive::new(interval, timeout, crate::runtime::now_ms())
            }
            None => KeepAlive::inherent(),
        };
        let stateful = setup.stateful_buffer.map(|buffer_size| StatefulLink {
            reconnect: unreachable_reconnect(setup.protocol, setup.max_message_size),
            buffer_size,
        });
        let (commands, commands_rx) = mpsc::unbounded_channel();
        let (invocations_tx, invocations) = mpsc::unbounded_channel();
        let driver = Driver::new(
            link,
            decoder,
            commands_rx,
            invocations_tx,
            DriverSettings {
                protocol: setup.protocol,
                keep_alive,
                stateful,
                log_message_content: false,
                stop_requested: None,
            },
        );
        let (ended_tx, ended) = oneshot::channel();
        tokio::spawn(async move {
            let _ = ended_tx.send(driver.run().await);
        });
        DriverUnderTest {
            protocol: setup.protocol,
            incoming: Some(incoming_tx),
            commands,
            _invocations: invocations,
            written,
            ended,
        }
    }

    /// Delivers one transport message; `false` when the driver no longer reads (it ended).
    pub async fn receive(&mut self, message: Vec<u8>) -> bool {
        match &self.incoming {
            Some(incoming) => incoming
                .send(TransportEvent::Message(message.into()))
                .await
                .is_ok(),
            None => false,
        }
    }

    /// The transport closes on its own, cleanly or with an error.
    pub async fn close_transport(&mut self, error: Option<&str>) {
        if let Some(incoming) = self.incoming.take() {
            let _ = incoming
                .send(TransportEvent::Closed(error.map(Error::transport)))
                .await;
        }
    }

    /// Invokes `target` with invocation id `id`; the receiver gets the outcome. `None` when the
    /// driver ended (a connection then answers "not connected" itself).
    pub fn invoke(
        &self,
        id: u64,
        target: &str,
    ) -> Option<oneshot::Receiver<Result<Option<Payload>>>> {
        let frame = self.frame(&HubMessage::Invocation(Invocation {
            invocation_id: Some(id.to_string()),
            target: target.to_owned(),
            arguments: vec![],
            stream_ids: None,
            headers: vec![],
        }));
        let (reply, outcome) = oneshot::channel();
        self.commands
            .send(Command::Invoke {
                id,
                frame,
                reply: reply.into(),
            })
            .ok()?;
        Some(outcome)
    }

    /// Starts a stream `id` of `target`; the receiver gets its items and its end. `None` when
    /// the driver ended.
    pub fn stream(&self, id: &str, target: &str) -> Option<StreamItems> {
        let frame = self.frame(&HubMessage::StreamInvocation(StreamInvocation {
            invocation_id: id.to_owned(),
            target: target.to_owned(),
            arguments: vec![],
            stream_ids: None,
            headers: vec![],
        }));
        // Room for every item an input can hold: the harness reads streams only at the end,
        // and a full buffer would (rightly) stop the driver reading its transport.
        let (feed, receiver) = stream_buffer(1 << 16);
        self.commands
            .send(Command::Stream {
                id: id.to_owned(),
                frame,
                items: feed,
            })
            .ok()?;
        Some(StreamItems {
            receiver,
            ended: false,
        })
    }

    /// The caller drops stream `id`.
    pub fn cancel_stream(&self, id: &str) {
        let _ = self
            .commands
            .send(Command::CancelStream { id: id.to_owned() });
    }

    /// Sends a message the caller built (a client result, an upload item); the receiver
    /// gets whether it was written. `None` when the driver ended, or when `message` does not
    /// encode in the protocol (a caller gets that error before sending).
    pub fn send(&self, message: &HubMessage) -> Option<oneshot::Receiver<Result<()>>> {
        let mut frame = Vec::new();
        self.protocol.write_message(message, &mut frame).ok()?;
        let (written, outcome) = oneshot::channel();
        self.commands
            .send(Command::Send {
                frame: frame.into(),
                written: Some(written.into()),
            })
            .ok()?;
        Some(outcome)
    }

    /// `stop()`: the driver sends Close, stops the transport and ends.
    pub fn stop(&self) {
        let _ = self.commands.send(Command::Stop);
    }

    /// Waits for the driver to end, and for its transport to close.
    pub async fn ended(mut self) -> DriverEnded {
        let ended = self
            .ended
            .await
            .expect("the driver task ends with a reason");
        let mut written = Vec::new();
        while let Some(frame) = self.written.recv().await {
            written.push(frame);
        }
        DriverEnded {
            error: ended.error,
            allow_reconnect: ended.allow_reconnect,
            written,
        }
    }

    fn frame(&self, message: &HubMessage) -> Bytes {
        let mut out = Vec::new();
        self.protocol
            .write_message(message, &mut out)
            .expect("the harness's messages encode");
        out.into()
    }
}

/// Takes every frame (written at once); once the driver drops its sender, reports the
/// graceful close, as the real transports do.
async fn in_memory_transport(
    mut outgoing: mpsc::Receiver<OutgoingFrame>,
    incoming: mpsc::Sender<TransportEvent>,
    written: mpsc::UnboundedSender<Bytes>,
) {
    while let Some(frame) = outgoing.recv().await {
        let _ = written.send(frame.data);
        if let Some(done) = frame.written {
            done.send(Ok(()));
        }
    }
    let _ = incoming.send(TransportEvent::Closed(None)).await;
}

/// A reconnect request to a closed local port: a resume fails at once, without a network.
fn unreachable_reconnect(protocol: HubProtocol, max_message_size: usize) -> ConnectRequest {
    static HTTP: OnceLock<HttpClient> = OnceLock::new();
    let url = Url::parse("http://127.0.0.1:1/hub").expect("a valid URL");
    let http = HTTP
        .get_or_init(|| {
            let options = HttpOptions::new(vec![], vec![], Duration::from_secs(1))
                .expect("no headers to refuse");
            HttpClient::new(&options, &url).expect("an HTTP client")
        })
        .clone();
    ConnectRequest {
        url,
        format: protocol.transfer_format(),
        access_token: crate::access_token::AccessToken::fixed(None),
        http,
        max_message_size,
    }
}

/// The items of a stream started with [`DriverUnderTest::stream`].
pub struct StreamItems {
    receiver: StreamReceiver,
    ended: bool,
}

impl StreamItems {
    /// The next item, then the error that ended the stream (if one did), then `None`.
    pub async fn recv(&mut self) -> Option<Result<Payload>> {
        if self.ended {
            return None;
        }
        let next = self.receiver.next().await;
        self.ended = !matches!(next, Some(Ok(_)));
        next
    }
}
