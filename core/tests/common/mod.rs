//! Helpers shared by the integration tests (`mod common;`).

// Each test crate compiles its own copy and uses only part of it.
#![allow(dead_code)]

use std::time::Duration;

use hublink::{HubConnection, HubConnectionBuilder, HubProtocol, TransportKind};
use tokio::sync::mpsc;
use tokio::time::timeout;

/// Every transport.
pub const TRANSPORTS: [TransportKind; 3] = [
    TransportKind::WebSockets,
    TransportKind::ServerSentEvents,
    TransportKind::LongPolling,
];

/// How long [`echo`]'s steps may take each.
const ECHO_WAIT: Duration = Duration::from_secs(20);

/// Starts `builder`'s connection on `transport`, checks that `Echo` echoes and stops: each
/// step in time.
pub async fn echo(builder: HubConnectionBuilder, transport: TransportKind) {
    let connection = builder.with_transports([transport]).build().unwrap();
    timeout(ECHO_WAIT, connection.start())
        .await
        .unwrap_or_else(|_| panic!("{transport}: start in time"))
        .unwrap_or_else(|e| panic!("{transport}: {e}"));
    let echoed: String = timeout(ECHO_WAIT, connection.invoke("Echo", (transport.name(),)))
        .await
        .unwrap_or_else(|_| panic!("{transport}: the echo in time"))
        .unwrap();
    assert_eq!(echoed, transport.name());
    timeout(ECHO_WAIT, connection.stop())
        .await
        .unwrap_or_else(|_| panic!("{transport}: stop in time"))
        .unwrap();
}

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

pub mod testbed;
pub mod tinyproxy;
pub mod tls_server;
