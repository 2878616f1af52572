//! HubConnection against the in-repo test server over real sockets, for every transport ×
//! protocol combination the spec allows. Test names carry scenario names (tests/scenarios).

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{stream, StreamExt};
use hublink::{
    Error, ErrorKind, HubConnection, HubConnectionBuilder, HubConnectionState, HubProtocol,
    TransportKind, UploadStream,
};
use hublink_testserver::{TestServer, TestServerOptions};

use common::{calls, tag, COMBINATIONS};
use tokio::sync::mpsc;
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(10);

async fn server() -> TestServer {
    TestServer::start(TestServerOptions::default())
        .await
        .expect("test server starts")
}

fn builder(
    server: &TestServer,
    path: &str,
    transport: TransportKind,
    protocol: HubProtocol,
) -> HubConnectionBuilder {
    HubConnectionBuilder::new()
        .with_url(format!("{}{path}", server.base_url()))
        .with_transports([transport])
        .with_protocol(protocol)
}

async fn connect(
    server: &TestServer,
    transport: TransportKind,
    protocol: HubProtocol,
) -> HubConnection {
    let connection = builder(server, "/testhub", transport, protocol)
        .build()
        .unwrap();
    timeout(WAIT, connection.start())
        .await
        .expect("start in time")
        .unwrap_or_else(|e| panic!("{transport} {protocol:?}: start failed: {e}"));
    connection
}

// scenario: {t}.{p}.invoke.echo-unicode, {t}.{p}.connect.connection-id, {t}.{p}.connect.transport-name
#[tokio::test]
async fn invoke_echo_and_connection_id_on_every_combination() {
    let server = server().await;
    for (transport, protocol) in COMBINATIONS {
        let name = tag(transport, protocol);
        let connection = connect(&server, transport, protocol).await;
        assert_eq!(connection.state(), HubConnectionState::Connected, "{name}");
        assert_eq!(connection.transport(), Some(transport), "{name}");
        let echoed: String = timeout(WAIT, connection.invoke("Echo", ("你好，世界！",)))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(echoed, "你好，世界！", "{name}");
        let server_side_id: String = connection
            .invoke("GetCallerConnectionId", ())
            .await
            .unwrap();
        assert_eq!(Some(server_side_id), connection.connection_id(), "{name}");
        let transport_name: String = connection
            .invoke("GetActiveTransportName", ())
            .await
            .unwrap();
        assert_eq!(transport_name, transport.name(), "{name}");
        timeout(WAIT, connection.stop()).await.unwrap().unwrap();
        assert_eq!(
            connection.state(),
            HubConnectionState::Disconnected,
            "{name}"
        );
        assert_eq!(connection.connection_id(), None, "{name}");
    }
}

// scenario: {t}.{p}.invoke.throw, {t}.{p}.invoke.streaming-method
#[tokio::test]
async fn server_errors_reach_the_caller_with_the_server_text() {
    let server = server().await;
    for (transport, protocol) in COMBINATIONS {
        let name = tag(transport, protocol);
        let connection = connect(&server, transport, protocol).await;
        let err = connection
            .invoke::<()>("ThrowException", ("An error occurred.",))
            .await
            .unwrap_err();
        assert_eq!(
            err,
            Error::new(ErrorKind::Hub, "An unexpected error occurred invoking 'ThrowException' on the server. InvalidOperationException: An error occurred."),
            "{name}"
        );
        let err = connection.invoke::<()>("Stream", ()).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            "The client attempted to invoke the streaming 'Stream' method with a non-streaming invocation.",
            "{name}"
        );
        // The connection survives a failed call.
        let echoed: String = connection.invoke("Echo", ("still here",)).await.unwrap();
        assert_eq!(echoed, "still here");
        connection.stop().await.unwrap();
    }
}

