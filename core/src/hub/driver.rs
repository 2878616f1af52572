//! The task that owns a running connection: one loop over transport input, the outgoing
//! queue, caller commands and the keep-alive timer. Every protocol rule it applies lives in
//! `protocol/`; this file only moves bytes and completes futures.
//!
//! Backpressure from streams: a StreamItem for a stream whose buffer is full is held (a
//! [`Stall`]) before anything else happens to it, and the driver takes nothing more from the
//! transport until the stream's reader makes room (or cancels, drops the stream, or stops the
//! connection). The rest of that transport message waits in the decoder, later ones in the
//! transport: the native WebSocket is not read, SSE stops reading its response body and Long
//! Polling stops polling once the transport's bounded channel is full, so the server feels
//! TCP backpressure. Meanwhile the driver still takes commands, writes (pings, Acks, calls)
//! and runs its timers; the server timeout is paused (received-but-unread data is no sign of
//! a silent server) and starts over when reading resumes. The held message is not yet counted
//! for stateful reconnect, so an Ack never covers it before it is in the stream's buffer.
//! Handlers' invocations are not bounded this way: a handler may await a call whose answer
//! comes behind later invocations, and a bound there would turn that into a deadlock (the
//! official .NET client keeps that channel unbounded too).

use std::collections::VecDeque;
use std::time::Duration;

use bytes::Bytes;
use futures_util::FutureExt;
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{debug, info, trace, warn};

use super::stream::StreamFeed;
use crate::error::{Error, Result};
use crate::protocol::invocations::{Delivery, PendingCalls, CONNECTION_CLOSED};
use crate::protocol::keep_alive::{KeepAlive, KeepAliveAction, SERVER_TIMEOUT_ELAPSED};
use crate::protocol::stateful_reconnect::{Inbound, ReplayBuffer};
use crate::protocol::transports::TransportKind;
use crate::protocol::{
    CancelInvocation, Close, HubMessage, HubProtocol, Invocation, MessageDecoder, Payload,
};
use crate::reply::Reply;
use crate::runtime;
use crate::transport::{
    self, BoxFuture, ConnectRequest, LinkReceiver, LinkSender, OutgoingFrame, TransportEvent,
    TransportLink,
};

/// How many frames the driver queues before it stops taking caller commands (backpressure).
const QUEUE_LIMIT: usize = 256;

/// How many turns of the loop may pass, with frames to write, before writing goes first.
const TURNS_BEFORE_WRITING_ANYWAY: u32 = 8;

/// How many frames handed to the transport at once are flushed at once, without waiting for
/// the loop to run out of other work.
const FLUSH_AT: usize = 64;

/// How long a graceful stop waits for the transport to confirm it closed.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// How long after receiving a message the Ack for it goes out (stateful reconnect), as in
/// the official clients.
const ACK_DELAY_MS: u64 = 1000;

/// Stateful reconnect, when the server agreed to it.
pub(crate) struct StatefulLink {
    /// How to reconnect the same connection (same URL, same connection token).
    pub reconnect: ConnectRequest,
    /// The replay buffer size in bytes.
    pub buffer_size: usize,
}

/// How a driver runs its connection.
pub(crate) struct DriverSettings {
    pub protocol: HubProtocol,
    pub keep_alive: KeepAlive,
    pub stateful: Option<StatefulLink>,
    pub log_message_content: bool,
    /// Becomes true when `stop()` is called: heard even while the driver takes no commands
    /// (a full replay buffer waiting for the server's Ack). `None`: only `Command::Stop`.
    pub stop_requested: Option<watch::Receiver<bool>>,
}

/// What a queued frame is, for stateful reconnect.
#[derive(Clone, Copy, PartialEq, Eq)]
enum FrameKind {
    /// A message of types 1–5: recorded in the replay buffer when handed to the transport.
    Sequenced,
    /// A Ping, Close or Ack: never replayed.
    Control,
    /// The Sequence and replayed frames of a resume: stale once the transport drops again,
    /// because the next resume sends a new Sequence and replays them itself.
    Resume,
}

/// A frame waiting for the transport.
struct Queued {
    frame: OutgoingFrame,
    kind: FrameKind,
}

