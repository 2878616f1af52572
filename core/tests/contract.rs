//! The binding contract against the in-repo test server over real sockets: the surface every
//! binding wraps (options as one struct, calls on dynamic values submitted when they are
//! made, stream handles with batches and cancel, handler objects, events as listeners and as
//! a pull stream, the shared runtime) and the error kinds they map. Scenario names:
//! tests/scenarios.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use hublink::{
    Argument, Arguments, BoxFuture, ConnectionEvent, ConnectionOptions, DefaultRetryPolicy,
    ErrorKind, Handler, HandlerOutcome, HubConnection, HubConnectionState, HubProtocol, Payload,
    TransportKind, UploadStream, Value,
};
use hublink_testserver::{TestServer, TestServerOptions};
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(10);

async fn server() -> TestServer {
    TestServer::start(TestServerOptions::default())
        .await
        .expect("test server starts")
}

fn options(
    server: &TestServer,
    path: &str,
    transport: &str,
    protocol: HubProtocol,
) -> ConnectionOptions {
    let mut options = ConnectionOptions::new(format!("{}{path}", server.base_url()));
    options.transports = hublink::parse_transports([transport]).unwrap();
    options.protocol = protocol;
    options
}

async fn connect(options: ConnectionOptions) -> HubConnection {
    let connection = HubConnection::new(options).unwrap();
    timeout(WAIT, connection.start())
        .await
        .expect("start in time")
        .expect("start");
    connection
}

fn texts(values: &Value) -> Vec<Value> {
    match values {
        Value::Array(items) => items.clone(),
        other => panic!("not an array: {other:?}"),
    }
}

// scenario: any.any.order.sends-in-order, any.any.order.invoke-before-send
#[tokio::test]
async fn calls_reach_the_server_in_the_order_they_were_made() {
    let server = server().await;
    for (transport, protocol) in [
        ("WebSockets", HubProtocol::Json),
        ("webSockets", HubProtocol::MessagePack),
        ("LongPolling", HubProtocol::MessagePack),
        ("ServerSentEvents", HubProtocol::Json),
    ] {
        let connection = connect(options(&server, "/testhub", transport, protocol)).await;
        // Made without awaiting, awaited in the reverse order: the order of the calls counts.
        let invoked = connection.invoke_value("Record", vec![Value::from("invoke")]);
        let sent = connection.send("Record", vec![Value::from("send")]);
        sent.await.unwrap();
        assert_eq!(invoked.await.unwrap(), Value::Int(0), "{transport}");
        let sends: Vec<_> = (0..10_000)
            .map(|i| connection.send("Record", vec![Value::Int(i)]))
            .collect();
        for result in join_all(sends.into_iter().rev()).await {
            result.unwrap();
        }
        let recorded = texts(&connection.invoke_value("Recorded", ()).await.unwrap());
        assert_eq!(recorded[..2], [Value::from("invoke"), Value::from("send")]);
        let numbers: Vec<Value> = (0..10_000).map(Value::Int).collect();
        assert!(
            recorded[2..] == numbers[..],
            "{transport} {protocol:?}: out of order"
        );
        connection.stop().await.unwrap();
    }
}

// scenario: any.any.order.callbacks
#[tokio::test]
async fn callback_calls_are_answered_once_each_in_order() {
    let server = server().await;
    let connection = connect(options(
        &server,
        "/testhub",
        "WebSockets",
        HubProtocol::Json,
    ))
    .await;
    let (done, mut answers) = tokio::sync::mpsc::unbounded_channel();
    for i in 0..100 {
        let done = done.clone();
        connection.invoke_then("Echo", vec![Value::Int(i)], move |result| {
            let _ = done.send(result.unwrap());
        });
    }
    let done2 = done.clone();
    connection.send_then("Record", vec![Value::Null], move |result| {
        let _ = done2.send(Value::Bool(result.is_ok()));
    });
    drop(done);
    let mut got = Vec::new();
    while let Some(answer) = timeout(WAIT, answers.recv()).await.unwrap() {
        got.push(answer);
    }
    // The send answers once written, before the invocations' results come back.
    let written = got.iter().position(|v| *v == Value::Bool(true));
    assert!(written.is_some(), "the send was answered: {got:?}");
    got.remove(written.unwrap());
    assert_eq!(got, (0..100).map(Value::Int).collect::<Vec<_>>());
    connection.stop().await.unwrap();

    // Not connected: answered at once, on this thread, with the official text.
    let (tx, rx) = std::sync::mpsc::channel();
    connection.invoke_then("Echo", vec![Value::Int(1)], move |result| {
        tx.send(result).unwrap();
    });
    let error = rx.try_recv().expect("answered at once").unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidState);
    assert_eq!(
        error.to_string(),
        "Cannot send data if the connection is not in the 'Connected' State."
    );
}