// scenario: {t}.{p}.send.fire-and-forget, {t}.{p}.on.invoke-with-string
#[tokio::test]
async fn send_and_server_to_client_calls_with_case_insensitive_names() {
    let server = server().await;
    for (transport, protocol) in COMBINATIONS {
        let name = tag(transport, protocol);
        let connection = builder(&server, "/testhub", transport, protocol)
            .build()
            .unwrap();
        let mut rx = calls(&connection, "message");
        connection.start().await.unwrap();
        connection
            .send("InvokeWithString", ("hello from send",))
            .await
            .unwrap();
        let got = timeout(WAIT, rx.recv()).await.expect("message in time");
        assert_eq!(got.as_deref(), Some("hello from send"), "{name}");
        connection.stop().await.unwrap();
    }
}

// scenario: {t}.{p}.stream.server, {t}.{p}.stream.count, {t}.{p}.stream.empty, {t}.{p}.stream.error
#[tokio::test]
async fn server_streams_deliver_items_in_order() {
    let server = server().await;
    for (transport, protocol) in COMBINATIONS {
        let name = tag(transport, protocol);
        let connection = connect(&server, transport, protocol).await;
        let items: Vec<String> = connection
            .stream::<String>("Stream", ())
            .unwrap()
            .map(|i| i.unwrap())
            .collect()
            .await;
        assert_eq!(items, ["a", "b", "c"], "{name}");
        let numbers: Vec<i64> = connection
            .stream::<i64>("StreamCount", (100,))
            .unwrap()
            .map(|i| i.unwrap())
            .collect()
            .await;
        assert_eq!(numbers, (0..100).collect::<Vec<_>>(), "{name}");
        let empty: Vec<i32> = connection
            .stream::<i32>("EmptyStream", ())
            .unwrap()
            .map(|i| i.unwrap())
            .collect()
            .await;
        assert!(empty.is_empty(), "{name}");
        let mut failing = connection
            .stream::<String>("StreamThrowException", ("boom",))
            .unwrap();
        let err = timeout(WAIT, failing.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap_err();
        assert!(err.to_string().contains("boom"), "{name}: {err}");
        connection.stop().await.unwrap();
    }
}

// scenario: {t}.{p}.stream.cancel
#[tokio::test]
async fn dropping_a_stream_cancels_it_on_the_server() {
    let server = server().await;
    for (transport, protocol) in COMBINATIONS {
        let name = tag(transport, protocol);
        let connection = builder(&server, "/testhub", transport, protocol)
            .build()
            .unwrap();
        let (tx, mut rx) = mpsc::unbounded_channel();
        connection.on("StreamCanceled", move |(): ()| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(());
            }
        });
        connection.start().await.unwrap();
        let infinite = connection.stream::<String>("InfiniteStream", ()).unwrap();
        // Make sure the server started the stream before cancelling it.
        let _: String = connection.invoke("Echo", ("sync",)).await.unwrap();
        drop(infinite);
        timeout(WAIT, rx.recv())
            .await
            .unwrap_or_else(|_| panic!("{name}: the server never saw the cancellation"));
        connection.stop().await.unwrap();
    }
}

// scenario: {t}.{p}.stream.upload, {t}.{p}.stream.upload-sum, {t}.{p}.stream.upload-error
#[tokio::test]
async fn upload_streams_reach_the_server() {
    let server = server().await;
    for (transport, protocol) in COMBINATIONS {
        let name = tag(transport, protocol);
        let connection = connect(&server, transport, protocol).await;
        let words = UploadStream::new(stream::iter(["Hello", " ", "world", "!"]));
        let joined: String = timeout(WAIT, connection.invoke("StreamingConcat", (words,)))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(joined, "Hello world!", "{name}");
        let numbers = UploadStream::new(stream::iter(1..=100i64));
        let sum: i64 = connection.invoke("UploadSum", (numbers,)).await.unwrap();
        assert_eq!(sum, 5050, "{name}");
        let failing = UploadStream::fallible(stream::iter([Ok("a"), Err("Something bad")]));
        let err = connection
            .invoke::<String>("StreamingConcat", (failing,))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("Something bad"), "{name}: {err}");
        connection.stop().await.unwrap();
    }
}

