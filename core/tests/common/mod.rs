//! Helpers shared by the integration tests (`mod common;`).

// Each test crate compiles its own copy and uses only part of it.
#![allow(dead_code)]

use hublink::{HubConnection, HubProtocol, TransportKind};
use tokio::sync::mpsc;

/// Every transport × protocol combination the spec allows.
pub const COMBINATIONS: [(TransportKind, HubProtocol); 5] = [
    (TransportKind::WebSockets, HubProtocol::Json),
    (TransportKind::WebSockets, HubProtocol::MessagePack),
    (TransportKind::ServerSentEvents, HubProtocol::Json),
    (TransportKind::LongPolling, HubProtocol::Json),
    (TransportKind::LongPolling, HubProtocol::MessagePack),
];

/// The scenario prefix of a combination: `ws.json`, `lp.msgpack`, …
pub fn tag(transport: TransportKind, protocol: HubProtocol) -> String {
    let t = match transport {
        TransportKind::WebSockets => "ws",
        TransportKind::ServerSentEvents => "sse",
        TransportKind::LongPolling => "lp",
    };
    let p = match protocol {
        HubProtocol::Json => "json",
        HubProtocol::MessagePack => "msgpack",
    };
    format!("{t}.{p}")
}

/// The string argument of every call of the client method `method`, in order.
pub fn calls(connection: &HubConnection, method: &str) -> mpsc::UnboundedReceiver<String> {
    let (tx, rx) = mpsc::unbounded_channel();
    connection.on(method, move |(text,): (String,)| {
        let tx = tx.clone();
        async move {
            let _ = tx.send(text);
        }
    });
    rx
}
