//! The floor: a raw tokio-tungstenite client doing the same work with nothing in between.
//!
//! It negotiates and handshakes like hublink, then writes invocation frames that were encoded
//! once before the run, and counts replies by scanning frames (`scan`), never decoding them.
//! One task owns the socket: it reads a frame, queues one new invocation per completion it
//! counted, and flushes the queued frames once no further frame is ready to read.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{FutureExt, SinkExt, StreamExt};
use hublink::HubProtocol;
use hublink_proto::handshake::HandshakeRequest;
use hublink_proto::negotiate::{negotiate_url, parse_negotiate_response, NegotiateAnswer};
use hublink_proto::{HubMessage, Invocation, StreamInvocation};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use url::Url;

use crate::scan::{Counts, Scanner, COMPLETION, STREAM_ITEM};
use crate::{
    measure_run, measure_window, Callers, EchoRun, Sample, CONNECT_TIMEOUT, DRAIN_TIMEOUT,
};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Distinct invocation ids cycled through; far more than can be in flight.
const ID_POOL: usize = 4096;
/// Ids start here so that they are as long as hublink's after its first 100 000 calls.
const FIRST_ID: usize = 100_000;

fn err(context: &str) -> impl Fn(tokio_tungstenite::tungstenite::Error) -> String + '_ {
    move |e| format!("{context}: {e}")
}

fn frame(protocol: HubProtocol, message: &HubMessage) -> Result<Message, String> {
    let mut out = Vec::new();
    protocol
        .write_message(message, &mut out)
        .map_err(|e| e.to_string())?;
    to_message(protocol, out)
}

fn to_message(protocol: HubProtocol, data: Vec<u8>) -> Result<Message, String> {
    Ok(match protocol {
        HubProtocol::Json => Message::Text(
            Utf8Bytes::try_from(Bytes::from(data)).map_err(|_| "a JSON frame is not UTF-8")?,
        ),
        HubProtocol::MessagePack => Message::Binary(Bytes::from(data)),
    })
}

fn data(message: &Message) -> Option<&[u8]> {
    match message {
        Message::Text(text) => Some(text.as_bytes()),
        Message::Binary(data) => Some(data),
        _ => None,
    }
}

/// Negotiates (POST), opens the WebSocket and does the handshake.
async fn connect(hub_url: &str, protocol: HubProtocol) -> Result<Ws, String> {
    let hub = Url::parse(hub_url).map_err(|e| e.to_string())?;
    let http = reqwest::Client::new();
    let response = http
        .post(negotiate_url(&hub, false))
        .send()
        .await
        .map_err(|e| format!("negotiate: {e}"))?;
    let body = response
        .bytes()
        .await
        .map_err(|e| format!("negotiate: {e}"))?;
    let NegotiateAnswer::Connect(answer) =
        parse_negotiate_response(&body).map_err(|e| e.to_string())?
    else {
        return Err("negotiate: no connection in the answer".into());
    };
    let mut url = answer.connect_url(&hub);
    url.set_scheme("ws").map_err(|()| "ws scheme")?;
    // As hublink's transport (core/src/transport/websocket.rs): no Nagle, large messages
    // allowed, a 16 KiB read buffer.
    let config = WebSocketConfig::default()
        .read_buffer_size(16 * 1024)
        .max_message_size(Some(1 << 30))
        .max_frame_size(Some(1 << 30));
    let (mut ws, _) =
        tokio_tungstenite::connect_async_with_config(url.as_str(), Some(config), true)
            .await
            .map_err(err("WebSocket connect"))?;
    let request = HandshakeRequest::new(protocol.name(), 1).to_bytes();
    ws.send(to_message(protocol, request)?)
        .await
        .map_err(err("handshake"))?;
    let answer = ws
        .next()
        .await
        .ok_or("closed during the handshake")?
        .map_err(err("handshake"))?;
    match data(&answer) {
        Some(b"{}\x1e") => Ok(ws),
        other => Err(format!(
            "unexpected handshake answer {:?}",
            other.map(String::from_utf8_lossy)
        )),
    }
}

async fn close(mut ws: Ws) {
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        let _ = ws.close(None).await;
        while let Some(Ok(_)) = ws.next().await {}
    })
    .await;
}

/// A connected socket, and the `Echo("x")` frames to send on it.
async fn connect_for_echo(
    hub_url: &str,
    protocol: HubProtocol,
) -> Result<(Ws, Vec<Message>), String> {
    let ws = tokio::time::timeout(CONNECT_TIMEOUT, connect(hub_url, protocol))
        .await
        .map_err(|_| "connect timed out")??;
    Ok((ws, echo_frames(protocol)?))
}