// scenario: {t}.{p}.client-result.value, {t}.{p}.client-result.error, {t}.{p}.client-result.no-handler
#[tokio::test]
async fn client_results_answer_the_server() {
    let server = server().await;
    let http = reqwest::Client::new();
    for (transport, protocol) in COMBINATIONS {
        let name = tag(transport, protocol);
        let connection = builder(&server, "/testhub", transport, protocol)
            .build()
            .unwrap();
        let mode = Arc::new(Mutex::new(0));
        let m = mode.clone();
        connection.on("Result", move |(): ()| {
            let m = *m.lock().unwrap();
            async move {
                match m {
                    0 => Ok(10),
                    _ => Err("Error: from callback".to_owned()),
                }
            }
        });
        connection.start().await.unwrap();
        let id = connection.connection_id().unwrap();
        let url = format!("{}/clientresult/{id}", server.base_url());
        let answer = http.get(&url).send().await.unwrap().text().await.unwrap();
        assert_eq!(answer, "10", "{name}");
        *mode.lock().unwrap() = 1;
        let answer = http.get(&url).send().await.unwrap().text().await.unwrap();
        assert_eq!(answer, "Error: from callback", "{name}");
        connection.off("Result");
        let answer = http.get(&url).send().await.unwrap().text().await.unwrap();
        assert_eq!(answer, "Client didn't provide a result.", "{name}");
        connection.stop().await.unwrap();
    }
}

// scenario: ws.json.close.pending-fail, lp.json.close.pending-fail
#[tokio::test]
async fn pending_calls_fail_when_the_connection_ends() {
    let server = server().await;
    for transport in [TransportKind::WebSockets, TransportKind::LongPolling] {
        let connection = connect(&server, transport, HubProtocol::Json).await;
        let closed = Arc::new(Mutex::new(Vec::new()));
        let c = closed.clone();
        connection.on_close(move |e| c.lock().unwrap().push(e.map(|e| e.to_string())));
        let mut infinite = connection.stream::<String>("InfiniteStream", ()).unwrap();
        let stopper = connection.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            stopper.stop().await.unwrap();
        });
        let end = timeout(WAIT, infinite.next())
            .await
            .expect("the stream ends, no hang");
        match end {
            Some(Err(e)) => assert!(e.to_string().contains("canceled"), "{e}"),
            other => panic!("{transport}: expected an error, got {other:?}"),
        }
        timeout(WAIT, async {
            while connection.state() != HubConnectionState::Disconnected {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .unwrap();
        assert_eq!(*closed.lock().unwrap(), vec![None], "{transport}");
        let err = connection
            .invoke::<String>("Echo", ("x",))
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "Cannot send data if the connection is not in the 'Connected' State."
        );
    }
}

// scenario: any.any.negotiate.redirect
#[tokio::test]
async fn negotiate_redirects_are_followed() {
    let server = server().await;
    let connection = HubConnectionBuilder::new()
        .with_url(format!("{}/redirect", server.base_url()))
        .build()
        .unwrap();
    connection.start().await.unwrap();
    let redirects: i32 = connection.invoke("GetNumRedirects", ()).await.unwrap();
    assert!(redirects >= 1, "{redirects}");
    connection.stop().await.unwrap();
}

// scenario: any.any.negotiate.bad-negotiate, any.any.negotiate.not-found
#[tokio::test]
async fn negotiate_errors_surface_with_the_official_texts() {
    let server = server().await;
    let connection = HubConnectionBuilder::new()
        .with_url(format!("{}/bad-negotiate", server.base_url()))
        .build()
        .unwrap();
    let err = connection.start().await.unwrap_err();
    assert_eq!(
        err,
        Error::new(
            ErrorKind::Negotiation,
            "Failed to complete negotiation with the server: Error: Some response from server: Status code '400'"
        )
        .with_status(400)
    );
    assert_eq!(connection.state(), HubConnectionState::Disconnected);
    let connection = HubConnectionBuilder::new()
        .with_url(format!("{}/does-not-exist", server.base_url()))
        .build()
        .unwrap();
    let err = connection.start().await.unwrap_err();
    assert!(
        err.to_string().ends_with(
            "Either this is not a SignalR endpoint or there is a proxy blocking the connection."
        ),
        "{err}"
    );
}

