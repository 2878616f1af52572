//! Bounded stream buffers with backpressure (issue 16), against the in-repo test server: a
//! stream whose buffer is full holds the connection's reading, other calls wait behind it and
//! complete once it is read, and cancelling, dropping or stopping releases everything.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use common::{tag, COMBINATIONS};
use futures_util::StreamExt;
use hublink::{
    ErrorKind, HubConnection, HubConnectionBuilder, HubProtocol, HubStream, TransportKind,
};
use hublink_testserver::{TestServer, TestServerOptions};
use tokio::sync::{Mutex, MutexGuard};
use tokio::time::timeout;

/// The buffer of every stream here: small, so that the server fills it at once.
const CAPACITY: usize = 8;
/// How long anything may take before the test calls it hung.
const HANG: Duration = Duration::from_secs(30);

/// Sees the driver stop reading: it logs this (at debug level) when a stream's buffer is full.
mod pauses {
    use std::fmt;
    use std::sync::atomic::Ordering;

    use tracing::field::{Field, Visit};
    use tracing::{Event, Level, Subscriber};
    use tracing_subscriber::filter::filter_fn;
    use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
    use tracing_subscriber::util::SubscriberInitExt;

    const PAUSED: &str = "a stream's buffer is full: reading paused";

    struct Pauses;

    struct IsPause(bool);

    impl Visit for IsPause {
        fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
            if field.name() == "message" && format!("{value:?}") == PAUSED {
                self.0 = true;
            }
        }
    }

    impl<S: Subscriber> Layer<S> for Pauses {
        fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
            let mut is_pause = IsPause(false);
            event.record(&mut is_pause);
            if is_pause.0 {
                super::PAUSES.fetch_add(1, Ordering::SeqCst);
            }
        }
    }

    pub fn init() {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            let driver_debug = filter_fn(|meta| {
                meta.target() == "hublink::hub::driver" && *meta.level() == Level::DEBUG
            });
            let _ = tracing_subscriber::registry()
                .with(Pauses.with_filter(driver_debug))
                .try_init();
        });
    }
}

static PAUSES: AtomicU64 = AtomicU64::new(0);

/// The pause count is the process's: one test at a time.
async fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::const_new(());
    pauses::init();
    LOCK.lock().await
}