// scenario: any.any.stream.batches, ws.msgpack.stream.batches
#[tokio::test]
async fn streams_read_in_batches_exactly() {
    let server = server().await;
    for (transport, protocol) in [
        ("WebSockets", HubProtocol::Json),
        ("WebSockets", HubProtocol::MessagePack),
        ("LongPolling", HubProtocol::Json),
    ] {
        let connection = connect(options(&server, "/testhub", transport, protocol)).await;
        let mut stream = connection
            .stream_value("StreamCount", vec![Value::Int(5000)])
            .unwrap();
        let mut items = Vec::new();
        let mut batches = 0;
        loop {
            let batch = timeout(WAIT, stream.next_batch(64)).await.unwrap().unwrap();
            if batch.is_empty() {
                break;
            }
            assert!(batch.len() <= 64);
            batches += 1;
            items.extend(batch);
        }
        assert_eq!(items, (0..5000).map(Value::Int).collect::<Vec<_>>());
        assert!(batches < 5000, "{transport}: batches carry several items");
        assert!(stream.is_finished());
        assert!(stream.next_batch(64).await.unwrap().is_empty());

        // An error ends the stream with the server's text.
        let mut failing = connection
            .stream_value("StreamThrowException", vec![Value::from("boom")])
            .unwrap();
        let error = timeout(WAIT, failing.next_batch(8))
            .await
            .unwrap()
            .unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Hub);
        assert!(error.to_string().contains("boom"), "{error}");
        connection.stop().await.unwrap();
    }
}

// scenario: any.any.stream.cancel-handle
#[tokio::test]
async fn a_cancel_handle_ends_a_waiting_read_and_tells_the_server() {
    let server = server().await;
    let connection = connect(options(
        &server,
        "/testhub",
        "WebSockets",
        HubProtocol::Json,
    ))
    .await;
    let (canceled_tx, mut canceled) = tokio::sync::mpsc::unbounded_channel();
    connection.on("StreamCanceled", move |(): ()| {
        let canceled_tx = canceled_tx.clone();
        async move {
            let _ = canceled_tx.send(());
        }
    });
    let mut stream = connection.stream_value("InfiniteStream", ()).unwrap();
    let cancel = stream.cancel_handle();
    let reader = tokio::spawn(async move { stream.next_batch(16).await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!reader.is_finished(), "nothing to read yet");
    cancel.cancel();
    let batch = timeout(WAIT, reader).await.unwrap().unwrap().unwrap();
    assert!(batch.is_empty(), "the read ends when cancelled");
    timeout(WAIT, canceled.recv())
        .await
        .expect("the server saw the CancelInvocation")
        .unwrap();
    assert_eq!(
        connection
            .invoke_value("Echo", vec![Value::from("after")])
            .await
            .unwrap(),
        Value::from("after")
    );
}

// scenario: any.any.stream.upload-sender
#[tokio::test]
async fn an_upload_sender_feeds_a_client_to_server_stream() {
    let server = server().await;
    let connection = connect(options(
        &server,
        "/testhub",
        "WebSockets",
        HubProtocol::MessagePack,
    ))
    .await;
    let (numbers, sender) = UploadStream::channel();
    let sum = connection.invoke_value("UploadSum", vec![Argument::Stream(numbers)]);
    for n in 1..=100 {
        sender.send(Value::Int(n)).await.unwrap();
    }
    sender.complete();
    assert_eq!(timeout(WAIT, sum).await.unwrap().unwrap(), Value::Int(5050));
    let error = sender.send(Value::Int(1)).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidState);

    let (words, sender) = UploadStream::channel();
    let concat = connection.invoke_value("StreamingConcat", vec![Argument::Stream(words)]);
    sender.send(Value::from("a")).await.unwrap();
    sender.fail("Error: the producer broke");
    let error = timeout(WAIT, concat).await.unwrap().unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Hub);
    assert!(error.to_string().contains("the producer broke"), "{error}");
}

/// A handler object as a binding registers one: it answers from a table, later.
struct Answers {
    calls: Mutex<Vec<Vec<Value>>>,
    answer: Option<Value>,
}

