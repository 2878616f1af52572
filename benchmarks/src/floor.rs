//! The floor: a raw tokio-tungstenite client doing the same work with nothing in between.
//!
//! It negotiates and handshakes like hublink, then writes invocation frames that were encoded
//! once before the run, and counts replies by scanning frames (`scan`), never decoding them.
//! One task owns the socket: it reads a frame, queues one new invocation per completion it
//! counted, and flushes the queued frames once no further frame is ready to read.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{FutureExt, SinkExt, StreamExt};
use hublink::protocol::handshake::HandshakeRequest;
use hublink::protocol::negotiate::{negotiate_url, parse_negotiate_response, NegotiateAnswer};
use hublink::protocol::{HubMessage, Invocation, StreamInvocation};
use hublink::HubProtocol;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use url::Url;

use crate::scan::{Counts, Scanner, COMPLETION, STREAM_ITEM};
use crate::{measure_run, measure_window, Sample, CONNECT_TIMEOUT, DRAIN_TIMEOUT};

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

/// Echo invocations per second with `inflight` calls outstanding.
pub async fn echo(
    hub_url: &str,
    protocol: HubProtocol,
    inflight: usize,
    warmup: Duration,
    duration: Duration,
    server_pid: u32,
) -> Result<Sample, String> {
    let ws = tokio::time::timeout(CONNECT_TIMEOUT, connect(hub_url, protocol))
        .await
        .map_err(|_| "connect timed out")??;
    let argument = protocol.payload("x").map_err(|e| e.to_string())?;
    let frames = (FIRST_ID..FIRST_ID + ID_POOL)
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
        .collect::<Result<Vec<_>, _>>()?;
    let count = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let task = tokio::spawn(run_echo(
        ws,
        Scanner::new(protocol),
        frames,
        inflight,
        count.clone(),
        stop.clone(),
    ));
    let sample = measure_window(&count, warmup, duration, server_pid).await;
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
        let message = message.ok_or("the server closed the connection")?;
        let message = message.map_err(err("receive"))?;
        let Some(data) = data(&message) else {
            continue;
        };
        let mut counts = Counts::default();
        scanner.count(data, &mut counts);
        let done = counts[COMPLETION];
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
