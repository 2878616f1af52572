//! WebSockets in the browser (PROTOCOL.md §2.2): the page's `WebSocket`, binary type
//! `arraybuffer`.
//!
//! A browser cannot set headers on the upgrade request, so the token goes in the
//! `access_token` query (as the official browser client does); cookies are the page's. Frames
//! are Text for the Text transfer format and Binary for Binary; both kinds are received.
//!
//! The socket's callbacks feed an unbounded channel (a browser socket cannot be paused); one
//! task moves its events to the hub driver's bounded channel and the driver's frames to the
//! socket, so the link is the channel kind, like the HTTP transports. `written` completes once
//! `send` took the frame (the browser buffers it, as the official client relies on).
//!
//! Close: code 1000 after a clean close reports `Closed(None)`, anything else the official
//! "WebSocket closed with status code: `<code> (<reason>).`" Stopping (dropping the link's
//! sender) closes with 1000 and reports `Closed(None)` at once.

use bytes::Bytes;
use js_sys::{ArrayBuffer, Uint8Array};
use tokio::sync::mpsc;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::JsCast;
use web_sys::{BinaryType, CloseEvent, Event, MessageEvent, WebSocket};

use super::websocket_texts::{closed_with_status, FAILED_TO_CONNECT, NOT_OPEN};
use super::*;
use crate::error::Error;
use crate::protocol::negotiate::{websocket_url, with_access_token_query};

/// The browser's WebSocket.
pub(crate) struct BrowserWebSocketTransport;

impl Transport for BrowserWebSocketTransport {
    fn kind(&self) -> TransportKind {
        TransportKind::WebSockets
    }

    fn connect(&self, request: ConnectRequest) -> BoxFuture<'static, Result<TransportLink>> {
        Box::pin(connect(request))
    }
}

/// What the socket's callbacks report.
enum SocketEvent {
    Open,
    Message(Bytes),
    /// An `error` event; a `close` event follows it.
    Error,
    Closed {
        code: u16,
        reason: String,
        clean: bool,
    },
}

/// The callbacks, kept alive while the socket is in use and detached when it is not.
struct Callbacks {
    socket: WebSocket,
    _open: Closure<dyn FnMut(Event)>,
    _message: Closure<dyn FnMut(MessageEvent)>,
    _error: Closure<dyn FnMut(Event)>,
    _close: Closure<dyn FnMut(CloseEvent)>,
}

impl Drop for Callbacks {
    fn drop(&mut self) {
        self.socket.set_onopen(None);
        self.socket.set_onmessage(None);
        self.socket.set_onerror(None);
        self.socket.set_onclose(None);
        if self.socket.ready_state() <= WebSocket::OPEN {
            let _ = self.socket.close_with_code(1000);
        }
    }
}

fn failed_to_connect(cause: &str) -> Error {
    Error::transport(format!("{FAILED_TO_CONNECT} ({cause})"))
}

fn attach(socket: &WebSocket, events: mpsc::UnboundedSender<SocketEvent>) -> Callbacks {
    let sender = events.clone();
    let open = Closure::<dyn FnMut(Event)>::new(move |_: Event| {
        let _ = sender.send(SocketEvent::Open);
    });
    let sender = events.clone();
    let message = Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
        let data = event.data();
        let bytes = if let Some(text) = data.as_string() {
            Bytes::from(text)
        } else if let Some(buffer) = data.dyn_ref::<ArrayBuffer>() {
            Bytes::from(Uint8Array::new(buffer).to_vec())
        } else {
            return;
        };
        let _ = sender.send(SocketEvent::Message(bytes));
    });
    let sender = events.clone();
    let error = Closure::<dyn FnMut(Event)>::new(move |_: Event| {
        let _ = sender.send(SocketEvent::Error);
    });
    let close = Closure::<dyn FnMut(CloseEvent)>::new(move |event: CloseEvent| {
        let _ = events.send(SocketEvent::Closed {
            code: event.code(),
            reason: event.reason(),
            clean: event.was_clean(),
        });
    });
    socket.set_onopen(Some(open.as_ref().unchecked_ref()));
    socket.set_onmessage(Some(message.as_ref().unchecked_ref()));
    socket.set_onerror(Some(error.as_ref().unchecked_ref()));
    socket.set_onclose(Some(close.as_ref().unchecked_ref()));
    Callbacks {
        socket: socket.clone(),
        _open: open,
        _message: message,
        _error: error,
        _close: close,
    }
}

