//! Automatic reconnect and stateful reconnect against the in-repo test server, with faults
//! the server injects.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use hublink::{
    DefaultRetryPolicy, HubConnection, HubConnectionBuilder, HubConnectionState, RetryContext,
    RetryPolicy, TransportKind,
};
use hublink_testserver::{TestServer, TestServerOptions};

use common::calls;
use tokio::sync::mpsc;
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, PartialEq)]
enum Event {
    Reconnecting(Option<String>),
    Reconnected(Option<String>),
    Closed(Option<String>),
}

fn record(connection: &HubConnection) -> mpsc::UnboundedReceiver<Event> {
    let (tx, rx) = mpsc::unbounded_channel();
    let t = tx.clone();
    connection.on_reconnecting(move |e| {
        let _ = t.send(Event::Reconnecting(e.map(|e| e.to_string())));
    });
    let t = tx.clone();
    connection.on_reconnected(move |id| {
        let _ = t.send(Event::Reconnected(id));
    });
    connection.on_close(move |e| {
        let _ = tx.send(Event::Closed(e.map(|e| e.to_string())));
    });
    rx
}

async fn next(events: &mut mpsc::UnboundedReceiver<Event>) -> Event {
    timeout(WAIT, events.recv())
        .await
        .expect("an event in time")
        .expect("events channel open")
}

async fn server() -> TestServer {
    TestServer::start(TestServerOptions::default())
        .await
        .unwrap()
}

/// A test server that acknowledges messages (stateful reconnect) `delay` after receiving them.
async fn server_acking_after(delay: Duration) -> TestServer {
    TestServer::start(TestServerOptions {
        ack_delay: delay,
        ..TestServerOptions::default()
    })
    .await
    .unwrap()
}

/// A builder for the hub at `path` of `server`.
fn hub(server: &TestServer, path: &str) -> HubConnectionBuilder {
    HubConnectionBuilder::new().with_url(format!("{}{path}", server.base_url()))
}

/// Builds the connection, records its events and starts it.
async fn started(builder: HubConnectionBuilder) -> (HubConnection, mpsc::UnboundedReceiver<Event>) {
    let connection = builder.build().unwrap();
    let events = record(&connection);
    connection.start().await.unwrap();
    (connection, events)
}

/// Has the server abort the connection; the next event is Reconnecting with the error.
async fn abort_and_expect_reconnecting(
    connection: &HubConnection,
    events: &mut mpsc::UnboundedReceiver<Event>,
) {
    let _ = connection.send("Abort", ()).await;
    assert!(matches!(next(events).await, Event::Reconnecting(Some(_))));
}

/// Records every context it is asked about, and retries quickly a few times.
struct Recording {
    contexts: Arc<Mutex<Vec<(u64, String)>>>,
    attempts: u64,
}

impl RetryPolicy for Recording {
    fn next_retry_delay(&self, context: &RetryContext) -> Option<Duration> {
        self.contexts.lock().unwrap().push((
            context.previous_retry_count,
            context.retry_reason.to_string(),
        ));
        // The first wait leaves the test time to take the server down.
        let delay = if context.previous_retry_count == 0 {
            300
        } else {
            50
        };
        (context.previous_retry_count < self.attempts).then_some(Duration::from_millis(delay))
    }
}

