//! A server stream whose reader is slower than the server keeps the client's memory bounded
//! and loses nothing (issue 16). Its own test binary: the heap count is the whole process's,
//! so nothing else may run beside it. The test server runs in this process on threads whose
//! allocations are not counted (it queues whatever the client has not read yet, without a
//! bound of its own): what is measured is the client.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use hublink::{HubConnectionBuilder, TransportKind};
use hublink_testserver::{TestServer, TestServerOptions};
use tokio::sync::oneshot;

/// Counts the process's live heap bytes (`common/heap.rs`).
#[path = "common/heap.rs"]
mod heap;

#[global_allocator]
static ALLOCATOR: heap::Counting = heap::Counting;

const ITEMS: i64 = 1_000_000;
/// The reader pauses after every this many items…
const PAUSE_EVERY: i64 = 10_000;
/// …for this long: 100 pauses, so the reader takes at least 5 s, far longer than the server
/// needs to send everything. Without a bound the client holds most of the stream at once.
const PAUSE: Duration = Duration::from_millis(50);
/// The live heap the client may grow by while streaming: its buffer of 1024 items, one
/// transport message in the decoder and the socket's read buffer stay near 100 KB; a client
/// without a bound grew by 19.9 MB here (release build).
const HEAP_GROWTH_LIMIT: isize = 1024 * 1024;

/// The test server on a runtime and threads of its own, none of them counted.
fn uncounted_server() -> (String, oneshot::Sender<()>, std::thread::JoinHandle<()>) {
    let (url_tx, url_rx) = std::sync::mpsc::channel();
    let (shutdown, stop) = oneshot::channel::<()>();
    let thread = std::thread::spawn(move || {
        heap::never_count_this_thread();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .on_thread_start(heap::never_count_this_thread)
            .enable_all()
            .build()
            .expect("server runtime");
        runtime.block_on(async move {
            // The server queues the whole stream at once and its session reads the client's
            // pings only after what it queued before them: a long client timeout.
            let options = TestServerOptions {
                client_timeout: Duration::from_secs(600),
                ..TestServerOptions::default()
            };
            let server = TestServer::start(options).await.expect("test server");
            url_tx.send(server.base_url().to_string()).unwrap();
            let _ = stop.await;
            server.shutdown().await;
        });
    });
    let url = url_rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the test server starts");
    (url, shutdown, thread)
}

// scenario: ws.json.stream.backpressure-memory
#[test]
#[cfg_attr(
    debug_assertions,
    ignore = "in debug the client is slower than this reader and no backlog forms: \
              scripts/test.sh runs it in release"
)]
fn a_million_item_stream_read_slowly_arrives_whole_in_bounded_memory() {
    let (base_url, shutdown, server) = uncounted_server();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("client runtime");
    let (read, growth, took) = runtime.block_on(async move {
        let connection = HubConnectionBuilder::new()
            .with_url(format!("{base_url}/testhub"))
            .with_transports([TransportKind::WebSockets])
            .build()
            .unwrap();
        connection.start().await.expect("start");
        let before = heap::live();
        heap::reset_peak();
        let started = Instant::now();
        let mut stream = connection
            .stream::<i64>("StreamCount", (ITEMS,))
            .expect("stream");
        let mut read = 0i64;
        while let Some(item) = stream.next().await {
            let item = item.expect("an item");
            assert_eq!(item, read, "items arrive in order, none missing");
            read += 1;
            if read % PAUSE_EVERY == 0 {
                tokio::time::sleep(PAUSE).await;
            }
        }
        let growth = heap::peak() - before;
        connection.stop().await.unwrap();
        (read, growth, started.elapsed())
    });
    let _ = shutdown.send(());
    server.join().unwrap();
    println!("{read} items in {took:?}; the client's live heap grew by at most {growth} bytes");
    assert_eq!(read, ITEMS, "every item arrives");
    assert!(
        growth <= HEAP_GROWTH_LIMIT,
        "the client's live heap grew by {growth} bytes while streaming, over the \
         {HEAP_GROWTH_LIMIT} allowed: the stream's buffer is not bounded"
    );
}