// scenario: any.any.auth.unauthorized, ws.json.auth.access-token-factory-async, sse.json.auth.access-token-factory-async, lp.json.auth.access-token-factory-async
#[tokio::test]
async fn access_tokens_authorize_every_transport() {
    let server = server().await;
    let http = reqwest::Client::new();
    let unauthorized = HubConnectionBuilder::new()
        .with_url(format!("{}/authorizedhub", server.base_url()))
        .build()
        .unwrap();
    let err = unauthorized.start().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Negotiation, "{err:?}");
    assert_eq!(err.status(), Some(401), "{err:?}");
    for transport in [
        TransportKind::WebSockets,
        TransportKind::ServerSentEvents,
        TransportKind::LongPolling,
    ] {
        let calls = Arc::new(Mutex::new(0));
        let c = calls.clone();
        let url = format!("{}/generateJwtToken", server.base_url());
        let http = http.clone();
        let connection = HubConnectionBuilder::new()
            .with_url(format!("{}/authorizedhub", server.base_url()))
            .with_transports([transport])
            .with_access_token_factory(move || {
                *c.lock().unwrap() += 1;
                let http = http.clone();
                let url = url.clone();
                async move {
                    let token = http.get(url).send().await.map_err(|e| e.to_string())?;
                    Ok(Some(token.text().await.map_err(|e| e.to_string())?))
                }
            })
            .build()
            .unwrap();
        connection
            .start()
            .await
            .unwrap_or_else(|e| panic!("{transport}: {e}"));
        let echoed: String = connection.invoke("Echo", ("secret",)).await.unwrap();
        assert_eq!(echoed, "secret");
        assert_eq!(
            *calls.lock().unwrap(),
            1,
            "{transport}: one negotiate, one token"
        );
        connection.stop().await.unwrap();
    }
}

// scenario: {t}.json.headers.custom, {t}.json.headers.user-agent, {t}.json.cookies.preserved, {t}.json.cookies.expired-dropped
#[tokio::test]
async fn headers_user_agent_and_cookies_reach_the_server() {
    let server = server().await;
    for transport in [
        TransportKind::WebSockets,
        TransportKind::ServerSentEvents,
        TransportKind::LongPolling,
    ] {
        let connection = HubConnectionBuilder::new()
            .with_url(format!("{}/testhub", server.base_url()))
            .with_transports([transport])
            .with_header("X-Tenant", "a")
            .build()
            .unwrap();
        connection.start().await.unwrap();
        let tenant: Option<String> = connection.invoke("GetHeader", ("X-Tenant",)).await.unwrap();
        assert_eq!(tenant.as_deref(), Some("a"), "{transport}");
        let agent: Option<String> = connection
            .invoke("GetHeader", ("User-Agent",))
            .await
            .unwrap();
        assert!(
            agent.unwrap_or_default().starts_with("hublink/"),
            "{transport}"
        );
        let cookie: Option<String> = connection
            .invoke("GetCookie", ("testCookie",))
            .await
            .unwrap();
        assert_eq!(cookie.as_deref(), Some("testValue"), "{transport}");
        let expired: Option<String> = connection
            .invoke("GetCookie", ("expiredCookie",))
            .await
            .unwrap();
        assert_eq!(expired, None, "{transport}");
        connection.stop().await.unwrap();
    }
}

// scenario: ws.json.negotiate.skip-negotiation
#[tokio::test]
async fn skip_negotiation_connects_websockets_directly() {
    let server = server().await;
    let connection = HubConnectionBuilder::new()
        .with_url(format!("{}/testhub", server.base_url()))
        .with_transports([TransportKind::WebSockets])
        .skip_negotiation(true)
        .build()
        .unwrap();
    connection.start().await.unwrap();
    assert_eq!(connection.connection_id(), None);
    let echoed: String = connection.invoke("Echo", ("direct",)).await.unwrap();
    assert_eq!(echoed, "direct");
    connection.stop().await.unwrap();
    let refused = HubConnectionBuilder::new()
        .with_url(format!("{}/testhub", server.base_url()))
        .skip_negotiation(true)
        .build()
        .unwrap();
    assert_eq!(
        refused.start().await.unwrap_err().to_string(),
        "Negotiation can only be skipped when using the WebSocket transport directly."
    );
}