// scenario: ws.json.reconnect.new-connection-id, ws.json.reconnect.server-fault
#[tokio::test]
async fn a_dropped_connection_reconnects_with_a_new_id_and_the_same_handlers() {
    let server = server().await;
    let tokens = Arc::new(Mutex::new(0));
    let t = tokens.clone();
    let connection = HubConnectionBuilder::new()
        .with_url(format!("{}/testhub", server.base_url()))
        .with_transports([TransportKind::WebSockets])
        .with_access_token_factory(move || {
            *t.lock().unwrap() += 1;
            async { Ok(Some("token".to_owned())) }
        })
        .with_automatic_reconnect_delays([Duration::ZERO, Duration::from_millis(100)])
        .build()
        .unwrap();
    let mut messages = calls(&connection, "Message");
    let mut events = record(&connection);
    connection.start().await.unwrap();
    let first_id = connection.connection_id().unwrap();
    let pending = connection.stream::<String>("InfiniteStream", ()).unwrap();

    abort_and_expect_reconnecting(&connection, &mut events).await;
    let new_id = match next(&mut events).await {
        Event::Reconnected(Some(id)) => id,
        other => panic!("{other:?}"),
    };
    assert_ne!(new_id, first_id);
    assert_eq!(connection.connection_id().as_deref(), Some(new_id.as_str()));
    assert_eq!(connection.state(), HubConnectionState::Connected);
    assert_eq!(
        *tokens.lock().unwrap(),
        2,
        "the token factory is called again"
    );

    // The stream pending when the connection dropped failed; it is not retried.
    let ended: Vec<_> = pending.collect().await;
    assert!(matches!(ended.as_slice(), [Err(_)]), "{ended:?}");

    // Handlers stay registered.
    connection
        .send("InvokeWithString", ("after",))
        .await
        .unwrap();
    let got = timeout(WAIT, messages.recv()).await.unwrap();
    assert_eq!(got.as_deref(), Some("after"));
    connection.stop().await.unwrap();
    assert_eq!(next(&mut events).await, Event::Closed(None));
}

// scenario: ws.json.close.allow-reconnect, ws.json.close.no-reconnect
#[tokio::test]
async fn a_server_close_reconnects_only_when_it_allows_it() {
    let server = server().await;
    let (connection, mut events) =
        started(hub(&server, "/testhub").with_automatic_reconnect()).await;
    let _ = connection.send("CloseMe", ("Error!", true)).await;
    assert_eq!(
        next(&mut events).await,
        Event::Reconnecting(Some("Server returned an error on close: Error!".into()))
    );
    assert!(matches!(
        next(&mut events).await,
        Event::Reconnected(Some(_))
    ));
    let _ = connection.send("CloseMe", ("Goodbye", false)).await;
    assert_eq!(
        next(&mut events).await,
        Event::Closed(Some("Server returned an error on close: Goodbye".into()))
    );
    assert_eq!(connection.state(), HubConnectionState::Disconnected);
}

/// Blocks in its first answer until released, telling the test it was asked.
struct HoldsItsFirstAnswer {
    asked: std::sync::mpsc::Sender<()>,
    release: Mutex<std::sync::mpsc::Receiver<()>>,
}

impl RetryPolicy for HoldsItsFirstAnswer {
    fn next_retry_delay(&self, context: &RetryContext) -> Option<Duration> {
        if context.previous_retry_count == 0 {
            let _ = self.asked.send(());
            let _ = self.release.lock().unwrap().recv_timeout(WAIT);
        }
        Some(Duration::from_millis(10))
    }
}

// scenario: any.any.reconnect.lost-while-calling
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_racing_the_loss_of_the_connection_never_sees_connected_and_not_connected() {
    let server = server().await;
    let (asked_tx, asked_rx) = std::sync::mpsc::channel();
    let (release_tx, release_rx) = std::sync::mpsc::channel();
    let (connection, mut events) = started(
        hub(&server, "/testhub")
            .with_transports([TransportKind::WebSockets])
            .with_retry_policy(HoldsItsFirstAnswer {
                asked: asked_tx,
                release: Mutex::new(release_rx),
            }),
    )
    .await;
    let _ = connection.send("Abort", ()).await;
    // The driver has ended and the policy is being asked: the window in which the state has
    // not left Connected yet.
    tokio::task::spawn_blocking(move || asked_rx.recv_timeout(WAIT))
        .await
        .unwrap()
        .expect("the policy is asked");
    // The policy is asked before the state changes (as in the official client): this is the
    // window in which a call sees Connected and no driver takes it.
    let state_before = connection.state();
    assert_eq!(state_before, HubConnectionState::Connected);
    let error = connection
        .invoke::<String>("Echo", ("lost",))
        .await
        .expect_err("no driver takes the call");
    let refused_as_not_connected = error.to_string().contains("not in the 'Connected' State");
    assert!(
        !refused_as_not_connected,
        "refused as not connected while the state said {state_before:?}: {error}"
    );
    assert_eq!(
        error.kind(),
        hublink::ErrorKind::ConnectionClosed,
        "{error}"
    );
    release_tx.send(()).unwrap();
    assert!(matches!(
        next(&mut events).await,
        Event::Reconnecting(Some(_))
    ));
    assert!(matches!(next(&mut events).await, Event::Reconnected(_)));
    let echoed: String = connection.invoke("Echo", ("back",)).await.unwrap();
    assert_eq!(echoed, "back");
    connection.stop().await.unwrap();
}