pub(crate) type InvokeReply = Reply<Option<Payload>>;
pub(crate) type StreamItems = StreamFeed;

/// A decoded StreamItem for a stream whose buffer is full, waiting for room; the driver
/// reads nothing more meanwhile.
struct Stall {
    message: HubMessage,
    stream_id: String,
    /// Resolves once the stream's buffer has room or its reader is gone.
    room: BoxFuture<'static, ()>,
}

/// What callers ask of a running connection.
pub(crate) enum Command {
    /// Write a frame; `written` completes once it is on the wire.
    Send {
        frame: Bytes,
        written: Option<Reply<()>>,
    },
    /// Write an invocation and route its Completion to `reply`.
    Invoke {
        /// The invocation id's number (its text is its decimal digits).
        id: u64,
        frame: Bytes,
        reply: InvokeReply,
    },
    /// Write a stream invocation and route its items to `items`.
    Stream {
        id: String,
        frame: Bytes,
        items: StreamItems,
    },
    /// The caller dropped a stream: forget it and tell the server.
    CancelStream { id: String },
    /// Close the connection: send Close, stop the transport, end.
    Stop,
}

/// A call whose invocation the transport could not send (Server-Sent Events and Long
/// Polling send each frame as a POST, which the server may refuse while the connection
/// lives on): it fails with that error instead of waiting for an answer that cannot come.
enum Unsent {
    Invoke(u64),
    Stream(String),
}

/// Why the loop ended, for the close event and the pending calls.
pub(crate) struct Ended {
    /// The error, or `None` for a clean end (a user stop, a server Close without error).
    pub error: Option<Error>,
    /// Whether the server's Close allowed a reconnect.
    pub allow_reconnect: bool,
}

pub(crate) struct Driver {
    protocol: HubProtocol,
    incoming: LinkReceiver,
    outgoing: Option<LinkSender>,
    decoder: MessageDecoder,
    pending: PendingCalls<InvokeReply, StreamItems>,
    keep_alive: KeepAlive,
    commands: mpsc::UnboundedReceiver<Command>,
    invocations: mpsc::UnboundedSender<Invocation>,
    queue: VecDeque<Queued>,
    stopping: Option<u64>,
    replay: Option<ReplayBuffer>,
    reconnect: Option<ConnectRequest>,
    ack_due_at: Option<u64>,
    log_message_content: bool,
    timer: Option<(u64, BoxFuture<'static, ()>)>,
    turns_without_writing: u32,
    /// Bytes of sequenced frames in `queue`: they count against the replay buffer already.
    queued_sequenced_bytes: usize,
    /// Before a flush, the driver lets the other ready tasks run (see [`Driver::step`]).
    flush_yield: Option<runtime::YieldToOthers>,
    /// Whether it did so for the flush still to come.
    flush_yield_done: bool,
    /// A message waiting for room in its stream's buffer: nothing is read until it has some.
    stall: Option<Stall>,
    stop_requested: Option<watch::Receiver<bool>>,
    /// Whether each frame goes out as a POST the server may refuse while the connection lives
    /// on (SSE, Long Polling). On a WebSocket a failed write ends the connection, which fails
    /// every pending call anyway, so its invocations need no report.
    sends_by_post: bool,
    /// Where the `written` of an invocation's frame reports a failed send.
    unsent_sender: mpsc::UnboundedSender<(Unsent, Error)>,
    unsent: mpsc::UnboundedReceiver<(Unsent, Error)>,
}

impl Driver {
    pub(crate) fn new(
        link: TransportLink,
        decoder: MessageDecoder,
        commands: mpsc::UnboundedReceiver<Command>,
        invocations: mpsc::UnboundedSender<Invocation>,
        settings: DriverSettings,
    ) -> Self {
        let DriverSettings {
            protocol,
            keep_alive,
            stateful,
            log_message_content,
            stop_requested,
        } = settings;
        let (replay, reconnect) = match stateful {
            Some(s) => (Some(ReplayBuffer::new(s.buffer_size)), Some(s.reconnect)),
            None => (None, None),
        };
        let (unsent_sender, unsent) = mpsc::unbounded_channel();
        Driver {
            sends_by_post: link.kind != TransportKind::WebSockets,
            unsent_sender,
            unsent,
            replay,
            reconnect,
            ack_due_at: None,
            log_message_content,
            stop_requested,
            timer: None,
            turns_without_writing: 0,
            queued_sequenced_bytes: 0,
            flush_yield: None,
            flush_yield_done: false,
            stall: None,
            protocol,
            incoming: link.incoming,
            outgoing: Some(link.outgoing),
            decoder,
            pending: PendingCalls::default(),
            keep_alive,
            commands,
            invocations,
            queue: VecDeque::new(),
            stopping: None,
        }
    }