// scenario: any.json.negotiate.no-websockets-sse, any.msgpack.negotiate.no-websockets-long-polling
#[tokio::test]
async fn without_websockets_json_uses_sse_and_messagepack_uses_long_polling() {
    let server = server().await;
    for (protocol, expected) in [
        (HubProtocol::Json, TransportKind::ServerSentEvents),
        (HubProtocol::MessagePack, TransportKind::LongPolling),
    ] {
        let connection = HubConnectionBuilder::new()
            .with_url(format!("{}/testhub-nowebsockets", server.base_url()))
            .with_protocol(protocol)
            .build()
            .unwrap();
        connection.start().await.unwrap();
        assert_eq!(connection.transport(), Some(expected), "{protocol:?}");
        connection.stop().await.unwrap();
    }
}

// scenario: ws.json.timeout.server-timeout
#[tokio::test]
async fn a_silent_server_times_out_with_the_official_text() {
    let server = TestServer::start(TestServerOptions {
        keep_alive_interval: Duration::from_secs(60),
        ..TestServerOptions::default()
    })
    .await
    .unwrap();
    let connection = HubConnectionBuilder::new()
        .with_url(format!("{}/testhub", server.base_url()))
        .with_transports([TransportKind::WebSockets])
        .with_server_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let (tx, mut rx) = mpsc::unbounded_channel();
    connection.on_close(move |e| {
        let _ = tx.send(e);
    });
    connection.start().await.unwrap();
    let error = timeout(WAIT, rx.recv()).await.unwrap().unwrap();
    assert_eq!(
        error,
        Some(Error::new(
            ErrorKind::Timeout,
            "Server timeout elapsed without receiving a message from the server."
        ))
    );
}

// scenario: ws.json.close.no-reconnect
#[tokio::test]
async fn a_server_close_with_an_error_closes_with_its_text() {
    let server = server().await;
    let connection = connect(&server, TransportKind::WebSockets, HubProtocol::Json).await;
    let (tx, mut rx) = mpsc::unbounded_channel();
    connection.on_close(move |e| {
        let _ = tx.send(e);
    });
    let _ = connection.send("CloseMe", ("Error!", false)).await;
    let error = timeout(WAIT, rx.recv()).await.unwrap().unwrap();
    assert_eq!(
        error.map(|e| e.to_string()).as_deref(),
        Some("Server returned an error on close: Error!")
    );
}

// scenario: ws.json.send.burst
/// A burst of concurrent sends larger than the command channel (256): the sends that find it
/// full wait for room, and every one of them still arrives.
#[tokio::test]
async fn sends_that_find_the_command_channel_full_wait_and_all_arrive() {
    const SENDS: usize = 1000;
    let server = server().await;
    let connection = builder(
        &server,
        "/testhub",
        TransportKind::WebSockets,
        HubProtocol::Json,
    )
    .build()
    .unwrap();
    let mut messages = calls(&connection, "Message");
    connection.start().await.unwrap();
    let sends = (0..SENDS).map(|n| {
        let connection = connection.clone();
        async move {
            connection
                .send("InvokeWithString", (format!("m{n}"),))
                .await
        }
    });
    let results = timeout(WAIT, futures_util::future::join_all(sends))
        .await
        .expect("the burst is sent in time");
    assert!(results.iter().all(Result::is_ok), "every send succeeds");
    let mut arrived = std::collections::HashSet::new();
    for _ in 0..SENDS {
        arrived.insert(timeout(WAIT, messages.recv()).await.unwrap().unwrap());
    }
    assert_eq!(arrived.len(), SENDS, "every send arrives, once");
    connection.stop().await.unwrap();
}