/// `Echo("x")` invocation frames with distinct ids, encoded once.
fn echo_frames(protocol: HubProtocol) -> Result<Vec<Message>, String> {
    let argument = protocol.payload("x").map_err(|e| e.to_string())?;
    (FIRST_ID..FIRST_ID + ID_POOL)
        .map(|id| {
            frame(
                protocol,
                &HubMessage::Invocation(Invocation {
                    invocation_id: Some(id.to_string()),
                    target: "Echo".into(),
                    arguments: vec![argument.clone()],
                    stream_ids: None,
                    headers: vec![],
                }),
            )
        })
        .collect()
}

/// Echo invocations per second with `inflight` calls outstanding.
///
/// `Callers::OneTask` is the floor itself: one task owns the socket and queues a new frame
/// per Completion counted. `Callers::Tasks` puts `inflight` caller tasks in front of it, each
/// looping one call: a caller hands a oneshot to the socket task and awaits it, and the socket
/// task ends the oldest waiting call per Completion counted (enough for identical calls). That
/// is the floor plus the task structure of `echo ×N tasks`: a channel hop and a task wake-up
/// per call.
pub async fn echo(run: EchoRun<'_>) -> Result<Sample, String> {
    let (ws, frames) = connect_for_echo(run.hub_url, run.protocol).await?;
    if run.callers == Callers::Tasks {
        return echo_with_caller_tasks(run, ws, frames).await;
    }
    let count = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let task = tokio::spawn(run_echo(
        ws,
        Scanner::new(run.protocol),
        frames,
        run.inflight,
        count.clone(),
        stop.clone(),
    ));
    let sample = measure_window(&count, run.warmup, run.duration, run.server_pid).await;
    stop.store(true, Ordering::Relaxed);
    match tokio::time::timeout(DRAIN_TIMEOUT, task).await {
        Ok(Ok(Ok(()))) => Ok(sample),
        Ok(Ok(Err(e))) => Err(e),
        Ok(Err(e)) => Err(format!("the floor task failed: {e}")),
        Err(_) => Err("the in-flight calls did not finish in time".into()),
    }
}

async fn run_echo(
    mut ws: Ws,
    scanner: Scanner,
    frames: Vec<Message>,
    inflight: usize,
    count: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
) -> Result<(), String> {
    let mut next = 0;
    let mut outstanding = 0u64;
    for _ in 0..inflight {
        ws.feed(frames[next].clone()).await.map_err(err("send"))?;
        next = (next + 1) % frames.len();
        outstanding += 1;
    }
    ws.flush().await.map_err(err("send"))?;
    let mut unflushed = false;
    while outstanding > 0 {
        // Read what is ready; flush the queued invocations only before waiting.
        let message = match ws.next().now_or_never() {
            Some(message) => message,
            None => {
                if unflushed {
                    ws.flush().await.map_err(err("send"))?;
                    unflushed = false;
                }
                ws.next().await
            }
        };
        let done = completions(&scanner, message)?;
        if done == 0 {
            continue;
        }
        count.fetch_add(done, Ordering::Relaxed);
        outstanding -= done;
        if !stop.load(Ordering::Relaxed) {
            for _ in 0..done {
                ws.feed(frames[next].clone()).await.map_err(err("send"))?;
                next = (next + 1) % frames.len();
                outstanding += 1;
            }
            unflushed = true;
        }
    }
    close(ws).await;
    Ok(())
}

/// [`echo`] with caller tasks: starts them and the socket task, measures, drains.
async fn echo_with_caller_tasks(
    run: EchoRun<'_>,
    ws: Ws,
    frames: Vec<Message>,
) -> Result<Sample, String> {
    let count = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let (calls, incoming) = mpsc::channel(run.inflight.max(1));
    let socket = tokio::spawn(run_echo_for_callers(
        ws,
        Scanner::new(run.protocol),
        frames,
        incoming,
    ));
    let callers: Vec<_> = (0..run.inflight)
        .map(|_| {
            let (calls, count, stop) = (calls.clone(), count.clone(), stop.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let (done, answered) = oneshot::channel();
                    calls
                        .send(done)
                        .await
                        .map_err(|_| "the socket task ended")?;
                    answered.await.map_err(|_| "the socket task ended")?;
                    count.fetch_add(1, Ordering::Relaxed);
                }
                Ok::<_, String>(())
            })
        })
        .collect();
    drop(calls);
    let sample = measure_window(&count, run.warmup, run.duration, run.server_pid).await;
    stop.store(true, Ordering::Relaxed);
    let drained = tokio::time::timeout(DRAIN_TIMEOUT, async {
        for caller in callers {
            caller
                .await
                .map_err(|e| format!("a caller task failed: {e}"))??;
        }
        socket
            .await
            .map_err(|e| format!("the socket task failed: {e}"))?
    });
    drained
        .await
        .map_err(|_| "the in-flight calls did not finish in time")??;
    Ok(sample)
}