    fn encode(&self, message: &HubMessage) -> Bytes {
        let mut out = Vec::with_capacity(32);
        self.protocol
            .write_message(message, &mut out)
            .expect("control messages always encode");
        out.into()
    }

    /// Queues a frame of a sequenced message (types 1–5).
    fn enqueue(&mut self, data: Bytes, written: Option<Reply<()>>) {
        self.queued_sequenced_bytes += data.len();
        self.queue.push_back(Queued {
            frame: OutgoingFrame { data, written },
            kind: FrameKind::Sequenced,
        });
    }

    /// Queues a Ping, Close, Ack or Sequence, which stateful reconnect never replays.
    fn enqueue_control(&mut self, message: &HubMessage) {
        let data = self.encode(message);
        self.queue.push_back(Queued {
            frame: OutgoingFrame {
                data,
                written: None,
            },
            kind: FrameKind::Control,
        });
    }

    /// Runs until the connection ends; then fails every pending call.
    pub(crate) async fn run(mut self) -> Ended {
        if self.keep_alive.next_deadline().is_some() {
            // The official clients ping right after the handshake.
            self.enqueue_control(&HubMessage::Ping);
        }
        // Messages that came with the handshake answer: the rest of its transport message,
        // which must hold whole messages too.
        let mut ended = self.drain_transport_message();
        while ended.is_none() {
            ended = self.step().await;
        }
        let ended = ended.expect("loop ends with a reason");
        self.fail_everything(&ended).await;
        ended
    }