// scenario: any.any.reconnect.policy-gives-up
#[tokio::test]
async fn the_policy_sees_each_failure_and_its_giving_up_closes_the_connection() {
    let server = server().await;
    let contexts = Arc::new(Mutex::new(Vec::new()));
    let connection = HubConnectionBuilder::new()
        .with_url(format!("{}/testhub", server.base_url()))
        .with_retry_policy(Recording {
            contexts: contexts.clone(),
            attempts: 2,
        })
        .build()
        .unwrap();
    let mut events = record(&connection);
    connection.start().await.unwrap();
    abort_and_expect_reconnecting(&connection, &mut events).await;
    server.shutdown().await;
    let closed = next(&mut events).await;
    assert!(matches!(closed, Event::Closed(Some(_))), "{closed:?}");
    assert_eq!(connection.state(), HubConnectionState::Disconnected);
    let seen = contexts.lock().unwrap().clone();
    assert_eq!(
        seen.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
        [0, 1, 2],
        "{seen:?}"
    );
    assert!(
        seen[1].1.contains("negotiation"),
        "later reasons are the attempts' errors: {seen:?}"
    );
}

// scenario: any.any.reconnect.stop-during-delay
#[tokio::test]
async fn stop_during_a_reconnect_delay_ends_everything_once() {
    let server = server().await;
    let (connection, mut events) = started(
        hub(&server, "/testhub").with_automatic_reconnect_delays([Duration::from_secs(60)]),
    )
    .await;
    abort_and_expect_reconnecting(&connection, &mut events).await;
    assert_eq!(connection.state(), HubConnectionState::Reconnecting);
    timeout(WAIT, connection.stop()).await.unwrap().unwrap();
    assert_eq!(connection.state(), HubConnectionState::Disconnected);
    assert_eq!(next(&mut events).await, Event::Closed(None));
    assert!(
        timeout(Duration::from_millis(300), events.recv())
            .await
            .is_err(),
        "one close event, nothing after it"
    );
}

// scenario: any.any.reconnect.no-policy
#[tokio::test]
async fn without_a_policy_a_lost_connection_just_closes() {
    let server = server().await;
    let (connection, mut events) = started(hub(&server, "/testhub")).await;
    let _ = connection.send("Abort", ()).await;
    assert!(matches!(next(&mut events).await, Event::Closed(Some(_))));
    let (empty, mut events) =
        started(hub(&server, "/testhub").with_retry_policy(DefaultRetryPolicy::with_delays([])))
            .await;
    let _ = empty.send("Abort", ()).await;
    assert!(
        matches!(next(&mut events).await, Event::Closed(Some(_))),
        "a policy that gives up at once never enters Reconnecting"
    );
}