impl Handler for Answers {
    fn call(&self, arguments: Arguments) -> BoxFuture<'static, HandlerOutcome> {
        self.calls.lock().unwrap().push(arguments.values().unwrap());
        let answer = self.answer.clone();
        Box::pin(async move {
            tokio::time::sleep(Duration::from_millis(10)).await;
            match answer {
                Some(value) => HandlerOutcome::Result(Payload::Value(value)),
                None => HandlerOutcome::Failed("Error: no answer here".into()),
            }
        })
    }
}

// scenario: any.any.client-result.handler-object, any.any.on.remove-by-id
#[tokio::test]
async fn handler_objects_answer_client_results_and_are_removed_by_id() {
    let server = server().await;
    let connection = connect(options(
        &server,
        "/testhub",
        "LongPolling",
        HubProtocol::Json,
    ))
    .await;
    let answers = Arc::new(Answers {
        calls: Mutex::new(Vec::new()),
        answer: Some(Value::Int(42)),
    });
    let id = connection.add_handler("Result", answers.clone());
    let got = connection
        .invoke_value("GetClientResult", vec![Value::from("result")])
        .await
        .unwrap();
    assert_eq!(got, Value::Int(42));
    assert_eq!(answers.calls.lock().unwrap().len(), 1);
    let registered = connection.handlers("RESULT");
    assert_eq!(registered.len(), 1);
    assert_eq!(registered[0].0, id);

    assert!(connection.remove_handler(id));
    assert!(!connection.remove_handler(id));
    let failing = Arc::new(Answers {
        calls: Mutex::new(Vec::new()),
        answer: None,
    });
    connection.add_handler("Result", failing);
    let error = connection
        .invoke_value("GetClientResult", vec![Value::from("Result")])
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Hub);
    assert!(
        error.to_string().contains("Error: no answer here"),
        "{error}"
    );
    connection.off("result");
    let error = connection
        .invoke_value("GetClientResult", vec![Value::from("Result")])
        .await
        .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("Client didn't provide a result."),
        "{error}"
    );
}