/// The socket task of [`echo_with_caller_tasks`]: writes a frame per call handed over, ends the oldest
/// call per Completion, flushes only before waiting (after letting the woken callers queue
/// their next calls); ends when every caller is gone.
async fn run_echo_for_callers(
    mut ws: Ws,
    scanner: Scanner,
    frames: Vec<Message>,
    mut incoming: mpsc::Receiver<oneshot::Sender<()>>,
) -> Result<(), String> {
    let mut waiting = VecDeque::new();
    let mut next = 0;
    let mut unflushed = false;
    let mut callers_gone = false;
    while !(callers_gone && waiting.is_empty()) {
        while let Ok(call) = incoming.try_recv() {
            feed_call(&mut ws, &frames, &mut next, &mut waiting, call).await?;
            unflushed = true;
        }
        let message = match ws.next().now_or_never() {
            Some(message) => message,
            None if unflushed => {
                // As hublink's driver does: let the callers just woken queue their next calls
                // first, so that one flush carries them all.
                tokio::task::yield_now().await;
                if !incoming.is_empty() {
                    continue;
                }
                ws.flush().await.map_err(err("send"))?;
                unflushed = false;
                continue;
            }
            None => tokio::select! {
                message = ws.next() => message,
                call = incoming.recv(), if !callers_gone => {
                    match call {
                        Some(call) => {
                            feed_call(&mut ws, &frames, &mut next, &mut waiting, call).await?;
                            unflushed = true;
                        }
                        None => callers_gone = true,
                    }
                    continue;
                }
            },
        };
        for _ in 0..completions(&scanner, message)? {
            let call = waiting.pop_front().ok_or("a Completion nobody waits for")?;
            let _ = call.send(());
        }
    }
    close(ws).await;
    Ok(())
}

/// How many Completions a received message holds (0 for a frame without data).
fn completions(
    scanner: &Scanner,
    message: Option<Result<Message, tokio_tungstenite::tungstenite::Error>>,
) -> Result<u64, String> {
    let message = message.ok_or("the server closed the connection")?;
    let message = message.map_err(err("receive"))?;
    let mut counts = Counts::default();
    if let Some(data) = data(&message) {
        scanner.count(data, &mut counts);
    }
    Ok(counts[COMPLETION])
}

/// Feeds the next invocation frame for `call`, which then waits for a Completion.
async fn feed_call(
    ws: &mut Ws,
    frames: &[Message],
    next: &mut usize,
    waiting: &mut VecDeque<oneshot::Sender<()>>,
    call: oneshot::Sender<()>,
) -> Result<(), String> {
    ws.feed(frames[*next].clone()).await.map_err(err("send"))?;
    *next = (*next + 1) % frames.len();
    waiting.push_back(call);
    Ok(())
}

/// One `StreamCount(n)`: sends the StreamInvocation, counts StreamItems until the Completion.
async fn stream_count(
    ws: &mut Ws,
    scanner: &Scanner,
    protocol: HubProtocol,
    id: &str,
    n: u64,
) -> Result<u64, String> {
    let invocation = frame(
        protocol,
        &HubMessage::StreamInvocation(StreamInvocation {
            invocation_id: id.into(),
            target: "StreamCount".into(),
            arguments: vec![protocol.payload(&n).map_err(|e| e.to_string())?],
            stream_ids: None,
            headers: vec![],
        }),
    )?;
    ws.send(invocation).await.map_err(err("send"))?;
    let mut counts = Counts::default();
    while counts[COMPLETION] == 0 {
        let message = ws
            .next()
            .await
            .ok_or("the server closed the connection")?
            .map_err(err("receive"))?;
        if let Some(data) = data(&message) {
            scanner.count(data, &mut counts);
        }
    }
    Ok(counts[STREAM_ITEM])
}

/// Stream items per second of one `StreamCount(n)` (after a warm-up stream of n/10).
pub async fn stream(
    hub_url: &str,
    protocol: HubProtocol,
    n: u64,
    server_pid: u32,
    limit: Duration,
) -> Result<Sample, String> {
    let mut ws = tokio::time::timeout(CONNECT_TIMEOUT, connect(hub_url, protocol))
        .await
        .map_err(|_| "connect timed out")??;
    let scanner = Scanner::new(protocol);
    let run = async {
        stream_count(&mut ws, &scanner, protocol, "1", (n / 10).max(1)).await?;
        let sample = measure_run(
            server_pid,
            stream_count(&mut ws, &scanner, protocol, "2", n),
        )
        .await?;
        if sample.ops != n {
            return Err(format!("{} stream items instead of {n}", sample.ops));
        }
        Ok(sample)
    };
    let sample = tokio::time::timeout(limit, run)
        .await
        .map_err(|_| format!("the streams took more than {} s", limit.as_secs()))??;
    close(ws).await;
    Ok(sample)
}