// scenario: any.any.reconnect.retry-on-start
#[tokio::test]
async fn the_first_start_can_be_retried_under_the_policy() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let connection = HubConnectionBuilder::new()
        .with_url(format!("http://127.0.0.1:{port}/testhub"))
        .with_automatic_reconnect_delays([Duration::from_millis(200); 20])
        .with_retry_on_start(true)
        .build()
        .unwrap();
    let server = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(500)).await;
        TestServer::start(TestServerOptions {
            port,
            ..TestServerOptions::default()
        })
        .await
        .unwrap()
    });
    timeout(WAIT, connection.start()).await.unwrap().unwrap();
    let echoed: String = connection.invoke("Echo", ("late server",)).await.unwrap();
    assert_eq!(echoed, "late server");
    connection.stop().await.unwrap();
    drop(server.await.unwrap());

    let refused = HubConnectionBuilder::new()
        .with_url(format!("http://127.0.0.1:{port}/testhub"))
        .with_automatic_reconnect()
        .build()
        .unwrap();
    assert!(
        refused.start().await.is_err(),
        "without the option a failed start is final"
    );
}

// scenario: ws.json.stateful.server-drop, ws.msgpack.stateful.server-drop
#[tokio::test]
async fn stateful_reconnect_hides_a_dropped_transport_and_loses_nothing() {
    let server = server().await;
    for protocol in [
        hublink::HubProtocol::Json,
        hublink::HubProtocol::MessagePack,
    ] {
        let connection = HubConnectionBuilder::new()
            .with_url(format!(
                "{}/testhub?faults=drop_after_messages:40",
                server.base_url()
            ))
            .with_protocol(protocol)
            .with_stateful_reconnect()
            .build()
            .unwrap();
        let mut events = record(&connection);
        connection.start().await.unwrap();
        let id = connection.connection_id();
        let items: Vec<i64> = timeout(
            WAIT,
            connection
                .stream::<i64>("StreamCount", (200,))
                .unwrap()
                .map(|i| i.unwrap())
                .collect(),
        )
        .await
        .expect("the stream finishes across the drop");
        assert_eq!(
            items,
            (0..200).collect::<Vec<_>>(),
            "{protocol:?}: exactly once, in order"
        );
        for n in 0..20 {
            let echoed: String = connection.invoke("Echo", (format!("m{n}"),)).await.unwrap();
            assert_eq!(echoed, format!("m{n}"));
        }
        assert_eq!(connection.connection_id(), id, "the same connection");
        assert!(
            events.try_recv().is_err(),
            "{protocol:?}: a stateful reconnect is invisible to the application"
        );
        connection.stop().await.unwrap();
    }
}

// scenario: ws.json.stateful.negotiate-denied
#[tokio::test]
async fn without_the_servers_consent_a_drop_falls_back_to_automatic_reconnect() {
    let server = server().await;
    let (connection, mut events) = started(
        hub(&server, "/testhub-nostateful")
            .with_stateful_reconnect()
            .with_automatic_reconnect(),
    )
    .await;
    abort_and_expect_reconnecting(&connection, &mut events).await;
    assert!(matches!(
        next(&mut events).await,
        Event::Reconnected(Some(_))
    ));
    connection.stop().await.unwrap();
}

// scenario: ws.json.stateful.replay-buffer-full
/// With stateful reconnect, a full replay buffer holds further sends back until the server's
/// Ack frees room (backpressure instead of unbounded memory); then they all go out, in order.
#[tokio::test]
async fn a_full_replay_buffer_holds_sends_back_until_the_servers_ack() {
    const ACK_DELAY: Duration = Duration::from_millis(600);
    const SENDS: usize = 30;
    let server = server_acking_after(ACK_DELAY).await;
    // Returns the longest time one of the sends took, once every message came back.
    async fn longest_send(builder: HubConnectionBuilder) -> Duration {
        let connection = builder.build().unwrap();
        let mut messages = calls(&connection, "Message");
        connection.start().await.unwrap();
        let mut longest = Duration::ZERO;
        for n in 0..SENDS {
            let started = std::time::Instant::now();
            timeout(
                WAIT,
                connection.send("InvokeWithString", (format!("m{n}"),)),
            )
            .await
            .expect("a send waits for an Ack, not forever")
            .unwrap();
            longest = longest.max(started.elapsed());
        }
        for n in 0..SENDS {
            let message = timeout(WAIT, messages.recv()).await.unwrap().unwrap();
            assert_eq!(
                message,
                format!("m{n}"),
                "every send arrives once, in order"
            );
        }
        connection.stop().await.unwrap();
        longest
    }
    // About 60 bytes a send: room for 5 before the first Ack.
    let held =
        longest_send(hub(&server, "/testhub").with_stateful_reconnect_buffer_size(300)).await;
    assert!(
        held >= ACK_DELAY / 2,
        "a send past the buffer waited for the Ack (longest send {held:?})"
    );
    let free = longest_send(hub(&server, "/testhub").with_stateful_reconnect()).await;
    assert!(
        free < ACK_DELAY / 2,
        "with room in the buffer no send waits for an Ack (longest send {free:?})"
    );
}

