//! The hub driver (the task that owns a running connection) fed with arbitrary transport
//! messages and caller commands over an in-memory transport. However they come, it must
//! never panic, and it must end within a bound once the transport closes or `stop()` is
//! called, answering every call it took.
//!
//! The harness only needs: start with settings, deliver a transport message, close the
//! transport, make calls, stop, wait for the end, see the frames written. A sans-IO session
//! offering the same can take the driver's place.

use std::cell::RefCell;
use std::time::Duration;

use arbitrary::Arbitrary;
use hublink::fuzzing::{DriverSetup, DriverUnderTest};
use hublink_proto::HubProtocol;

use crate::generate::{GeneratedMessage, GeneratedTransportMessage, SmallId};
use crate::MAX_MESSAGE_SIZE;

/// How long an input may take, in real time: above the driver's 5 s wait for a stopped
/// transport to confirm, and above the keep-alive timeouts an input can set.
const BOUND: Duration = Duration::from_secs(10);

/// The most real time the pauses of one input add up to.
const MAX_PAUSES_MS: u64 = 20;

/// Keep-alive timers. The defaults (15 s, 30 s) never fire within an input: short ones do.
#[derive(Arbitrary, Debug)]
pub enum KeepAliveSetting {
    /// No timers, as on Long Polling (not with stateful reconnect, which is WebSockets only).
    Off,
    /// A ping every 1–16 ms, the server timeout after 0–63 ms.
    Short { interval: u8, timeout: u8 },
}

impl KeepAliveSetting {
    /// The ping interval and server timeout, in milliseconds.
    fn timers_ms(&self, stateful: bool) -> Option<(u64, u64)> {
        match *self {
            KeepAliveSetting::Off if !stateful => None,
            KeepAliveSetting::Off => Some((1, 0)),
            KeepAliveSetting::Short { interval, timeout } => {
                Some((1 + u64::from(interval % 16), u64::from(timeout % 64)))
            }
        }
    }
}

/// What happens, in order.
#[derive(Arbitrary, Debug)]
pub enum Step {
    /// The transport delivers a message.
    Receive(GeneratedTransportMessage),
    /// A caller invokes (the calls take ids 0, 1, 2… as a connection gives them).
    Invoke,
    /// A caller starts a stream.
    Stream,
    /// A caller drops a stream.
    CancelStream(SmallId),
    /// A caller sends a message it built: a client result or an upload item (other kinds are
    /// skipped).
    Send(GeneratedMessage),
    /// Real time passes (up to 3 ms), for the timers.
    Pause(u8),
    /// The other tasks run.
    Yield,
}

/// How the input ends.
#[derive(Arbitrary, Debug)]
pub enum Ending {
    /// `stop()`.
    Stop,
    /// The transport closes cleanly.
    TransportClosed,
    /// The transport fails.
    TransportFailed,
}

/// A connection's life after the handshake.
#[derive(Arbitrary, Debug)]
pub struct DriverInput {
    pub messagepack: bool,
    pub keep_alive: KeepAliveSetting,
    /// Stateful reconnect with this replay buffer (bytes); its reconnect fails at once.
    pub stateful_buffer: Option<u16>,
    /// The largest hub message; 0 for [`MAX_MESSAGE_SIZE`].
    pub max_message_size: u16,
    /// What came with the handshake answer.
    pub after_handshake: GeneratedTransportMessage,
    pub steps: Vec<Step>,
    pub ending: Ending,
}

thread_local! {
    static RUNTIME: RefCell<Option<tokio::runtime::Runtime>> = const { RefCell::new(None) };
}

/// Runs one input on this thread's runtime, within [`BOUND`].
pub fn driver(input: &DriverInput) {
    RUNTIME.with(|runtime| {
        let mut runtime = runtime.borrow_mut();
        let runtime = runtime.get_or_insert_with(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime")
        });
        runtime.block_on(async {
            tokio::time::timeout(BOUND, run(input))
                .await
                .expect("the driver ended within the bound");
        });
    });
}

async fn run(input: &DriverInput) {
    let protocol = if input.messagepack {
        HubProtocol::MessagePack
    } else {
        HubProtocol::Json
    };
    let mut driver = DriverUnderTest::start(DriverSetup {
        protocol,
        keep_alive_ms: input.keep_alive.timers_ms(input.stateful_buffer.is_some()),
        stateful_buffer: input.stateful_buffer.map(usize::from),
        max_message_size: match input.max_message_size {
            0 => MAX_MESSAGE_SIZE,
            n => usize::from(n),
        },
        after_handshake: input.after_handshake.to_bytes(protocol),
    });

    let mut invokes = Vec::new();
    let mut streams = Vec::new();
    let mut sends = Vec::new();
    let mut paused_ms = 0;
    let mut next_id = 0u64;
    for step in &input.steps {
        match step {
            Step::Receive(message) => {
                if !driver.receive(message.to_bytes(protocol)).await {
                    break;
                }
            }
            Step::Invoke => {
                invokes.extend(driver.invoke(next_id, "Invoked"));
                next_id += 1;
            }
            Step::Stream => {
                streams.extend(driver.stream(&next_id.to_string(), "Streamed"));
                next_id += 1;
            }
            Step::CancelStream(id) => driver.cancel_stream(&id.text()),
            Step::Send(message) => {
                // What callers send themselves: client results and upload items.
                let from_a_caller = matches!(
                    message,
                    GeneratedMessage::StreamItem { .. }
                        | GeneratedMessage::CompletionResult { .. }
                        | GeneratedMessage::CompletionError { .. }
                        | GeneratedMessage::CompletionVoid { .. }
                );
                if let Some(message) = message.to_message(protocol).filter(|_| from_a_caller) {
                    sends.extend(driver.send(&message));
                }
            }
            Step::Pause(ms) => {
                let ms = u64::from(ms % 4).min(MAX_PAUSES_MS - paused_ms);
                paused_ms += ms;
                tokio::time::sleep(Duration::from_millis(ms)).await;
            }
            Step::Yield => tokio::task::yield_now().await,
        }
    }
    match input.ending {
        Ending::Stop => driver.stop(),
        Ending::TransportClosed => driver.close_transport(None).await,
        Ending::TransportFailed => driver.close_transport(Some("fuzzed failure")).await,
    }

    let ended = driver.ended().await;
    if let Some(error) = &ended.error {
        let _ = error.to_string();
    }
    for invoke in invokes {
        let _ = invoke
            .await
            .expect("every invoke the driver took is answered");
    }
    for mut stream in streams {
        while stream.recv().await.is_some() {}
    }
    for send in sends {
        let _ = send.await.expect("every send the driver took is answered");
    }
    for frame in &ended.written {
        protocol
            .parse_messages(frame, usize::MAX)
            .expect("the driver writes whole, valid messages");
    }
}