    async fn step(&mut self) -> Option<Ended> {
        trace!("driver turn");
        let now = runtime::now_ms();
        let deadline = match (self.stopping, self.keep_alive.next_deadline()) {
            (Some(deadline), _) => Some(deadline),
            (None, deadline) => deadline,
        };
        let deadline = match (deadline, self.ack_due_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        // One timer, re-armed only when an earlier deadline appears: deadlines mostly move
        // later (every send pushes the next ping back), so a timer that fires early just
        // finds nothing due and is armed again.
        if let Some(deadline) = deadline {
            if self.timer.as_ref().is_none_or(|(at, _)| deadline < *at) {
                let wait = Duration::from_millis(deadline.saturating_sub(now));
                self.timer = Some((deadline, Box::pin(runtime::sleep(wait))));
            }
        }
        // Writing comes last in the loop, so that a flush carries everything that is ready
        // (one syscall for a burst of calls); when other work keeps the loop busy, it gets a
        // turn now and then all the same.
        if self.has_writes() {
            self.turns_without_writing += 1;
            if self.turns_without_writing >= TURNS_BEFORE_WRITING_ANYWAY {
                self.turns_without_writing = 0;
                self.write_without_waiting();
            }
        }
        // Before flushing, the driver lets the other ready tasks run, so that the calls that
        // the callers it just answered are about to make go out in the same flush. Meanwhile
        // it takes no commands: a caller's command would wake it once per call, only to
        // poll everything again; the yield's end takes them all at once.
        if !self.has_writes() {
            // Everything went out: the next flush yields again.
            self.flush_yield_done = false;
        }
        let only_flush_left = self.queue.is_empty() && self.has_writes();
        if only_flush_left && !self.flush_yield_done && self.flush_yield.is_none() {
            self.flush_yield = Some(runtime::YieldToOthers::default());
        }
        let yielding = self.flush_yield.is_some();
        let can_take_commands = self.queue.len() < QUEUE_LIMIT
            && self.stopping.is_none()
            && !self.replay_full()
            && !yielding;
        let writing = !self.queue.is_empty() || (only_flush_left && !yielding);
        let reading = self.stall.is_none();
        tokio::select! {
            biased;
            event = self.incoming.recv(), if reading => {
                // Everything that already arrived (up to a bound) costs one trip through the
                // select loop.
                let mut event = event;
                let mut taken = 1;
                loop {
                    match event {
                        Some(TransportEvent::Message(bytes)) => {
                            trace_frame(self.log_message_content, "received", &bytes);
                            self.decoder.push_bytes(bytes);
                            if let Some(ended) = self.drain_transport_message() {
                                return Some(ended);
                            }
                        }
                        Some(TransportEvent::Closed(error)) => {
                            return self.transport_closed(error).await
                        }
                        None => return self.transport_closed(None).await,
                    }
                    if taken == 64 || self.stall.is_some() {
                        break;
                    }
                    match self.incoming.try_recv() {
                        Some(next) => {
                            event = Some(next);
                            taken += 1;
                        }
                        None => break,
                    }
                }
                None
            },
            command = self.commands.recv(), if can_take_commands => match command {
                Some(command) => self.on_command(command).or_else(|| self.take_more_commands()),
                None => self.begin_stop(),
            },
            _ = some_or_pending(self.timer.as_mut().map(|(_, sleep)| sleep)) => {
                self.timer = None;
                self.on_timer()
            }
            () = some_or_pending(self.stall.as_mut().map(|stall| &mut stall.room)) => {
                self.unstall()
            }
            Some((call, error)) = self.unsent.recv() => {
                self.on_unsent(call, error);
                None
            }
            // Commands wait (a full replay buffer, a long queue): a stop must not wait with
            // them for the server's Ack. What waits behind it fails with the connection.
            () = stop_requested(&mut self.stop_requested), if !can_take_commands && self.stopping.is_none() => {
                self.begin_stop()
            }
            () = some_or_pending(self.flush_yield.as_mut()), if yielding => {
                self.flush_yield = None;
                self.flush_yield_done = true;
                if let Some(ended) = self.take_more_commands() {
                    return Some(ended);
                }
                self.write_without_waiting();
                None
            }
            writable = writable(&mut self.outgoing, !self.queue.is_empty()), if writing => {
                self.turns_without_writing = 0;
                if writable.is_err() {
                    // The transport is gone; its Closed event says why.
                    self.outgoing = None;
                    return None;
                }
                self.write_queued();
                None
            }
        }
    }

    /// Whether the replay buffer (stateful reconnect) has no room for more sequenced frames,
    /// counting those already queued: then no command is taken until an Ack frees room.
    fn replay_full(&self) -> bool {
        self.replay
            .as_ref()
            .is_some_and(|replay| replay.is_full_with(self.queued_sequenced_bytes))
    }

    /// Whether frames wait for the transport, or were handed over and wait for a flush.
    fn has_writes(&self) -> bool {
        !self.queue.is_empty() || self.outgoing.as_ref().is_some_and(LinkSender::needs_flush)
    }

    /// Writes what can be written without waiting: queued frames, then a flush.
    fn write_without_waiting(&mut self) {
        self.write_queued();
        self.flush_now();
    }

    /// Hands queued frames to the transport; a frame handed over counts as sent for the
    /// keep-alive. Once a stop has handed everything over (its Close included), closing the
    /// sender stops the transport gracefully, and its Closed event ends the loop.
    fn write_queued(&mut self) {
        if self.hand_over_queued() > 0 {
            self.keep_alive.on_sent(runtime::now_ms());
        }
        if self.stopping.is_some() && self.queue.is_empty() {
            self.outgoing = None;
        }
    }

    /// Flushes what was handed to the transport, if it can be done without waiting.
    fn flush_now(&mut self) {
        let Some(sender) = self.outgoing.as_mut() else {
            return;
        };
        if sender.needs_flush() && matches!(sender.flush().now_or_never(), Some(Err(_))) {
            self.outgoing = None;
        }
    }

    /// Hands the transport every queued frame it can take now (the first one it said it
    /// can), and says how many. They are flushed once the other ready tasks have run (see
    /// [`Driver::step`]), or at once when there are many.
    fn hand_over_queued(&mut self) -> usize {
        let Some(sender) = self.outgoing.as_mut() else {
            return 0;
        };
        let mut handed_over = 0;
        while !self.queue.is_empty() && sender.try_ready() {
            handed_over += 1;
            let queued = self.queue.pop_front().expect("queue not empty");
            if queued.kind == FrameKind::Sequenced {
                self.queued_sequenced_bytes -= queued.frame.data.len();
            }
            trace_frame(self.log_message_content, "sent", &queued.frame.data);
            sender.start_send(record_for_replay(&mut self.replay, queued));
        }
        if handed_over >= FLUSH_AT {
            self.flush_now();
        }
        handed_over
    }

    /// Takes the commands already waiting, up to a bound, so a burst of calls costs one trip
    /// through the select loop.
    fn take_more_commands(&mut self) -> Option<Ended> {
        for _ in 0..64 {
            // Nothing goes out after a stop's Close: what is left fails with the connection.
            if self.queue.len() >= QUEUE_LIMIT || self.replay_full() || self.stopping.is_some() {
                break;
            }
            let Ok(command) = self.commands.try_recv() else {
                break;
            };
            if let Some(ended) = self.on_command(command) {
                return Some(ended);
            }
        }
        None
    }

    fn on_command(&mut self, command: Command) -> Option<Ended> {
        match command {
            Command::Send { frame, written } => self.enqueue(frame, written),
            Command::Invoke { id, frame, reply } => {
                self.pending.add_numbered_invoke(id, reply);
                let written = self.report_if_unsent(|| Unsent::Invoke(id));
                self.enqueue(frame, written);
            }
            Command::Stream { id, frame, items } => {
                let written = self.report_if_unsent(|| Unsent::Stream(id.clone()));
                self.pending.add_stream(id, items);
                self.enqueue(frame, written);
            }
            Command::CancelStream { id } => {
                let stalled = self
                    .stall
                    .as_ref()
                    .is_some_and(|stall| stall.stream_id == id);
                if self.pending.cancel_stream(&id).is_some() {
                    let cancel = self.encode(&HubMessage::CancelInvocation(CancelInvocation {
                        invocation_id: id,
                        headers: vec![],
                    }));
                    self.enqueue(cancel, None);
                }
                if stalled {
                    // Its item now goes nowhere, as later ones for the cancelled stream.
                    return self.unstall();
                }
            }
            Command::Stop => return self.begin_stop(),
        }
        None
    }

    /// The `written` of an invocation's frame on a transport that sends by POST: a failed
    /// send comes back to the loop, which fails the call (the official clients reject the
    /// call with the send's error).
    fn report_if_unsent(&self, call: impl FnOnce() -> Unsent) -> Option<Reply<()>> {
        if !self.sends_by_post {
            return None;
        }
        let (unsent, call) = (self.unsent_sender.clone(), call());
        Some(Reply::callback(Box::new(move |outcome| {
            if let Err(error) = outcome {
                let _ = unsent.send((call, error));
            }
        })))
    }

    fn on_unsent(&mut self, call: Unsent, error: Error) {
        match call {
            Unsent::Invoke(id) => {
                if let Some(reply) = self.pending.remove_invoke(&id.to_string()) {
                    reply.send(Err(error));
                }
            }
            Unsent::Stream(id) => {
                if let Some(items) = self.pending.cancel_stream(&id) {
                    items.fail(error);
                }
            }
        }
    }

    /// Sends Close and waits for the transport to confirm. Reading resumes even past a full
    /// stream buffer (the confirmation comes behind what the server sent): items that find
    /// their buffer full are dropped, and the streams end with the connection's error.
    fn begin_stop(&mut self) -> Option<Ended> {
        if self.stopping.is_none() {
            debug!("stopping");
            self.enqueue_control(&HubMessage::Close(Close::default()));
            self.stopping = Some(runtime::now_ms() + STOP_GRACE.as_millis() as u64);
            return self.unstall();
        }
        None
    }

    fn on_timer(&mut self) -> Option<Ended> {
        let now = runtime::now_ms();
        if let Some(deadline) = self.stopping {
            if now >= deadline {
                warn!("the transport did not confirm the stop in time");
                return Some(Ended {
                    error: None,
                    allow_reconnect: false,
                });
            }
            return None;
        }
        if self.ack_due_at.is_some_and(|due| now >= due) {
            self.ack_due_at = None;
            if let Some(ack) = self.replay.as_mut().and_then(ReplayBuffer::take_ack) {
                self.enqueue_control(&ack);
            }
        }
        match self.keep_alive.poll(now) {
            KeepAliveAction::Wait => None,
            KeepAliveAction::SendPing => {
                trace!("sending ping");
                self.enqueue_control(&HubMessage::Ping);
                // Counted as sent now, so a slow queue does not stack up pings.
                self.keep_alive.on_sent(now);
                None
            }
            KeepAliveAction::ServerTimeout => Some(Ended {
                error: Some(Error::timeout(SERVER_TIMEOUT_ELAPSED)),
                allow_reconnect: true,
            }),
        }
    }

    async fn transport_closed(&mut self, error: Option<Error>) -> Option<Ended> {
        if self.stopping.is_some() {
            return Some(Ended {
                error: None,
                allow_reconnect: false,
            });
        }
        debug!(error = ?error, "transport closed");
        if self.replay.is_some() && self.resume().await {
            return None;
        }
        // A clean close (WebSocket 1000, a Long Polling 204) ends the connection without an
        // error, as in the official clients; automatic reconnect still applies.
        Some(Ended {
            allow_reconnect: true,
            error,
        })
    }

    /// Stateful reconnect: connects the same connection again, then sends Sequence and
    /// replays what the server has not acknowledged. One attempt, as the official clients.
    async fn resume(&mut self) -> bool {
        let (Some(replay), Some(request)) = (self.replay.as_mut(), self.reconnect.clone()) else {
            return false;
        };
        replay.on_disconnected();
        self.outgoing = None;
        // Stateful reconnect exists only on WebSockets.
        let Some(transport) = transport::builtin(TransportKind::WebSockets) else {
            return false;
        };
        let link = match transport.connect(request).await {
            Ok(link) => link,
            Err(e) => {
                warn!(error = %e, "stateful reconnect failed");
                return false;
            }
        };
        info!("transport reconnected; resuming the connection");
        let (sequence, frames) = replay.resend();
        self.incoming = link.incoming;
        self.outgoing = Some(link.outgoing);
        self.decoder.clear();
        self.keep_alive.on_received(runtime::now_ms());
        // What is still queued from an interrupted resume is replaced by this one's Sequence
        // and replay: sent again, the server would count it as new messages.
        let pending: Vec<Queued> = self
            .queue
            .drain(..)
            .filter(|queued| queued.kind != FrameKind::Resume)
            .collect();
        for data in std::iter::once(self.encode(&sequence)).chain(frames) {
            self.queue.push_back(Queued {
                frame: OutgoingFrame {
                    data,
                    written: None,
                },
                kind: FrameKind::Resume,
            });
        }
        self.queue.extend(pending);
        true
    }

    /// Decodes a whole transport message (a WebSocket message, an SSE event, a poll's body):
    /// as in the official clients it must hold whole hub messages, so bytes left over at its
    /// end fail the connection at once ("Message is incomplete.", "Cannot read message
    /// size.", "Incomplete message.") instead of waiting for more that would only extend
    /// them. Only a transport message decoded whole counts as activity for the server
    /// timeout, so bytes that never make a message cannot keep a dead connection alive.
    fn drain_transport_message(&mut self) -> Option<Ended> {
        let had_bytes = self.decoder.buffered() > 0;
        if let Some(ended) = self.drain_decoder() {
            return Some(ended);
        }
        if self.stall.is_some() {
            // The rest of the transport message waits in the decoder.
            return None;
        }
        if let Err(e) = self.decoder.finish() {
            warn!(error = %e, "the server sent an incomplete message");
            return Some(Ended {
                error: Some(Error::from(e)),
                allow_reconnect: true,
            });
        }
        if had_bytes {
            self.keep_alive.on_received(runtime::now_ms());
        }
        None
    }

    /// Decodes and processes messages until the decoder is empty or a message has to wait
    /// for room in its stream's buffer.
    fn drain_decoder(&mut self) -> Option<Ended> {
        loop {
            match self.decoder.next_message() {
                Ok(Some(message)) => {
                    if let Some((stream_id, room)) = self.room_needed(&message) {
                        debug!("a stream's buffer is full: reading paused");
                        self.keep_alive.pause_reading();
                        self.stall = Some(Stall {
                            message,
                            stream_id,
                            room,
                        });
                        return None;
                    }
                    if let Some(ended) = self.process(message) {
                        return Some(ended);
                    }
                }
                Ok(None) => return None,
                Err(e) => {
                    warn!(error = %e, "the server sent an invalid message");
                    return Some(Ended {
                        error: Some(Error::from(e)),
                        allow_reconnect: true,
                    });
                }
            }
        }
    }

    /// For a StreamItem whose stream's buffer is full (unless stopping): the stream's id and
    /// a future that resolves once it has room.
    fn room_needed(&self, message: &HubMessage) -> Option<(String, BoxFuture<'static, ()>)> {
        let HubMessage::StreamItem(item) = message else {
            return None;
        };
        if self.stopping.is_some() {
            return None;
        }
        let feed = self.pending.stream(&item.invocation_id)?;
        (!feed.has_room()).then(|| (item.invocation_id.clone(), feed.room()))
    }

    /// Processes the held message (its stream has room now, or is gone, or the connection is
    /// stopping), then the rest of its transport message; reading resumes.
    fn unstall(&mut self) -> Option<Ended> {
        let stall = self.stall.take()?;
        trace!("reading resumed");
        self.keep_alive.resume_reading(runtime::now_ms());
        if let Some(ended) = self.process(stall.message) {
            return Some(ended);
        }
        self.drain_transport_message()
    }

    /// Counts a received message for stateful reconnect, then acts on it.
    fn process(&mut self, message: HubMessage) -> Option<Ended> {
        if let Some(replay) = self.replay.as_mut() {
            match replay.on_received(&message) {
                Inbound::Process => {
                    if message.is_sequenced() && self.ack_due_at.is_none() {
                        self.ack_due_at = Some(runtime::now_ms() + ACK_DELAY_MS);
                    }
                }
                Inbound::Duplicate => {
                    // The buffer decides whether an Ack is due.
                    if self.ack_due_at.is_none() {
                        self.ack_due_at = Some(runtime::now_ms() + ACK_DELAY_MS);
                    }
                    return None;
                }
                Inbound::Ignore => return None,
                Inbound::Fail(text) => {
                    return Some(Ended {
                        error: Some(Error::connection_closed(text)),
                        allow_reconnect: true,
                    })
                }
            }
        }
        self.on_message(message)
    }

    fn on_message(&mut self, message: HubMessage) -> Option<Ended> {
        match message {
            HubMessage::Invocation(invocation) => {
                // The dispatcher runs handlers in order; it ends only with the driver.
                let _ = self.invocations.send(invocation);
            }
            HubMessage::StreamItem(item) => match self.pending.stream_item(item) {
                Delivery::StreamItem(items, payload) => items.push(payload),
                Delivery::InvokeFinished(reply, outcome) => {
                    reply.send(outcome.map_err(Error::hub));
                }
                Delivery::StreamFinished(..) | Delivery::Unknown => {}
            },
            HubMessage::Completion(completion) => match self.pending.complete(completion) {
                Delivery::InvokeFinished(reply, outcome) => {
                    reply.send(outcome.map_err(Error::hub));
                }
                Delivery::StreamFinished(items, outcome) => {
                    if let Err(e) = outcome {
                        items.fail(Error::hub(e));
                    }
                }
                Delivery::StreamItem(..) | Delivery::Unknown => {}
            },
            HubMessage::Close(close) => {
                debug!(error = ?close.error, "the server closed the connection");
                return Some(Ended {
                    error: close.error.map(|e| {
                        Error::connection_closed(format!("Server returned an error on close: {e}"))
                    }),
                    allow_reconnect: close.allow_reconnect == Some(true),
                });
            }
            HubMessage::Ping | HubMessage::Ack { .. } | HubMessage::Sequence { .. } => {}
            HubMessage::StreamInvocation(_) | HubMessage::CancelInvocation(_) => {
                warn!("ignoring a message type a server does not send");
            }
        }
        None
    }

    async fn fail_everything(&mut self, ended: &Ended) {
        let error = ended
            .error
            .clone()
            .unwrap_or_else(|| Error::connection_closed(CONNECTION_CLOSED));
        // A held message's future holds its stream's buffer open.
        self.stall = None;
        let (invokes, streams) = self.pending.drain();
        for reply in invokes {
            reply.send(Err(error.clone()));
        }
        for items in streams {
            items.fail(error.clone());
        }
        for queued in self.queue.drain(..) {
            if let Some(written) = queued.frame.written {
                written.send(Err(error.clone()));
            }
        }
        // After close(), recv() still yields what senders already had a slot for, and ends
        // only when nothing more can arrive: no call slips in after the drain.
        self.commands.close();
        while let Some(command) = self.commands.recv().await {
            match command {
                Command::Send {
                    written: Some(w), ..
                } => {
                    w.send(Err(error.clone()));
                }
                Command::Invoke { reply, .. } => {
                    reply.send(Err(error.clone()));
                }
                Command::Stream { items, .. } => items.fail(error.clone()),
                _ => {}
            }
        }
    }
}

/// With stateful reconnect, keeps a sequenced frame for replay as it goes to the
/// transport. Its sender is told at once that it is sent: from here on a dropped
/// WebSocket no longer loses it (the resume replays it), so a failed write must not fail
/// the caller (the official `MessageBuffer` ignores write errors the same way).
fn record_for_replay(replay: &mut Option<ReplayBuffer>, queued: Queued) -> OutgoingFrame {
    let mut frame = queued.frame;
    if let (Some(replay), FrameKind::Sequenced) = (replay.as_mut(), queued.kind) {
        replay.record(frame.data.clone());
        if let Some(written) = frame.written.take() {
            written.send(Ok(()));
        }
    }
    frame
}

/// Logs a frame: its content only when the user opted in, its size otherwise.
fn trace_frame(log_message_content: bool, direction: &str, data: &[u8]) {
    if log_message_content {
        trace!(direction, content = %String::from_utf8_lossy(data).escape_debug(), "frame");
    } else {
        trace!(direction, bytes = data.len(), "frame");
    }
}

/// Resolves once the transport can take a frame, if there are frames to send; otherwise once
/// what was handed to it is flushed. Cancel-safe.
async fn writable(
    sender: &mut Option<LinkSender>,
    has_frames: bool,
) -> std::result::Result<(), transport::TransportGone> {
    let Some(sender) = sender else {
        return std::future::pending().await;
    };
    if has_frames {
        sender.ready().await
    } else {
        sender.flush().await
    }
}

/// What `future` resolves to; never, without one (a disabled select branch's stand-in).
/// Resolves once `stop()` was called; never when nothing can call it.
async fn stop_requested(requested: &mut Option<watch::Receiver<bool>>) {
    if let Some(requested) = requested {
        if requested.wait_for(|stop| *stop).await.is_ok() {
            return;
        }
    }
    std::future::pending().await
}

async fn some_or_pending<F: std::future::Future + Unpin>(future: Option<&mut F>) -> F::Output {
    match future {
        Some(future) => future.await,
        None => std::future::pending().await,
    }
}

/// Sends a message the caller built (an upload's item or end, a client result) and waits
/// until it is written.
pub(crate) async fn send_message(
    commands: &mpsc::UnboundedSender<Command>,
    protocol: HubProtocol,
    message: &HubMessage,
) -> Result<()> {
    let mut out = Vec::with_capacity(64);
    protocol
        .write_message(message, &mut out)
        .map_err(|e| Error::invalid_argument(e.to_string()))?;
    let (written, done) = oneshot::channel();
    commands
        .send(Command::Send {
            frame: out.into(),
            written: Some(written.into()),
        })
        .map_err(|_| Error::invalid_state(NOT_CONNECTED))?;
    done.await
        .map_err(|_| Error::connection_closed(CONNECTION_CLOSED))?
}

/// The official text for a call on a connection that is not running.
pub(crate) const NOT_CONNECTED: &str =
    "Cannot send data if the connection is not in the 'Connected' State.";