// scenario: ws.json.stateful.stop-with-full-buffer
/// stop() does not wait for the server's Ack when the replay buffer is full: it completes at
/// once, and the sends still waiting for room fail instead of hanging.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_with_a_full_replay_buffer_does_not_wait_for_the_ack() {
    let server = server_acking_after(Duration::from_secs(30)).await;
    let connection = hub(&server, "/testhub")
        .with_stateful_reconnect_buffer_size(300)
        .build()
        .unwrap();
    connection.start().await.unwrap();
    // About 60 bytes a send: the buffer is full after 5, the rest wait for an Ack.
    let sends: Vec<_> = (0..20)
        .map(|n| connection.send("InvokeWithString", (format!("m{n}"),)))
        .collect();
    let waiting = tokio::spawn(futures_util::future::join_all(sends));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = std::time::Instant::now();
    timeout(Duration::from_secs(10), connection.stop())
        .await
        .expect("stop() completes without the Ack")
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "stop took {:?}",
        started.elapsed()
    );
    let results = timeout(WAIT, waiting).await.unwrap().unwrap();
    let failed = results.iter().filter(|r| r.is_err()).count();
    assert!(
        failed >= 10,
        "the sends behind the full buffer fail: {results:?}"
    );
    assert_eq!(connection.state(), HubConnectionState::Disconnected);
}

// scenario: ws.json.stateful.replay-buffer-full
/// Concurrent sends count against the replay buffer as soon as the connection takes them, not
/// only once they are written: before the server's first Ack, no more than a buffer's worth
/// of them completes.
#[tokio::test]
async fn concurrent_sends_do_not_overrun_the_replay_buffer() {
    const ACK_DELAY: Duration = Duration::from_millis(800);
    const BUFFER: usize = 600;
    const SENDS: usize = 40;
    let server = server_acking_after(ACK_DELAY).await;
    let connection = hub(&server, "/testhub")
        .with_stateful_reconnect_buffer_size(BUFFER)
        .build()
        .unwrap();
    let mut messages = calls(&connection, "Message");
    connection.start().await.unwrap();
    let sent = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let sends: Vec<_> = (0..SENDS)
        .map(|n| {
            let (connection, sent) = (connection.clone(), sent.clone());
            tokio::spawn(async move {
                let result = connection
                    .send("InvokeWithString", (format!("m{n:03}"),))
                    .await;
                sent.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                result
            })
        })
        .collect();
    tokio::time::sleep(ACK_DELAY / 2).await;
    // A send frame is over 50 bytes, and the last one taken may pass the limit.
    let before_the_ack = sent.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        (1..=BUFFER / 50 + 1).contains(&before_the_ack),
        "{before_the_ack} sends completed before the first Ack"
    );
    for send in sends {
        timeout(Duration::from_secs(60), send)
            .await
            .expect("every send completes once Acks come")
            .unwrap()
            .unwrap();
    }
    let mut arrived = std::collections::HashSet::new();
    for _ in 0..SENDS {
        arrived.insert(timeout(WAIT, messages.recv()).await.unwrap().unwrap());
    }
    assert_eq!(arrived.len(), SENDS, "every send arrives, once");
    connection.stop().await.unwrap();
}