// scenario: any.any.events.listener-and-pull
#[tokio::test]
async fn events_reach_listeners_and_pull_streams_in_order() {
    let server = server().await;
    let mut options = options(&server, "/testhub", "WebSockets", HubProtocol::Json);
    options.retry_policy = Some(Arc::new(DefaultRetryPolicy::with_delays([Duration::ZERO])));
    let connection = connect(options).await;
    let heard = Arc::new(Mutex::new(Vec::new()));
    let log = heard.clone();
    connection.on_event(move |event| log.lock().unwrap().push(format!("{event:?}")));
    let mut events = connection.events();
    let first_id = connection.connection_id().unwrap();

    let _ = connection.invoke_value("Abort", ()).await;
    match timeout(WAIT, events.next()).await.unwrap().unwrap() {
        ConnectionEvent::Reconnecting { error } => {
            let error = error.expect("a lost connection has an error");
            assert_eq!(error.kind(), ErrorKind::Transport, "{error:?}");
        }
        other => panic!("{other:?}"),
    }
    match timeout(WAIT, events.next()).await.unwrap().unwrap() {
        ConnectionEvent::Reconnected { connection_id } => {
            let id = connection_id.expect("negotiated");
            assert_ne!(id, first_id);
            assert_eq!(connection.connection_id(), Some(id));
        }
        other => panic!("{other:?}"),
    }
    let _ = connection
        .send("CloseMe", vec![Value::from("bye"), Value::Bool(false)])
        .await;
    match timeout(WAIT, events.next()).await.unwrap().unwrap() {
        ConnectionEvent::Closed { error } => {
            let error = error.unwrap();
            assert_eq!(error.kind(), ErrorKind::ConnectionClosed);
            assert_eq!(error.to_string(), "Server returned an error on close: bye");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(connection.state(), HubConnectionState::Disconnected);
    let heard = heard.lock().unwrap().clone();
    assert_eq!(heard.len(), 3, "{heard:?}");
    assert!(heard[0].starts_with("Reconnecting") && heard[1].starts_with("Reconnected"));
    assert!(heard[2].starts_with("Closed"));
    assert!(events.try_next().is_none());
    drop(connection);
    assert!(
        timeout(WAIT, events.next()).await.unwrap().is_none(),
        "ends with the connection"
    );
}

/// Every error kind the test server can produce on purpose, with its text and status.
// scenario: any.any.errors.kinds, any.any.errors.negotiate-status, any.any.errors.not-connected, any.any.errors.handshake-timeout, any.any.errors.stopped-during-start
#[tokio::test]
async fn each_failure_has_its_kind() {
    let server = server().await;
    let base = server.base_url();
    let start_error = |options: ConnectionOptions| async move {
        let connection = HubConnection::new(options).unwrap();
        let error = timeout(WAIT, connection.start())
            .await
            .unwrap()
            .unwrap_err();
        assert_eq!(connection.state(), HubConnectionState::Disconnected);
        error
    };

    let error = start_error(ConnectionOptions::new(format!("{base}/nothing-here"))).await;
    assert_eq!(
        (error.kind(), error.status()),
        (ErrorKind::Negotiation, Some(404))
    );

    let mut msgpack_over_sse = options(
        &server,
        "/testhub",
        "ServerSentEvents",
        HubProtocol::MessagePack,
    );
    msgpack_over_sse.protocol = HubProtocol::MessagePack;
    let error = start_error(msgpack_over_sse).await;
    assert_eq!(error.kind(), ErrorKind::Transport, "{error}");
    assert!(
        error
            .to_string()
            .starts_with("Unable to connect to the server with any of the available transports."),
        "{error}"
    );

    let mut slow = options(
        &server,
        "/testhub?faults=delay_handshake_ms:3000",
        "WebSockets",
        HubProtocol::Json,
    );
    slow.handshake_timeout = Duration::from_millis(200);
    let started = Instant::now();
    let error = start_error(slow).await;
    assert!(
        error.is_timeout() && error.kind() == ErrorKind::Timeout,
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        "The server did not answer the handshake within 200 ms."
    );
    assert!(started.elapsed() < Duration::from_secs(2));

    let slow = HubConnection::new(options(
        &server,
        "/testhub?faults=delay_handshake_ms:3000",
        "WebSockets",
        HubProtocol::Json,
    ))
    .unwrap();
    let starting = {
        let slow = slow.clone();
        tokio::spawn(async move { slow.start().await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    slow.stop().await.unwrap();
    let error = timeout(WAIT, starting).await.unwrap().unwrap().unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Cancelled);
    assert_eq!(
        error.to_string(),
        "The connection was stopped during negotiation."
    );

    let error = HubConnection::new(ConnectionOptions::new("ftp://h/hub")).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidArgument);
    let mut bad_header = ConnectionOptions::new(format!("{base}/testhub"));
    bad_header.headers.push(("bad header".into(), "x".into()));
    assert_eq!(
        HubConnection::new(bad_header).unwrap_err().kind(),
        ErrorKind::InvalidArgument
    );
    let mut no_replay_room = ConnectionOptions::new(format!("{base}/testhub"));
    no_replay_room.stateful_reconnect = true;
    no_replay_room.stateful_reconnect_buffer_size = 0;
    let error = HubConnection::new(no_replay_room).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidArgument);
    assert_eq!(
        error.to_string(),
        "The stateful reconnect buffer size must be at least 1 byte; it is 0."
    );
    assert_eq!(
        hublink::parse_transport("pigeon").unwrap_err().kind(),
        ErrorKind::InvalidArgument
    );

    let idle = HubConnection::new(options(
        &server,
        "/testhub",
        "WebSockets",
        HubProtocol::Json,
    ))
    .unwrap();
    let error = idle
        .invoke_value("Echo", vec![Value::Int(1)])
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidState);
    assert_eq!(
        idle.stream_value("Stream", ()).unwrap_err().kind(),
        ErrorKind::InvalidState
    );

    let connection = connect(options(
        &server,
        "/testhub",
        "WebSockets",
        HubProtocol::Json,
    ))
    .await;
    let error = connection
        .invoke_value("ThrowException", vec![Value::from("oops")])
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Hub);
    assert!(error.to_string().contains("oops"));
    let error = connection
        .invoke::<i32>("Echo", ("not a number",))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidArgument);
    let error = connection
        .invoke_value("Echo", vec![Value::F64(f64::NAN)])
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidArgument, "{error}");

    // A malformed message closes the connection with a protocol error; the pending call fails
    // with it.
    let pending = connection.stream_value("InfiniteStream", ()).unwrap();
    let _ = connection.send("SendMalformed", ()).await;
    let mut pending = pending;
    let error = timeout(WAIT, pending.next_batch(1))
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Protocol, "{error:?}");
    assert!(error.protocol_error().is_some());
    assert!(std::error::Error::source(&error).is_some());

    let mut silent = options(
        &server,
        "/testhub?faults=no_pings",
        "WebSockets",
        HubProtocol::Json,
    );
    silent.server_timeout = Duration::from_millis(300);
    let connection = connect(silent).await;
    let mut events = connection.events();
    match timeout(WAIT, events.next()).await.unwrap().unwrap() {
        ConnectionEvent::Closed { error: Some(error) } => {
            assert!(error.is_timeout(), "{error:?}");
            assert_eq!(
                error.to_string(),
                "Server timeout elapsed without receiving a message from the server."
            );
        }
        other => panic!("{other:?}"),
    }

    let connection = connect(options(
        &server,
        "/testhub",
        "LongPolling",
        HubProtocol::Json,
    ))
    .await;
    let pending = connection.invoke_value("StallFor", vec![Value::Int(5000)]);
    connection.stop().await.unwrap();
    let error = pending.await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::ConnectionClosed, "{error:?}");
}