async fn connect(request: ConnectRequest) -> Result<TransportLink> {
    let mut url = websocket_url(&request.url);
    // A browser does not tell why an upgrade failed, so a 401 cannot be told apart here.
    if let Some(token) = request.access_token.get() {
        url = with_access_token_query(&url, &token);
    }
    let socket = WebSocket::new(url.as_str()).map_err(|e| failed_to_connect(&js_text(&e)))?;
    socket.set_binary_type(BinaryType::Arraybuffer);
    let (raw_events, mut raw) = mpsc::unbounded_channel();
    let callbacks = attach(&socket, raw_events);

    let opened = async {
        loop {
            match raw.recv().await {
                Some(SocketEvent::Open) => return Ok(()),
                Some(SocketEvent::Message(_)) | Some(SocketEvent::Error) => {}
                Some(SocketEvent::Closed { code, reason, .. }) => {
                    let cause = if reason.is_empty() {
                        format!("closed with status code {code}")
                    } else {
                        format!("closed with status code {code}: {reason}")
                    };
                    return Err(failed_to_connect(&cause));
                }
                None => return Err(failed_to_connect("the socket went away")),
            }
        }
    };
    tokio::select! {
        opened = opened => opened?,
        _ = crate::runtime::sleep(request.http.timeout) => {
            return Err(Error::timeout(format!(
                "{FAILED_TO_CONNECT} (no answer within {} s)",
                request.http.timeout.as_secs_f64()
            )));
        }
    }
    tracing::debug!("WebSocket connected");

    let (outgoing, frames) = mpsc::channel(OUTGOING_CAPACITY);
    let (events, incoming) = mpsc::channel(INCOMING_CAPACITY);
    crate::runtime::spawn(run(callbacks, request.format, raw, frames, events));
    Ok(TransportLink {
        kind: TransportKind::WebSockets,
        outgoing: outgoing.into(),
        incoming: incoming.into(),
    })
}

/// Moves frames to the socket and its messages to the driver until either side ends.
async fn run(
    callbacks: Callbacks,
    format: TransferFormat,
    mut raw: mpsc::UnboundedReceiver<SocketEvent>,
    mut frames: mpsc::Receiver<OutgoingFrame>,
    events: mpsc::Sender<TransportEvent>,
) {
    let socket = callbacks.socket.clone();
    let outcome = loop {
        tokio::select! {
            event = raw.recv() => match event {
                Some(SocketEvent::Message(data)) => {
                    if events.send(TransportEvent::Message(data)).await.is_err() {
                        break None;
                    }
                }
                Some(SocketEvent::Open) | Some(SocketEvent::Error) => {}
                Some(SocketEvent::Closed { code, reason, clean }) => {
                    break (!clean || code != 1000)
                        .then(|| Error::transport(closed_with_status(code, &reason)));
                }
                None => break Some(Error::transport(closed_with_status(1006, ""))),
            },
            frame = frames.recv() => match frame {
                Some(frame) => {
                    let sent = send(&socket, format, &frame.data);
                    if let Some(written) = frame.written {
                        written.send(sent);
                    }
                }
                // Stopped: close 1000 (when `callbacks` drops) and report a clean end at once.
                None => break None,
            },
        }
    };
    match &outcome {
        None => tracing::debug!("WebSocket transport closed"),
        Some(error) => tracing::debug!(%error, "WebSocket transport failed"),
    }
    drop(callbacks);
    // Frames still waiting fail with the official text.
    frames.close();
    while let Ok(frame) = frames.try_recv() {
        if let Some(written) = frame.written {
            written.send(Err(Error::transport(NOT_OPEN)));
        }
    }
    let _ = events.send(TransportEvent::Closed(outcome)).await;
}

fn send(socket: &WebSocket, format: TransferFormat, data: &[u8]) -> Result<()> {
    if socket.ready_state() != WebSocket::OPEN {
        return Err(Error::transport(NOT_OPEN));
    }
    let sent = match format {
        TransferFormat::Text => match std::str::from_utf8(data) {
            Ok(text) => socket.send_with_str(text),
            Err(e) => return Err(Error::transport(e.to_string())),
        },
        TransferFormat::Binary => socket.send_with_u8_array(data),
    };
    sent.map_err(|e| Error::transport(js_text(&e)))
}

/// A thrown JavaScript value as text.
fn js_text(value: &wasm_bindgen::JsValue) -> String {
    value
        .dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .or_else(|| value.as_string())
        .unwrap_or_else(|| format!("{value:?}"))
}
