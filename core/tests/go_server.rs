//! HubConnection against a server hublink did not write: the third-party Go server
//! philippseith/signalr v0.11.0 (tests/go-server), built with the Go toolchain. Its known
//! differences (tests/go-server/README.md) are expected: no Long Polling, unordered
//! completions, panic texts ending in a newline, a malformed MessagePack Close.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use futures_util::{stream, StreamExt};
use hublink::{HubConnection, HubConnectionBuilder, HubProtocol, TransportKind, UploadStream};
use tokio::sync::mpsc;
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(10);

const COMBINATIONS: [(TransportKind, HubProtocol); 3] = [
    (TransportKind::WebSockets, HubProtocol::Json),
    (TransportKind::WebSockets, HubProtocol::MessagePack),
    (TransportKind::ServerSentEvents, HubProtocol::Json),
];

/// Builds the Go host once per test binary (the Go toolchain is required: a missing one fails
/// the tests rather than skipping them).
fn go_binary() -> &'static PathBuf {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        if let Ok(path) = std::env::var("GO_SERVER_BIN") {
            return PathBuf::from(path);
        }
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
        let out = root.join("target").join("hublink-goserver");
        let status = Command::new("go")
            .args(["build", "-o"])
            .arg(&out)
            .arg(".")
            .current_dir(root.join("tests/go-server"))
            .status()
            .expect("the Go toolchain is needed to build tests/go-server");
        assert!(status.success(), "go build failed");
        out
    })
}

struct GoServer {
    child: Child,
    url: String,
}

impl GoServer {
    fn start() -> GoServer {
        let mut child = Command::new(go_binary())
            .args(["-log", "none"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the Go server");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line.trim().to_owned());
        });
        let url = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the Go server prints its URL within 30 s");
        assert!(url.starts_with("http://127.0.0.1:"), "{url}");
        GoServer { child, url }
    }
}

impl Drop for GoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn connect(
    server: &GoServer,
    transport: TransportKind,
    protocol: HubProtocol,
) -> HubConnection {
    let connection = HubConnectionBuilder::new()
        .with_url(format!("{}/testhub", server.url))
        .with_transports([transport])
        .with_protocol(protocol)
        .build()
        .unwrap();
    timeout(WAIT, connection.start())
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("{transport} {protocol:?}: {e}"));
    connection
}

// scenario: ws.json.invoke.echo, ws.msgpack.invoke.echo, sse.json.invoke.echo
// scenario: ws.json.invoke.throw, ws.msgpack.invoke.throw, sse.json.invoke.throw
#[tokio::test]
async fn go_server_invoke_and_errors() {
    let server = GoServer::start();
    for (transport, protocol) in COMBINATIONS {
        let connection = connect(&server, transport, protocol).await;
        let echoed: String = connection.invoke("Echo", ("你好，世界！",)).await.unwrap();
        assert_eq!(echoed, "你好，世界！");
        let sum: i64 = connection.invoke("Add", (40, 2)).await.unwrap();
        assert_eq!(sum, 42);
        let err = connection
            .invoke::<()>("ThrowException", ("An error occurred.",))
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "An error occurred.\n",
            "the Go server's panic text"
        );
        let bytes: Vec<u8> = connection
            .invoke::<serde_bytes_like::Bytes>(
                "EchoBytes",
                (serde_bytes_like::Bytes(vec![1, 2, 3]),),
            )
            .await
            .unwrap()
            .0;
        assert_eq!(bytes, [1, 2, 3]);
        connection.stop().await.unwrap();
    }
}

// scenario: ws.json.stream.server, ws.msgpack.stream.server, sse.json.stream.server
// scenario: ws.json.stream.upload, ws.msgpack.stream.upload, sse.json.stream.upload
#[tokio::test]
async fn go_server_streams_both_ways() {
    let server = GoServer::start();
    for (transport, protocol) in COMBINATIONS {
        let connection = connect(&server, transport, protocol).await;
        let items: Vec<String> = connection
            .stream::<String>("Stream", ())
            .unwrap()
            .map(|i| i.unwrap())
            .collect()
            .await;
        assert_eq!(items, ["a", "b", "c"]);
        let numbers: Vec<i64> = connection
            .stream::<i64>("StreamCount", (50,))
            .unwrap()
            .map(|i| i.unwrap())
            .collect()
            .await;
        assert_eq!(numbers, (0..50).collect::<Vec<_>>());
        let words = UploadStream::new(stream::iter(["Hello", " ", "world!"]));
        let joined: String = connection
            .invoke("StreamingConcat", (words,))
            .await
            .unwrap();
        assert_eq!(joined, "Hello world!");
        let sum: i64 = connection
            .invoke("UploadSum", (UploadStream::new(stream::iter(1..=10)),))
            .await
            .unwrap();
        assert_eq!(sum, 55);
        connection.stop().await.unwrap();
    }
}

// scenario: ws.json.on.invoke-with-string, ws.msgpack.on.invoke-with-string, sse.json.on.invoke-with-string
// scenario: ws.json.groups.send, ws.msgpack.groups.send, sse.json.groups.send
#[tokio::test]
async fn go_server_calls_the_client_and_groups() {
    let server = GoServer::start();
    for (transport, protocol) in COMBINATIONS {
        let member = connect(&server, transport, protocol).await;
        let sender = connect(&server, transport, protocol).await;
        let (tx, mut rx) = mpsc::unbounded_channel();
        let to_group = tx.clone();
        member.on("MESSAGE", move |(text,): (String,)| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(text);
            }
        });
        member.on("groupmessage", move |(_group, text): (String, String)| {
            let tx = to_group.clone();
            async move {
                let _ = tx.send(text);
            }
        });
        member
            .send("InvokeWithString", ("to myself",))
            .await
            .unwrap();
        assert_eq!(
            timeout(WAIT, rx.recv()).await.unwrap().as_deref(),
            Some("to myself")
        );
        member.invoke::<()>("JoinGroup", ("room",)).await.unwrap();
        sender
            .invoke::<()>("SendToGroup", ("room", "to the room"))
            .await
            .unwrap();
        assert_eq!(
            timeout(WAIT, rx.recv()).await.unwrap().as_deref(),
            Some("to the room")
        );
        member.stop().await.unwrap();
        sender.stop().await.unwrap();
    }
}

/// `Vec<u8>` as MessagePack `bin` / JSON base64, the way the Go server's `[]byte` travels.
mod serde_bytes_like {
    use base64::Engine;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub struct Bytes(pub Vec<u8>);

    impl Serialize for Bytes {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            if s.is_human_readable() {
                s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(&self.0))
            } else {
                s.serialize_bytes(&self.0)
            }
        }
    }

    impl<'de> Deserialize<'de> for Bytes {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            if d.is_human_readable() {
                let text = String::deserialize(d)?;
                base64::engine::general_purpose::STANDARD
                    .decode(text)
                    .map(Bytes)
                    .map_err(serde::de::Error::custom)
            } else {
                struct V;
                impl<'de> serde::de::Visitor<'de> for V {
                    type Value = Bytes;
                    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                        f.write_str("bytes")
                    }
                    fn visit_bytes<E>(self, v: &[u8]) -> Result<Bytes, E> {
                        Ok(Bytes(v.to_vec()))
                    }
                    fn visit_byte_buf<E>(self, v: Vec<u8>) -> Result<Bytes, E> {
                        Ok(Bytes(v))
                    }
                }
                d.deserialize_bytes(V)
            }
        }
    }
}