// scenario: any.any.runtime.shared
#[test]
fn a_connection_runs_without_a_runtime_of_the_callers() {
    // Outside any tokio runtime (as a binding's thread is), everything runs on the shared one.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let server = runtime.block_on(server());
    let connection = HubConnection::new(options(
        &server,
        "/testhub",
        "WebSockets",
        HubProtocol::Json,
    ))
    .unwrap();
    futures_executor_block_on(connection.start()).unwrap();
    let echoed =
        futures_executor_block_on(connection.invoke_value("Echo", vec![Value::from("hi")]))
            .unwrap();
    assert_eq!(echoed, Value::from("hi"));
    let mut stream = connection.stream_value("Stream", ()).unwrap();
    let mut items = Vec::new();
    loop {
        let batch = futures_executor_block_on(stream.next_batch(10)).unwrap();
        if batch.is_empty() {
            break;
        }
        items.extend(batch);
    }
    assert_eq!(
        items,
        [Value::from("a"), Value::from("b"), Value::from("c")]
    );
    drop(stream);
    futures_executor_block_on(connection.stop()).unwrap();
    assert!(hublink::SharedRuntime::is_running());
    assert_eq!(
        hublink::SharedRuntime::set_worker_threads(1)
            .unwrap_err()
            .kind(),
        ErrorKind::InvalidState
    );
    drop(runtime);
}

/// Polls a future to completion on this thread, with no tokio context (as a foreign
/// executor does).
fn futures_executor_block_on<F: std::future::Future>(future: F) -> F::Output {
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let waker = waker_fn(move || {
        let _ = tx.send(());
    });
    let mut context = std::task::Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        if let std::task::Poll::Ready(output) = future.as_mut().poll(&mut context) {
            return output;
        }
        rx.recv_timeout(WAIT).expect("woken in time");
    }
}

fn waker_fn(wake: impl Fn() + Send + Sync + 'static) -> std::task::Waker {
    struct FnWaker<F>(F);
    impl<F: Fn() + Send + Sync + 'static> std::task::Wake for FnWaker<F> {
        fn wake(self: Arc<Self>) {
            (self.0)()
        }
    }
    std::task::Waker::from(Arc::new(FnWaker(wake)))
}

#[test]
fn transport_kinds_are_named_as_in_the_official_clients() {
    assert_eq!(
        hublink::parse_transports(["LongPolling", "webSockets"]).unwrap(),
        [TransportKind::LongPolling, TransportKind::WebSockets]
    );
}

// scenario: any.any.tracing.caller-context
#[tokio::test]
async fn a_caller_trace_context_reaches_the_server_in_the_invocation_headers() {
    const PARENT: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let server = server().await;
    for protocol in [HubProtocol::Json, HubProtocol::MessagePack] {
        let connection = connect(options(&server, "/testhub", "WebSockets", protocol)).await;
        let context = hublink::TraceContext::new(PARENT, Some("congo=t61rcWkgMzE")).unwrap();
        let call = hublink::with_trace_context(context, || {
            connection.invoke_value("GetInvocationHeaders", ())
        });
        let expected = Value::Map(vec![
            (Value::from("traceparent"), Value::from(PARENT)),
            (Value::from("tracestate"), Value::from("congo=t61rcWkgMzE")),
        ]);
        assert_eq!(
            timeout(WAIT, call).await.unwrap().unwrap(),
            expected,
            "{protocol:?}"
        );
        // Outside the scope, calls carry no trace context.
        let plain = connection.invoke_value("GetInvocationHeaders", ());
        assert_eq!(
            timeout(WAIT, plain).await.unwrap().unwrap(),
            Value::Map(vec![])
        );
        connection.stop().await.unwrap();
    }
}