/// Waits until the driver paused reading more often than `before` times.
async fn reading_paused(before: u64) {
    timeout(HANG, async {
        while PAUSES.load(Ordering::SeqCst) <= before {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the connection stops reading once the stream's buffer is full");
}

async fn started(
    server: &TestServer,
    transport: TransportKind,
    protocol: HubProtocol,
    configure: impl FnOnce(HubConnectionBuilder) -> HubConnectionBuilder,
) -> HubConnection {
    let builder = HubConnectionBuilder::new()
        .with_url(format!("{}/testhub", server.base_url()))
        .with_transports([transport])
        .with_protocol(protocol)
        .with_stream_buffer_capacity(CAPACITY);
    let connection = configure(builder).build().unwrap();
    timeout(HANG, connection.start())
        .await
        .expect("start hung")
        .expect("start");
    connection
}

/// A `StreamCount(count)` whose buffer the server has filled: the driver stopped reading.
async fn stalled_stream(connection: &HubConnection, count: i64) -> HubStream<i64> {
    let before = PAUSES.load(Ordering::SeqCst);
    let stream = connection
        .stream::<i64>("StreamCount", (count,))
        .expect("stream");
    reading_paused(before).await;
    stream
}

/// Reads the rest of `stream`, checking that it goes on from `next` in order to `count`.
async fn read_rest(stream: &mut HubStream<i64>, mut next: i64, count: i64, what: &str) {
    timeout(HANG, async {
        while let Some(item) = stream.next().await {
            assert_eq!(
                item.expect("an item"),
                next,
                "{what}: items in order, none lost"
            );
            next += 1;
        }
    })
    .await
    .expect("the stream ends");
    assert_eq!(next, count, "{what}: every item arrives");
}

async fn echo_completes(connection: &HubConnection, what: &str) {
    let echoed = timeout(HANG, connection.invoke::<String>("Echo", ("x",)))
        .await
        .unwrap_or_else(|_| panic!("{what}: the connection reads again, Echo completes"));
    assert_eq!(echoed.expect("Echo"), "x", "{what}");
}

// scenario: ws.json.stream.backpressure
// scenario: ws.msgpack.stream.backpressure
// scenario: sse.json.stream.backpressure
// scenario: lp.json.stream.backpressure
// scenario: lp.msgpack.stream.backpressure
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_waits_behind_a_stalled_stream_and_completes_once_the_stream_is_read() {
    let _serial = serial().await;
    let server = TestServer::start(TestServerOptions::default())
        .await
        .unwrap();
    const COUNT: i64 = 20_000;
    for (transport, protocol) in COMBINATIONS {
        let what = tag(transport, protocol);
        let connection = started(&server, transport, protocol, |b| b).await;
        let mut stream = stalled_stream(&connection, COUNT).await;
        // Sent now, so its Completion comes behind the item the driver holds.
        let echo = tokio::spawn(connection.invoke::<String>("Echo", ("x",)));
        let mut read = 0;
        let mut read_before_echo = 0;
        // The server may have queued every item (and the stream's end) before it ran Echo:
        // then Echo's Completion comes after the stream's end.
        let mut ended = false;
        while !echo.is_finished() {
            let next = timeout(HANG, stream.next())
                .await
                .unwrap_or_else(|_| panic!("{what}: Echo completes once the stream is read"));
            let Some(item) = next else {
                ended = true;
                break;
            };
            assert_eq!(item.expect("an item"), read, "{what}: items in order");
            read += 1;
            read_before_echo = read;
        }
        let echoed = timeout(HANG, echo)
            .await
            .unwrap_or_else(|_| panic!("{what}: Echo completes once the stream was read"));
        assert_eq!(echoed.unwrap().expect("Echo"), "x", "{what}");
        assert!(
            read_before_echo >= 1,
            "{what}: Echo completed before the stalled stream was read"
        );
        println!("{what}: Echo completed after {read_before_echo} items were read");
        if ended {
            assert_eq!(read, COUNT, "{what}: every item before the stream's end");
        } else {
            read_rest(&mut stream, read, COUNT, &what).await;
        }
        connection.stop().await.unwrap();
    }
    server.shutdown().await;
}

// scenario: ws.json.stream.backpressure-batch
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn next_batch_takes_from_a_full_buffer_and_the_stream_goes_on() {
    let _serial = serial().await;
    let server = TestServer::start(TestServerOptions::default())
        .await
        .unwrap();
    let connection = started(&server, TransportKind::WebSockets, HubProtocol::Json, |b| b).await;
    const COUNT: i64 = 5_000;
    let mut stream = stalled_stream(&connection, COUNT).await;
    let mut next = 0;
    let mut batches = 0;
    loop {
        let batch = timeout(HANG, stream.next_batch(100))
            .await
            .expect("next_batch returns")
            .expect("a batch");
        if batch.is_empty() {
            break;
        }
        assert!(batch.len() <= 100);
        for item in batch {
            assert_eq!(item, next, "items in order, none lost");
            next += 1;
        }
        batches += 1;
    }
    assert_eq!(next, COUNT, "every item arrives");
    assert!(batches >= COUNT / 100);
    echo_completes(&connection, "after the batches").await;
    connection.stop().await.unwrap();
    server.shutdown().await;
}

// scenario: ws.json.stream.backpressure-cancel
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_or_dropping_a_stalled_stream_releases_the_connection() {
    let _serial = serial().await;
    let server = TestServer::start(TestServerOptions::default())
        .await
        .unwrap();
    let connection = started(&server, TransportKind::WebSockets, HubProtocol::Json, |b| b).await;

    // Cancelled from elsewhere (a binding's cancellation callback): the reader's end stays
    // open, so only the driver can let go of the item it holds.
    let mut stream = stalled_stream(&connection, 1_000_000).await;
    stream.cancel_handle().cancel();
    echo_completes(&connection, "after a cancel through the handle").await;
    let mut left = 0;
    timeout(HANG, async {
        while let Some(item) = stream.next().await {
            item.expect("what was buffered, then the end");
            left += 1;
        }
    })
    .await
    .expect("a cancelled stream ends");
    assert!(left <= CAPACITY, "only what was buffered is read: {left}");

    // Dropped while full: the reader's end closes.
    let stream = stalled_stream(&connection, 1_000_000).await;
    drop(stream);
    echo_completes(&connection, "after dropping the stream").await;

    // Cancelled by its reader.
    let mut stream = stalled_stream(&connection, 1_000_000).await;
    stream.cancel();
    echo_completes(&connection, "after cancel()").await;
    assert!(
        stream.next().await.is_none(),
        "a cancelled stream reads nothing"
    );

    connection.stop().await.unwrap();
    server.shutdown().await;
}

// scenario: ws.json.stream.backpressure-stop
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_completes_while_a_stream_buffer_is_full() {
    let _serial = serial().await;
    let server = TestServer::start(TestServerOptions::default())
        .await
        .unwrap();
    let connection = started(&server, TransportKind::WebSockets, HubProtocol::Json, |b| b).await;
    let mut stream = stalled_stream(&connection, 1_000_000).await;
    // Below the driver's 5 s wait for a transport that does not confirm the stop: a stop that
    // waited for that did not read past the full buffer.
    timeout(Duration::from_secs(4), connection.stop())
        .await
        .expect("stop completes while the stream's buffer is full")
        .unwrap();
    let mut next = 0;
    let end = timeout(HANG, async {
        loop {
            match stream.next().await {
                Some(Ok(item)) => {
                    assert_eq!(item, next, "what was buffered, in order");
                    next += 1;
                }
                other => return other,
            }
        }
    })
    .await
    .expect("the stream ends after stop()");
    let error = end
        .expect("the stream ends with the connection's error")
        .expect_err("the stream ends with the connection's error");
    assert_eq!(error.kind(), ErrorKind::ConnectionClosed, "{error}");
    server.shutdown().await;
}

// scenario: ws.json.stream.backpressure-timeouts
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_that_stops_for_longer_than_both_timeouts_loses_nothing() {
    let _serial = serial().await;
    // The server drops a client it heard nothing from for 3 s; the client gives up on a
    // server it heard nothing from for 1 s.
    let server = TestServer::start(TestServerOptions {
        client_timeout: Duration::from_secs(3),
        ..TestServerOptions::default()
    })
    .await
    .unwrap();
    let connection = started(&server, TransportKind::WebSockets, HubProtocol::Json, |b| {
        b.with_server_timeout(Duration::from_secs(1))
            .with_keep_alive_interval(Duration::from_millis(250))
    })
    .await;
    const COUNT: i64 = 20_000;
    let mut stream = stalled_stream(&connection, COUNT).await;
    // The reader stops for longer than both: the client keeps pinging (so the server keeps
    // the connection), and unread data is no server silence (so the client keeps it too).
    tokio::time::sleep(Duration::from_secs(5)).await;
    read_rest(&mut stream, 0, COUNT, "after a long stop").await;
    echo_completes(&connection, "after a long stop").await;
    connection.stop().await.unwrap();
    server.shutdown().await;
}

#[test]
fn a_stream_buffer_of_no_items_is_refused() {
    let error = HubConnectionBuilder::new()
        .with_url("http://localhost/hub")
        .with_stream_buffer_capacity(0)
        .build()
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidArgument);
    assert!(
        error.to_string().contains("stream buffer capacity"),
        "{error}"
    );
}
