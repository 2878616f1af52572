//! Soak under faults: many messages in both directions (invocations, sends, a server stream,
//! upload streams) while the test server drops the WebSocket again and again at pseudo-random
//! points (`?faults=drop_randomly:MEAN,drop_seed:S`, tests/testserver/README.md).
//!
//! * With stateful reconnect every message arrives exactly once and in order on both sides,
//!   the application sees no reconnect and the connection id never changes.
//! * With automatic reconnect only, every call ends with its result or an error (none vanish,
//!   none hang), and after `stop()` no task is left behind.
//! * In both, no memory is left behind: this test binary's global allocator counts the live
//!   heap bytes, and after `stop()` (and the server's shutdown) at most
//!   [`HEAP_GROWTH_LIMIT`] more are live than before the connection was built, however many
//!   messages went through.
//!
//! Parameters (environment):
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `HUBLINK_SOAK_DROPS` | 50 | drops per run (stateful: aimed at through the mean gap; automatic reconnect: the calls go on until that many reconnects happened) |
//! | `HUBLINK_SOAK_MESSAGES` | 7 000 | hub messages exchanged per run, both directions (at least) |
//! | `HUBLINK_SOAK_SEED` | 1 | `drop_seed` of the fault |
//!
//! The CI run is `cargo test -p hublink --test soak` (a few seconds in debug). The full run:
//!
//! ```sh
//! HUBLINK_SOAK_DROPS=1000 HUBLINK_SOAK_MESSAGES=100000 \
//!   cargo test --release -p hublink --test soak -- --nocapture
//! ```
//!
//! Client bugs found here stay as reduced reproductions at the end: with stateful reconnect a
//! send or upload item failed when the WebSocket dropped under its write (an upload then
//! stopped and its invocation hung), a drop during a resume re-sent a stale Sequence and
//! replay, and a call made just as a driver ended could be lost in its command channel.
//! `tests/js-reference/faults.test.mjs` runs the official client under the same faults; the
//! comparison is at its top.
//!
//! Each test prints its figures (time, messages, drops seen by the client, reconnects,
//! errors, tasks and heap bytes before and after). The tests take a lock, so they never run
//! at the same time. The test server runs on a runtime of its own (its own threads), so that
//! the client's runtime counts only the client's tasks for the leak check; its heap is the
//! process's, so the two big soaks start the server after measuring the heap and shut it down
//! before measuring again.

use std::collections::{BTreeMap, HashSet};
use std::future::{ready, Future};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use futures_util::{stream, StreamExt};
use hublink::{
    Error, ErrorKind, HubConnection, HubConnectionBuilder, HubConnectionState, RetryContext,
    RetryPolicy, TransportKind, UploadStream,
};
use hublink_testserver::{TestServer, TestServerOptions};
use tokio::sync::{oneshot, Notify};
use tokio::time::timeout;

// ---------------------------------------------------------------------------------------------
// parameters
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy)]
struct Params {
    drops: u64,
    messages: u64,
    seed: u64,
}

fn env_u64(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v
            .trim()
            .replace('_', "")
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a number")),
        Err(_) => default,
    }
}

impl Params {
    fn from_env() -> Params {
        Params {
            drops: env_u64("HUBLINK_SOAK_DROPS", 50).max(1),
            messages: env_u64("HUBLINK_SOAK_MESSAGES", 7_000).max(70),
            seed: env_u64("HUBLINK_SOAK_SEED", 1),
        }
    }

    /// Items per flow. The five flows exchange about 7 hub messages per item in all: an Echo
    /// is 2 (invocation, completion), a send 2 (invocation, `Message` back), a stream item,
    /// an UploadSum item and a StreamingConcat item 1 each.
    fn per_flow(&self) -> u64 {
        self.messages / 7
    }

    /// The server sends about 3 transport messages per item (Echo completions, `Message`s,
    /// stream items); a drop every `3 × per_flow / drops` of them gives about `drops` drops.
    fn mean_gap(&self) -> u64 {
        (3 * self.per_flow() / self.drops).max(1)
    }

    fn faults(&self) -> String {
        format!(
            "faults=drop_randomly:{},drop_seed:{}",
            self.mean_gap(),
            self.seed
        )
    }

    /// Bounds a whole exchange; generous, since a debug build under load is slow.
    fn overall_limit(&self) -> Duration {
        Duration::from_secs(120)
            + Duration::from_millis(self.messages * 5)
            + Duration::from_millis(self.drops * 50)
    }
}

/// Bounds a single call: nothing may hang.
const CALL_LIMIT: Duration = Duration::from_secs(30);
/// How many Echo invocations are in flight at once.
const IN_FLIGHT: usize = 100;
/// Items per StreamingConcat call in the stateful run.
const CONCAT_CHUNK: u64 = 500;

// ---------------------------------------------------------------------------------------------
// harness: one test at a time, the server on its own runtime, tracing counts
// ---------------------------------------------------------------------------------------------

fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// The test server, on a runtime (and threads) of its own.
struct Server {
    base_url: String,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    fn start(options: TestServerOptions) -> Server {
        let (url_tx, url_rx) = std::sync::mpsc::channel();
        let (shutdown, stop) = oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("server runtime");
            runtime.block_on(async move {
                let server = TestServer::start(options).await.expect("test server");
                url_tx.send(server.base_url().to_string()).unwrap();
                let _ = stop.await;
                server.shutdown().await;
            });
        });
        let base_url = url_rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the test server starts");
        Server {
            base_url,
            shutdown: Some(shutdown),
            thread: Some(thread),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(s) = self.shutdown.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn server_options() -> TestServerOptions {
    TestServerOptions {
        // The server's replay buffer only warns past its size; silence the warning.
        stateful_reconnect_buffer_size: usize::MAX,
        ..TestServerOptions::default()
    }
}

fn client_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("client runtime")
}

/// Counts hublink's tracing events by message ("transport reconnected; resuming the
/// connection", "connection lost; reconnecting", …): the drops the client actually saw.
mod counting {
    use std::collections::{BTreeMap, VecDeque};
    use std::fmt;
    use std::sync::Mutex;

    use tracing::field::{Field, Visit};
    use tracing::{Event, Subscriber};
    use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::{fmt as tfmt, EnvFilter};

    static COUNTS: Mutex<BTreeMap<String, u64>> = Mutex::new(BTreeMap::new());
    /// The latest events, with their fields, for a failure report: the last 100 go into the
    /// panic message; `HUBLINK_SOAK_EVENTS=<file>` keeps the last million and writes them there.
    static RECENT: Mutex<VecDeque<String>> = Mutex::new(VecDeque::new());

    fn keep() -> usize {
        static KEEP: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
        *KEEP.get_or_init(|| {
            if std::env::var_os("HUBLINK_SOAK_EVENTS").is_some() {
                1_000_000
            } else {
                100
            }
        })
    }

    struct Counting;

    #[derive(Default)]
    struct Fields {
        message: Option<String>,
        others: String,
    }

    impl Visit for Fields {
        fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
            if field.name() == "message" {
                self.message = Some(format!("{value:?}"));
            } else {
                self.others += &format!(" {}={value:?}", field.name());
            }
        }
    }

    impl<S: Subscriber> Layer<S> for Counting {
        fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
            if event.metadata().target().starts_with("hublink") {
                super::heap::uncounted(|| record(event));
            }
        }
    }

    /// Counts the event and keeps it among the latest ones. Not counted as heap in use:
    /// `RECENT` fills up during a run (100 events, with frames) and stays full.
    fn record(event: &Event<'_>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let Some(m) = fields.message else { return };
        {
            let mut recent = RECENT.lock().unwrap();
            if recent.len() >= keep() {
                recent.pop_front();
            }
            let thread = std::thread::current();
            recent.push_back(format!(
                "{:?} {} {m}{}",
                thread.id(),
                event.metadata().target(),
                fields.others
            ));
        }
        *COUNTS.lock().unwrap().entry(m).or_default() += 1;
    }

    /// Installs the counting layer once (plus a log printer when `RUST_LOG` is set).
    pub fn init() {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            let printer = std::env::var("RUST_LOG").ok().map(|_| {
                tfmt::layer()
                    .with_writer(|| UncountedWriter(tfmt::TestWriter::new()))
                    .with_filter(EnvFilter::from_default_env())
            });
            let _ = tracing_subscriber::registry()
                .with(Counting)
                .with(printer)
                .try_init();
        });
    }

    /// The log goes into the test's captured output, which grows with it: not counted as
    /// heap in use either (the printer's per-thread line buffer is, a few kilobytes).
    struct UncountedWriter<W>(W);

    impl<W: std::io::Write> std::io::Write for UncountedWriter<W> {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            super::heap::uncounted(|| self.0.write(buf))
        }

        fn flush(&mut self) -> std::io::Result<()> {
            super::heap::uncounted(|| self.0.flush())
        }
    }

    pub fn reset() {
        // Freed uncounted, as it was allocated.
        super::heap::uncounted(|| {
            COUNTS.lock().unwrap().clear();
            RECENT.lock().unwrap().clear();
        });
    }

    /// The latest events, one a line (the last 100; all of them go to the file named by
    /// `HUBLINK_SOAK_EVENTS`, if set).
    pub fn recent() -> String {
        let recent = RECENT.lock().unwrap();
        if let Some(path) = std::env::var_os("HUBLINK_SOAK_EVENTS") {
            let all: Vec<&str> = recent.iter().map(String::as_str).collect();
            let _ = std::fs::write(&path, all.join("\n"));
        }
        let skip = recent.len().saturating_sub(100);
        recent
            .iter()
            .skip(skip)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    }

    pub fn get(message: &str) -> u64 {
        COUNTS.lock().unwrap().get(message).copied().unwrap_or(0)
    }

    pub fn all() -> BTreeMap<String, u64> {
        COUNTS.lock().unwrap().clone()
    }
}

/// Counts the process's live heap bytes (`common/heap.rs`).
#[path = "common/heap.rs"]
mod heap;

#[global_allocator]
static ALLOCATOR: heap::Counting = heap::Counting;

const RESUMED: &str = "transport reconnected; resuming the connection";
const TRANSPORT_CLOSED: &str = "transport closed";
const RESUME_FAILED: &str = "stateful reconnect failed";
const RECONNECTING: &str = "connection lost; reconnecting";

#[derive(Default)]
struct Lifecycle {
    reconnecting: AtomicU64,
    reconnected: AtomicU64,
    closed: Mutex<Vec<Option<String>>>,
}

fn record_lifecycle(connection: &HubConnection) -> Arc<Lifecycle> {
    let events = Arc::new(Lifecycle::default());
    let e = events.clone();
    connection.on_reconnecting(move |_| {
        e.reconnecting.fetch_add(1, Ordering::SeqCst);
    });
    let e = events.clone();
    connection.on_reconnected(move |_| {
        e.reconnected.fetch_add(1, Ordering::SeqCst);
    });
    let e = events.clone();
    connection.on_close(move |error| {
        e.closed.lock().unwrap().push(error.map(|e| e.to_string()));
    });
    events
}

/// The `Message(text)` calls the server made on this client, in arrival order.
#[derive(Default)]
struct Inbox {
    texts: Mutex<Vec<String>>,
    seen: Mutex<HashSet<String>>,
    changed: Notify,
}

fn record_messages(connection: &HubConnection) -> Arc<Inbox> {
    let inbox = Arc::new(Inbox::default());
    let i = inbox.clone();
    connection.on("Message", move |(text,): (String,)| {
        let i = i.clone();
        async move {
            i.seen.lock().unwrap().insert(text.clone());
            i.texts.lock().unwrap().push(text);
            i.changed.notify_waiters();
        }
    });
    inbox
}

impl Inbox {
    fn has(&self, text: &str) -> bool {
        self.seen.lock().unwrap().contains(text)
    }

    /// Waits (bounded) until `n` messages arrived.
    async fn wait_for(&self, n: usize, limit: Duration) -> Vec<String> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let changed = self.changed.notified();
            let texts = self.texts.lock().unwrap().clone();
            if texts.len() >= n || tokio::time::Instant::now() >= deadline {
                return texts;
            }
            let _ = tokio::time::timeout_at(deadline, changed).await;
        }
    }
}

/// Waits (up to 5 s, for transports to wind down) until no more tasks are alive on this
/// runtime than `before`, and returns how many are.
async fn tasks_left(before: usize) -> usize {
    let metrics = tokio::runtime::Handle::current().metrics();
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut now = metrics.num_alive_tasks();
    while now > before && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
        now = metrics.num_alive_tasks();
    }
    assert!(
        now <= before,
        "tasks alive: {before} before, {now} after stop(): a task outlives the connection; \
         tracing counts: {:?}\nlatest events:\n{}",
        counting::all(),
        counting::recent()
    );
    now
}

/// How much more heap may be live after a soak run than before it. Not a per-message figure:
/// the growth must not depend on how many messages were exchanged (a leak of a few bytes a
/// message exceeds it in the default run already). What stays is one-time: statics
/// initialized on first use (the first test in the process pays for them) and what the
/// client runtime keeps of its own (thread-local caches of its worker threads, …).
const HEAP_GROWTH_LIMIT: isize = 64 * 1024;

/// Live heap bytes after a run: at once if within [`HEAP_GROWTH_LIMIT`] of `before`, else
/// once they are (memory on its way to be freed: a task's last reference, a thread ending),
/// or after 2 s.
async fn heap_after(before: isize) -> isize {
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut now = heap::live();
    while now - before > HEAP_GROWTH_LIMIT && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
        now = heap::live();
    }
    now
}

/// A builder for the test hub of the server at `base_url` over WebSockets, `query` (`?…` or
/// nothing) appended to its URL.
fn ws_hub(base_url: &str, query: &str) -> HubConnectionBuilder {
    HubConnectionBuilder::new()
        .with_url(format!("{base_url}/testhub{query}"))
        .with_transports([TransportKind::WebSockets])
}

/// Runs a big soak alone, with fresh tracing counts and the parameters from the environment,
/// on the client runtime. `body` returns its report and the live heap before and after it;
/// the report and the tracing counts are printed, and the soak fails if the heap grew. The
/// guard keeps other tests out while the caller checks the counts.
fn run_soak<F: Future<Output = (String, isize, isize)>>(
    what: &str,
    body: impl FnOnce(Params) -> F,
) -> (MutexGuard<'static, ()>, Params) {
    let serial = serial();
    counting::init();
    counting::reset();
    let p = Params::from_env();
    let (report, heap_before, heap_after) = client_runtime().block_on(body(p));
    println!("{report}");
    println!("tracing counts: {:?}", counting::all());
    assert_no_heap_leak(what, heap_before, heap_after);
    (serial, p)
}

/// The end of a soak report (tasks alive, live heap bytes and their peak), and the live heap
/// bytes after the run.
async fn memory_report(
    tasks_before: usize,
    tasks_after: usize,
    heap_before: isize,
) -> (String, isize) {
    let heap_after = heap_after(heap_before).await;
    let report = format!(
        "tasks alive: {tasks_before} before, {tasks_after} after; heap bytes live: \
         {heap_before} before, {heap_after} after ({:+}; peak {:+}, client and server)",
        heap_after - heap_before,
        heap::peak() - heap_before,
    );
    (report, heap_after)
}

// The heap check of the soaks rests on this. The count is the whole process's, and threads
// of other tests (runtimes winding down) may free or allocate meanwhile: a measurement they
// disturbed is taken again, so only a counter that never counts the block fails.
#[test]
fn the_counting_allocator_counts_what_is_allocated_and_freed() {
    let _serial = serial();
    let mut measured = Vec::new();
    for _ in 0..20 {
        let before = heap::live();
        let block = vec![1u8; 1 << 20];
        let grown = heap::live() - before;
        drop(block);
        let left = heap::live() - before;
        if grown >= 1 << 20 && left < 1 << 20 {
            return;
        }
        measured.push((grown, left));
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("a 1 MiB block counted as (grown, left after freeing it) = {measured:?} bytes");
}

/// Fails when the heap grew by more than [`HEAP_GROWTH_LIMIT`] over a run.
fn assert_no_heap_leak(what: &str, before: isize, after: isize) {
    assert!(
        after - before <= HEAP_GROWTH_LIMIT,
        "{what}: {before} heap bytes live before the run, {after} after it and its server: \
         {} more, over the {HEAP_GROWTH_LIMIT} allowed; something keeps memory per message or \
         per reconnect",
        after - before
    );
}

/// A soak run's connection under the drop fault, with what is measured before it: tasks
/// alive on the client's runtime and live heap bytes.
///
/// The heap is measured before the client (and its server) exist, and again (at
/// the end of the run) after both are gone. The test server runs in this process (on a
/// runtime and threads of its own, see `Server`), and what it holds is counted too: it keeps
/// an ended connection findable for 5 s (so a late poll gets 204), with its channel; a run of
/// many reconnects ends with a hundred kilobytes or more of them, which would only go after a
/// 5 s wait. So the server starts after the first measurement and is shut down (its runtime
/// and threads too) before the second: both see no server, and the server can hide no leak
/// of the client by freeing its own memory. The client's runtime exists at both (the tasks
/// are counted on it).
struct Soak {
    server: Server,
    connection: HubConnection,
    lifecycle: Arc<Lifecycle>,
    inbox: Arc<Inbox>,
    tasks_before: usize,
    heap_before: isize,
    started: Instant,
}

impl Soak {
    /// Measures, starts the server and a WebSocket connection to it (configured further by
    /// `configure`) with frames in the latest events of a failure report.
    async fn start(
        p: &Params,
        configure: impl FnOnce(HubConnectionBuilder) -> HubConnectionBuilder,
    ) -> Soak {
        let tasks_before = tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks();
        let heap_before = heap::live();
        heap::reset_peak();
        let server = Server::start(server_options());
        let started = Instant::now();
        let builder = ws_hub(&server.base_url, &format!("?{}", p.faults()))
            .with_message_content_logging(true);
        let (connection, lifecycle) = started_connection(configure(builder)).await;
        let inbox = record_messages(&connection);
        Soak {
            server,
            connection,
            lifecycle,
            inbox,
            tasks_before,
            heap_before,
            started,
        }
    }
}

/// Builds the connection, records its lifecycle events and starts it (bounded).
async fn started_connection(builder: HubConnectionBuilder) -> (HubConnection, Arc<Lifecycle>) {
    let connection = builder.build().unwrap();
    let lifecycle = record_lifecycle(&connection);
    bounded("start", CALL_LIMIT, connection.start())
        .await
        .expect("start");
    (connection, lifecycle)
}

async fn bounded<T>(what: &str, limit: Duration, f: impl Future<Output = T>) -> T {
    match timeout(limit, f).await {
        Ok(v) => v,
        Err(_) => panic!(
            "{what} did not finish within {limit:?}: hung; tracing counts: {:?}\nlatest events:\n{}",
            counting::all(),
            counting::recent()
        ),
    }
}

/// `size` numbered strings from `from` on: "17,", "18,", …
fn numbered(from: u64, size: u64) -> Vec<String> {
    (from..from + size).map(|i| format!("{i},")).collect()
}

/// The server's concatenation must be the items exactly once, in order.
fn check_concat(got: &str, expected: &str, call: u64) {
    if got == expected {
        return;
    }
    let g: Vec<&str> = got.split(',').collect();
    let e: Vec<&str> = expected.split(',').collect();
    let at = g
        .iter()
        .zip(&e)
        .position(|(a, b)| a != b)
        .unwrap_or(g.len().min(e.len()));
    let around = |v: &[&str]| v[at.saturating_sub(3)..(at + 8).min(v.len())].join(",");
    panic!(
        "StreamingConcat call {call}: {} items arrived for {}; first difference at item {at}: \
         got {} expected {}",
        g.len() - 1,
        e.len() - 1,
        around(&g),
        around(&e)
    );
}

// ---------------------------------------------------------------------------------------------
// stateful reconnect: exactly once, in order, invisible
// ---------------------------------------------------------------------------------------------

// scenario: ws.json.stateful.soak-random-drops
#[test]
fn stateful_reconnect_delivers_everything_exactly_once_in_order_across_random_drops() {
    let (_serial, p) = run_soak("stateful soak", |p| async move {
        let k = p.per_flow();
        let Soak {
            server,
            connection,
            lifecycle,
            inbox,
            tasks_before,
            heap_before,
            started,
        } = Soak::start(&p, HubConnectionBuilder::with_stateful_reconnect).await;
        let client_id = connection.connection_id();
        let server_id: String = bounded(
            "GetCallerConnectionId",
            CALL_LIMIT,
            connection.invoke("GetCallerConnectionId", ()),
        )
        .await
        .expect("GetCallerConnectionId");

        let echoes = async {
            let results: Vec<(u64, hublink::Result<String>)> = stream::iter(0..k)
                .map(|i| {
                    let connection = &connection;
                    async move {
                        let r = bounded(
                            "an Echo",
                            CALL_LIMIT,
                            connection.invoke::<String>("Echo", (format!("e{i}"),)),
                        )
                        .await;
                        (i, r)
                    }
                })
                .buffer_unordered(IN_FLIGHT)
                .collect()
                .await;
            assert_eq!(results.len() as u64, k);
            for (i, r) in results {
                assert_eq!(r.expect("an Echo fails"), format!("e{i}"), "its own value");
            }
        };
        let sends = async {
            for i in 0..k {
                bounded(
                    "a send",
                    CALL_LIMIT,
                    connection.send("InvokeWithString", (format!("s{i}"),)),
                )
                .await
                .unwrap_or_else(|e| panic!("send s{i} fails: {e:?}"));
            }
        };
        let server_stream = async {
            let items: Vec<i64> = bounded(
                "StreamCount",
                p.overall_limit(),
                connection
                    .stream::<i64>("StreamCount", (k,))
                    .expect("StreamCount starts")
                    .map(|item| item.expect("a stream item"))
                    .collect::<Vec<i64>>(),
            )
            .await;
            assert_eq!(
                items,
                (0..k as i64).collect::<Vec<_>>(),
                "stream items exactly once, in order"
            );
        };
        let upload_sum = async {
            let sum: i64 = bounded(
                "UploadSum",
                p.overall_limit(),
                connection.invoke(
                    "UploadSum",
                    (UploadStream::new(stream::iter(1..=k as i64)),),
                ),
            )
            .await
            .expect("UploadSum");
            let k = k as i64;
            assert_eq!(sum, k * (k + 1) / 2, "every uploaded item counted once");
        };
        let concat = async {
            for chunk in 0..k.div_ceil(CONCAT_CHUNK) {
                let size = CONCAT_CHUNK.min(k - chunk * CONCAT_CHUNK);
                let items = numbered(chunk * CONCAT_CHUNK, size);
                let expected = items.concat();
                let got: String = bounded(
                    "StreamingConcat",
                    CALL_LIMIT,
                    connection.invoke("StreamingConcat", (UploadStream::new(stream::iter(items)),)),
                )
                .await
                .expect("StreamingConcat");
                check_concat(&got, &expected, chunk);
            }
        };
        bounded("the exchange", p.overall_limit(), async {
            tokio::join!(echoes, sends, server_stream, upload_sum, concat)
        })
        .await;
        let texts = inbox.wait_for(k as usize, CALL_LIMIT).await;
        let expected: Vec<String> = (0..k).map(|i| format!("s{i}")).collect();
        if texts != expected {
            let seen: HashSet<&String> = texts.iter().collect();
            let missing: Vec<&String> = expected.iter().filter(|s| !seen.contains(s)).collect();
            panic!(
                "server→client sends: {} arrived for {k} sent; missing {:?}…; first out of place at {:?}",
                texts.len(),
                &missing[..missing.len().min(10)],
                texts.iter().zip(&expected).position(|(a, b)| a != b)
            );
        }

        let still: String = bounded(
            "GetCallerConnectionId",
            CALL_LIMIT,
            connection.invoke("GetCallerConnectionId", ()),
        )
        .await
        .expect("GetCallerConnectionId after the exchange");
        assert_eq!(still, server_id, "the same server-side connection");
        assert_eq!(
            connection.connection_id(),
            client_id,
            "the same connection id"
        );
        assert_eq!(
            lifecycle.reconnecting.load(Ordering::SeqCst),
            0,
            "no reconnecting event (resume failures: {})",
            counting::get(RESUME_FAILED)
        );
        assert_eq!(lifecycle.reconnected.load(Ordering::SeqCst), 0);
        assert!(lifecycle.closed.lock().unwrap().is_empty());
        bounded("stop", CALL_LIMIT, connection.stop())
            .await
            .unwrap();
        drop(connection);
        let tasks_after = tasks_left(tasks_before).await;
        let elapsed = started.elapsed();
        // What the test itself still holds grows with the messages: not the client's.
        drop((
            inbox, lifecycle, texts, expected, still, server_id, client_id,
        ));
        drop(server);
        let (memory, heap_after) = memory_report(tasks_before, tasks_after, heap_before).await;
        let report = format!(
            "stateful soak: {k} items per flow, {} hub messages, mean gap {} (seed {}): {:.1?}; \
             the client saw {} transport drops and resumed {} times ({} resume failures); \
             0 reconnects, 0 errors, everything exactly once and in order; {memory}",
            7 * k + 6,
            p.mean_gap(),
            p.seed,
            elapsed,
            counting::get(TRANSPORT_CLOSED),
            counting::get(RESUMED),
            counting::get(RESUME_FAILED),
        );
        (report, heap_before, heap_after)
    });
    let resumed = counting::get(RESUMED);
    assert!(
        resumed >= p.drops / 2,
        "the fault dropped the WebSocket only {resumed} times (aimed at {})",
        p.drops
    );
}

// ---------------------------------------------------------------------------------------------
// automatic reconnect only: nothing vanishes, nothing hangs, nothing leaks
// ---------------------------------------------------------------------------------------------

/// Retries at once, then every 10 ms, as long as fewer than 100 attempts in a row failed.
struct Quick;

impl RetryPolicy for Quick {
    fn next_retry_delay(&self, context: &RetryContext) -> Option<Duration> {
        match context.previous_retry_count {
            0 => Some(Duration::ZERO),
            n if n < 100 => Some(Duration::from_millis(10)),
            _ => None,
        }
    }
}

/// What the calls of one flow ended with.
#[derive(Debug, Default, Clone)]
struct Tally {
    calls: u64,
    ok: u64,
    errors: BTreeMap<&'static str, u64>,
}

impl Tally {
    fn error(&mut self, e: &Error) {
        let kind = match e.kind() {
            ErrorKind::ConnectionClosed => "ConnectionClosed",
            ErrorKind::InvalidState => "InvalidState",
            ErrorKind::Transport => "Transport",
            _ => panic!("an error no drop explains: {e:?}"),
        };
        *self.errors.entry(kind).or_default() += 1;
    }

    /// Counts how a call ended, its value checked by `check`; true if it failed.
    fn ended<T>(&mut self, r: hublink::Result<T>, check: impl FnOnce(T)) -> bool {
        match r {
            Ok(v) => {
                check(v);
                self.ok += 1;
                false
            }
            Err(e) => {
                self.error(&e);
                true
            }
        }
    }

    fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }
}

/// After an error, wait (bounded) until the connection is back, so that a reconnect window
/// does not eat all the calls at once.
async fn after_error(connection: &HubConnection) {
    // The state may say Connected for a moment after the transport is gone.
    tokio::time::sleep(Duration::from_millis(2)).await;
    bounded("the reconnect", CALL_LIMIT, async {
        while !matches!(
            connection.state(),
            HubConnectionState::Connected | HubConnectionState::Disconnected
        ) {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    })
    .await;
}

// scenario: ws.json.reconnect.soak-random-drops
#[test]
fn automatic_reconnect_loses_no_call_silently_hangs_nowhere_and_leaks_no_task() {
    let (_serial, p) = run_soak("automatic-reconnect soak", |p| async move {
        let k = p.per_flow();
        let Soak {
            server,
            connection,
            lifecycle,
            inbox,
            tasks_before,
            heap_before,
            started,
        } = Soak::start(&p, |b| b.with_retry_policy(Quick)).await;

        // Every flow makes at least its share of calls, and goes on until the server dropped
        // the connection `drops` times (a new connection is dropped after the same number of
        // messages each time, so how many drops a share brings depends on the seed). It stops
        // if the connection closed for good (the assertions below then fail).
        // Items per stream, upload and concatenation call: a quarter of the mean gap (at most
        // 50), so that many of them fit between two drops.
        let chunk = (p.mean_gap() / 4).clamp(1, 50);
        let lc = lifecycle.clone();
        let keep_going = move |i: u64| {
            lc.closed.lock().unwrap().is_empty()
                && (i < k || lc.reconnecting.load(Ordering::SeqCst) < p.drops)
        };

        let echoes = async {
            let tally = Mutex::new(Tally::default());
            stream::iter(0u64..)
                .take_while(|i| ready(keep_going(*i)))
                .for_each_concurrent(IN_FLIGHT, |i| {
                    let (connection, tally) = (&connection, &tally);
                    async move {
                        let r = bounded(
                            &format!("Echo e{i}"),
                            CALL_LIMIT,
                            connection.invoke::<String>("Echo", (format!("e{i}"),)),
                        )
                        .await;
                        let failed = {
                            let mut t = tally.lock().unwrap();
                            t.calls += 1;
                            t.ended(r, |v| assert_eq!(v, format!("e{i}"), "its own value"))
                        };
                        if failed {
                            after_error(connection).await;
                        }
                    }
                })
                .await;
            tally.into_inner().unwrap()
        };
        // One send at a time, each followed by its `Message` (else the sends pile up on the
        // server, behind the invocations, and a drop takes them all). A send that was written
        // must have its `Message` arrive unless a drop came in between.
        let sends = async {
            let mut tally = Tally::default();
            let mut failed = HashSet::new();
            let mut i = 0;
            while keep_going(i) {
                tally.calls += 1;
                let text = format!("s{i}");
                i += 1;
                let drops_before = lifecycle.reconnecting.load(Ordering::SeqCst);
                let r = bounded(
                    "a send",
                    CALL_LIMIT,
                    connection.send("InvokeWithString", (text.clone(),)),
                )
                .await;
                if let Err(e) = r {
                    tally.error(&e);
                    failed.insert(text);
                    after_error(&connection).await;
                    continue;
                }
                tally.ok += 1;
                let arrived = bounded("a sent Message", CALL_LIMIT, async {
                    loop {
                        let changed = inbox.changed.notified();
                        if inbox.has(&text) {
                            return true;
                        }
                        if lifecycle.reconnecting.load(Ordering::SeqCst) != drops_before {
                            return false;
                        }
                        let _ = timeout(Duration::from_millis(5), changed).await;
                    }
                })
                .await;
                if !arrived {
                    after_error(&connection).await;
                }
            }
            (tally, failed)
        };
        let streams = async {
            let mut tally = Tally::default();
            let mut items_seen = 0u64;
            let mut i = 0;
            while keep_going(i * chunk) {
                i += 1;
                tally.calls += 1;
                let started = match connection.stream::<i64>("StreamCount", (chunk,)) {
                    Ok(s) => s,
                    Err(e) => {
                        tally.error(&e);
                        after_error(&connection).await;
                        continue;
                    }
                };
                let items: Vec<hublink::Result<i64>> =
                    bounded("StreamCount", CALL_LIMIT, started.collect()).await;
                let (values, error) = match items.split_last() {
                    Some((Err(e), rest)) => (rest, Some(e)),
                    _ => (&items[..], None),
                };
                let values: Vec<i64> = values
                    .iter()
                    .map(|v| *v.as_ref().expect("an error is a stream's last item"))
                    .collect();
                assert_eq!(
                    values,
                    (0..values.len() as i64).collect::<Vec<_>>(),
                    "a prefix, exactly once, in order"
                );
                items_seen += values.len() as u64;
                match error {
                    Some(e) => {
                        tally.error(e);
                        after_error(&connection).await;
                    }
                    None => {
                        assert_eq!(
                            values.len() as u64,
                            chunk,
                            "a stream ends complete or with an error"
                        );
                        tally.ok += 1;
                    }
                }
            }
            (tally, items_seen)
        };
        let sums = async {
            let mut tally = Tally::default();
            let mut i = 0;
            while keep_going(i * chunk) {
                tally.calls += 1;
                let from = (i * chunk) as i64 + 1;
                let to = from + chunk as i64 - 1;
                i += 1;
                let r: hublink::Result<i64> = bounded(
                    "UploadSum",
                    CALL_LIMIT,
                    connection.invoke("UploadSum", (UploadStream::new(stream::iter(from..=to)),)),
                )
                .await;
                if tally.ended(r, |sum| {
                    assert_eq!(sum, (from + to) * (to - from + 1) / 2, "an exact sum")
                }) {
                    after_error(&connection).await;
                }
            }
            tally
        };
        let concats = async {
            let mut tally = Tally::default();
            let mut i = 0;
            while keep_going(i * chunk) {
                tally.calls += 1;
                let items = numbered(i * chunk, chunk);
                let expected = items.concat();
                let r: hublink::Result<String> = bounded(
                    "StreamingConcat",
                    CALL_LIMIT,
                    connection.invoke("StreamingConcat", (UploadStream::new(stream::iter(items)),)),
                )
                .await;
                if tally.ended(r, |got| check_concat(&got, &expected, i)) {
                    after_error(&connection).await;
                }
                i += 1;
            }
            tally
        };
        let (echoes, (sends, failed_sends), (streams, items_seen), sums, concats) =
            bounded("the exchange", p.overall_limit(), async {
                tokio::join!(echoes, sends, streams, sums, concats)
            })
            .await;
        // Messages of sends written before the last drop have had their chance; wait a little
        // for the rest.
        let texts = inbox
            .wait_for((sends.ok) as usize, Duration::from_secs(2))
            .await;
        bounded("stop", CALL_LIMIT, connection.stop())
            .await
            .unwrap();

        let flows = [
            ("Echo", &echoes),
            ("send", &sends),
            ("StreamCount", &streams),
            ("UploadSum", &sums),
            ("StreamingConcat", &concats),
        ];
        for (what, t) in flows {
            assert_eq!(
                t.ok + t.error_count(),
                t.calls,
                "{what}: every call ends with a result or an error: {t:?}"
            );
            assert!(
                t.ok > 0,
                "{what}: no call made it between two drops: {t:?}; try another HUBLINK_SOAK_SEED"
            );
        }
        // A send resolves once written: a drop may still lose it after that (fire and forget,
        // as in every SignalR client). What arrives was sent, arrives once, and in order.
        let mut seen = HashSet::new();
        let mut last = None;
        let mut arrived_although_failed = 0;
        for text in &texts {
            let n: u64 = text[1..].parse().expect("s<number>");
            assert!(n < sends.calls, "{text} was never sent");
            assert!(seen.insert(text), "{text} arrived twice");
            assert!(last.is_none_or(|l| l < n), "{text} arrived out of order");
            last = Some(n);
            arrived_although_failed += u64::from(failed_sends.contains(text));
        }
        let reconnects = lifecycle.reconnecting.load(Ordering::SeqCst);
        assert_eq!(reconnects, lifecycle.reconnected.load(Ordering::SeqCst));
        assert_eq!(
            lifecycle.closed.lock().unwrap().as_slice(),
            &[None],
            "one close, from stop()"
        );

        drop(connection);
        let tasks_after = tasks_left(tasks_before).await;
        let elapsed = started.elapsed();

        let calls: u64 = flows.iter().map(|(_, t)| t.calls).sum();
        let errors: u64 = flows.iter().map(|(_, t)| t.error_count()).sum();
        let arrived = texts.len() as u64;
        // What the test itself still holds grows with the messages: not the client's (the
        // tallies stay, a few small maps).
        drop(seen);
        drop((texts, failed_sends, inbox, lifecycle, keep_going));
        drop(server);
        let (memory, heap_after) = memory_report(tasks_before, tasks_after, heap_before).await;
        let report = format!(
            "automatic-reconnect soak: mean gap {} (seed {}): {:.1?}; {calls} calls, {errors} \
             failed, {reconnects} reconnects ({} transport drops seen):\n  \
             Echo {echoes:?}\n  send {sends:?}: {arrived} Message(s) arrived ({} written \
             sends lost in drops, {arrived_although_failed} arrived although the send failed)\n  \
             StreamCount({chunk}) {streams:?}: {items_seen} items\n  UploadSum({chunk} items) \
             {sums:?}\n  StreamingConcat({chunk} items) {concats:?}\n  {memory}",
            p.mean_gap(),
            p.seed,
            elapsed,
            counting::get(TRANSPORT_CLOSED),
            sends.ok - (arrived - arrived_although_failed),
        );
        (report, heap_before, heap_after)
    });
    let reconnects = counting::get(RECONNECTING);
    assert!(
        reconnects >= p.drops,
        "the fault dropped the connection only {reconnects} times (aimed at {})",
        p.drops
    );
}

// ---------------------------------------------------------------------------------------------
// client bugs found by the soak, reduced
// ---------------------------------------------------------------------------------------------

/// A stateful connection to a server that drops the WebSocket every ~`mean` messages.
async fn stateful_under_drops(base_url: &str, mean: u64) -> (HubConnection, Arc<Lifecycle>) {
    counting::init();
    counting::reset();
    started_connection(
        ws_hub(base_url, &format!("?faults=drop_randomly:{mean}")).with_stateful_reconnect(),
    )
    .await
}

// scenario: ws.json.stateful.send-across-drop
#[test]
fn stateful_send_is_not_failed_by_a_transport_drop() {
    let _serial = serial();
    let server = Server::start(server_options());
    client_runtime().block_on(async {
        let (connection, lifecycle) = stateful_under_drops(&server.base_url, 5).await;
        let inbox = record_messages(&connection);
        let mut failed = Vec::new();
        for i in 0..2_000 {
            let text = format!("s{i}");
            let r = bounded(
                "a send",
                CALL_LIMIT,
                connection.send("InvokeWithString", (text.clone(),)),
            )
            .await;
            if let Err(e) = r {
                failed.push((text, e.to_string()));
            }
        }
        let texts = inbox.wait_for(2_000, CALL_LIMIT).await;
        assert_eq!(texts.len(), 2_000, "every send is delivered");
        assert_eq!(lifecycle.reconnecting.load(Ordering::SeqCst), 0);
        assert!(counting::get(RESUMED) > 0, "the WebSocket dropped");
        assert!(
            failed.is_empty(),
            "{} sends failed although delivered, e.g. {:?}",
            failed.len(),
            &failed[..failed.len().min(3)]
        );
        connection.stop().await.unwrap();
    });
}

// scenario: ws.json.stateful.upload-across-drop
#[test]
fn stateful_upload_survives_a_transport_drop() {
    let _serial = serial();
    let server = Server::start(server_options());
    client_runtime().block_on(async {
        let (connection, lifecycle) = stateful_under_drops(&server.base_url, 5).await;
        for round in 0..20i64 {
            let sum: i64 = bounded(
                "UploadSum",
                Duration::from_secs(10),
                connection.invoke("UploadSum", (UploadStream::new(stream::iter(1..=500i64)),)),
            )
            .await
            .unwrap_or_else(|e| panic!("round {round}: {e}"));
            assert_eq!(sum, 500 * 501 / 2, "round {round}");
        }
        assert_eq!(lifecycle.reconnecting.load(Ordering::SeqCst), 0);
        assert!(counting::get(RESUMED) > 0, "the WebSocket dropped");
        connection.stop().await.unwrap();
    });
}

// scenario: ws.json.stateful.drop-during-replay
#[test]
fn stateful_resume_interrupted_by_another_drop_keeps_exactly_once() {
    let _serial = serial();
    let server = Server::start(server_options());
    client_runtime().block_on(async {
        let (connection, lifecycle) = stateful_under_drops(&server.base_url, 3).await;
        let inbox = record_messages(&connection);
        let n = 1_000u64;
        let completed = AtomicU64::new(0);
        let all = stream::iter(0..n)
            .map(|i| {
                let (connection, completed) = (&connection, &completed);
                async move {
                    let r = connection
                        .invoke::<()>("InvokeWithString", (format!("m{i}"),))
                        .await;
                    completed.fetch_add(1, Ordering::SeqCst);
                    r
                }
            })
            .buffer_unordered(IN_FLIGHT)
            .collect::<Vec<hublink::Result<()>>>();
        // About 20 s on a loaded 2-core machine (load 10); 30 s was once too short there.
        let results = timeout(Duration::from_secs(60), all).await;
        let texts = inbox.wait_for(n as usize, Duration::from_secs(2)).await;
        let mut seen = HashSet::new();
        let twice: Vec<&String> = texts.iter().filter(|t| !seen.insert(*t)).collect();
        let summary = format!(
            "{} of {n} invocations completed, {} Message(s) arrived, {} of them twice (e.g. {:?})",
            completed.load(Ordering::SeqCst),
            texts.len(),
            twice.len(),
            &twice[..twice.len().min(5)]
        );
        let results = results.unwrap_or_else(|_| panic!("hung: {summary}"));
        assert!(results.iter().all(Result::is_ok), "{summary}");
        assert!(twice.is_empty(), "{summary}");
        assert_eq!(texts.len() as u64, n, "{summary}");
        assert_eq!(lifecycle.reconnecting.load(Ordering::SeqCst), 0);
        assert!(
            counting::get(RESUMED) > 1,
            "the WebSocket dropped, again and again"
        );
        connection.stop().await.unwrap();
    });
}

// ---------------------------------------------------------------------------------------------
// what hublink does when the server's Sequence is wrong or missing, and with an upload when
// the connection drops (tests/js-reference/faults.test.mjs runs the same with the official
// client; the comparison is at the top of that file)
// ---------------------------------------------------------------------------------------------

/// Echo `n` times, one after the other.
async fn echoes(connection: &HubConnection, n: u64) {
    for i in 0..n {
        let got: String = bounded(
            "an Echo",
            CALL_LIMIT,
            connection.invoke("Echo", (format!("m{i}"),)),
        )
        .await
        .unwrap();
        assert_eq!(got, format!("m{i}"));
    }
}

// scenario: ws.json.stateful.bad-sequence-high
#[test]
fn a_sequence_above_what_was_received_ends_the_connection_and_reconnects() {
    let _serial = serial();
    let server = Server::start(server_options());
    client_runtime().block_on(async {
        let connection = ws_hub(&server.base_url, "?faults=bad_sequence:1000")
            .with_stateful_reconnect()
            .with_automatic_reconnect_delays([Duration::ZERO])
            .build()
            .unwrap();
        let (tx, mut events) = tokio::sync::mpsc::unbounded_channel();
        let t = tx.clone();
        connection.on_reconnecting(move |e| {
            let _ = t.send(format!(
                "reconnecting: {}",
                e.map(|e| e.to_string()).unwrap_or_default()
            ));
        });
        connection.on_reconnected(move |_| {
            let _ = tx.send("reconnected".to_owned());
        });
        bounded("start", CALL_LIMIT, connection.start())
            .await
            .unwrap();
        let first_id = connection.connection_id();
        echoes(&connection, 3).await;
        // A call pending across the drop (a stream: it does not hold up Abort on the server).
        let pending = connection.stream::<String>("InfiniteStream", ()).unwrap();
        let _ = connection.send("Abort", ()).await;
        assert_eq!(
            bounded("reconnecting", CALL_LIMIT, events.recv())
                .await
                .unwrap(),
            "reconnecting: Sequence ID greater than amount of messages we've received."
        );
        assert_eq!(
            bounded("reconnected", CALL_LIMIT, events.recv())
                .await
                .unwrap(),
            "reconnected"
        );
        assert_ne!(connection.connection_id(), first_id, "a new connection");
        let ended: Vec<hublink::Result<String>> =
            bounded("the pending call", CALL_LIMIT, pending.collect()).await;
        assert!(
            matches!(ended.as_slice(), [Err(_)]),
            "the pending call fails: {ended:?}"
        );
        echoes(&connection, 1).await;
        connection.stop().await.unwrap();
    });
}

// scenario: ws.json.stateful.bad-sequence-low
#[test]
fn a_sequence_below_the_right_one_silently_swallows_as_many_messages() {
    let _serial = serial();
    let server = Server::start(server_options());
    client_runtime().block_on(async {
        let (connection, lifecycle) = started_connection(
            ws_hub(&server.base_url, "?faults=bad_sequence:1").with_stateful_reconnect(),
        )
        .await;
        // Five completions received (ids 1-5) and acknowledged (Ack after 1 s): the server's
        // replay buffer is empty, so the right Sequence after a drop is 6.
        echoes(&connection, 5).await;
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        let _ = connection.send("Abort", ()).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        // Sequence 1 instead: the next five messages count as 1-5 again, duplicates.
        let calls = (0..6).map(|i| {
            let connection = &connection;
            async move {
                timeout(
                    Duration::from_secs(3),
                    connection.invoke::<String>("Echo", (format!("after{i}"),)),
                )
                .await
            }
        });
        let results = futures_util::future::join_all(calls).await;
        let completed = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(
            completed, 1,
            "five completions were dropped as duplicates, the sixth arrived: {results:?}"
        );
        assert_eq!(lifecycle.reconnecting.load(Ordering::SeqCst), 0);
        connection.stop().await.unwrap();
    });
}

// scenario: ws.json.stateful.ignore-sequence
#[test]
fn without_the_servers_sequence_the_resumed_connection_stays_deaf() {
    let _serial = serial();
    // Pings every 200 ms: they keep the client's 1 s server timeout from firing.
    let server = Server::start(TestServerOptions {
        keep_alive_interval: Duration::from_millis(200),
        ..server_options()
    });
    client_runtime().block_on(async {
        let (connection, lifecycle) = started_connection(
            ws_hub(&server.base_url, "?faults=ignore_sequence")
                .with_stateful_reconnect()
                .with_keep_alive_interval(Duration::from_millis(200))
                .with_server_timeout(Duration::from_secs(1)),
        )
        .await;
        echoes(&connection, 2).await;
        let _ = connection.send("Abort", ()).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        // Everything the server sends is ignored while waiting for its Sequence, which never
        // comes; its pings still count as traffic, so no server timeout ends it either.
        let r = timeout(
            Duration::from_secs(3),
            connection.invoke::<String>("Echo", ("deaf",)),
        )
        .await;
        assert!(r.is_err(), "no completion gets through: {r:?}");
        assert_eq!(connection.state(), HubConnectionState::Connected);
        assert_eq!(lifecycle.reconnecting.load(Ordering::SeqCst), 0);
        assert!(lifecycle.closed.lock().unwrap().is_empty());
        connection.stop().await.unwrap();
    });
}

// scenario: ws.json.reconnect.upload-across-drop
#[test]
fn a_drop_during_an_upload_fails_the_invocation_and_releases_the_upload() {
    let _serial = serial();
    let server = Server::start(server_options());
    client_runtime().block_on(async {
        let (connection, lifecycle) = started_connection(
            ws_hub(&server.base_url, "").with_automatic_reconnect_delays([Duration::ZERO]),
        )
        .await;
        let (items, rx) = tokio::sync::mpsc::unbounded_channel::<i64>();
        let upload = UploadStream::new(tokio_stream_from(rx));
        let sum = connection.invoke::<i64>("UploadSum", (upload,));
        tokio::pin!(sum);
        items.send(1).unwrap();
        assert!(timeout(Duration::from_millis(200), &mut sum).await.is_err());
        let _ = connection.send("Abort", ()).await;
        let r = bounded("the upload's invocation", CALL_LIMIT, &mut sum).await;
        assert!(r.is_err(), "the invocation fails with the drop: {r:?}");
        // The upload source is let go of (not polled forever), so the producer learns it.
        bounded("the upload released", CALL_LIMIT, async {
            while items.send(2).is_ok() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await;
        bounded("reconnected", CALL_LIMIT, async {
            while lifecycle.reconnected.load(Ordering::SeqCst) == 0 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await;
        connection.stop().await.unwrap();
    });
}

/// An unbounded receiver as a stream.
fn tokio_stream_from<T: Send + 'static>(
    rx: tokio::sync::mpsc::UnboundedReceiver<T>,
) -> impl futures_util::Stream<Item = T> + Send {
    stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|v| (v, rx)) })
}

// scenario: ws.json.reconnect.calls-during-drop
#[test]
fn calls_racing_a_connection_loss_all_end() {
    let _serial = serial();
    counting::init();
    counting::reset();
    let server = Server::start(server_options());
    client_runtime().block_on(async {
        let (connection, lifecycle) = started_connection(
            ws_hub(&server.base_url, "?faults=drop_randomly:2").with_retry_policy(Quick),
        )
        .await;
        let until = Instant::now() + Duration::from_secs(20);
        let hung = AtomicU64::new(0);
        let calls = AtomicU64::new(0);
        stream::iter(0..200)
            .for_each_concurrent(None, |w| {
                let (connection, hung, calls) = (&connection, &hung, &calls);
                async move {
                    let mut i = 0u64;
                    while Instant::now() < until && hung.load(Ordering::SeqCst) == 0 {
                        i += 1;
                        calls.fetch_add(1, Ordering::SeqCst);
                        let call = async {
                            if w % 2 == 0 {
                                connection
                                    .invoke::<String>("Echo", (format!("{w}-{i}"),))
                                    .await
                                    .map(drop)
                            } else {
                                let items: hublink::Result<Vec<i64>> =
                                    match connection.stream::<i64>("StreamCount", (3,)) {
                                        Ok(s) => s.collect::<Vec<_>>().await.into_iter().collect(),
                                        Err(e) => Err(e),
                                    };
                                items.map(drop)
                            }
                        };
                        match timeout(Duration::from_secs(10), call).await {
                            Ok(Ok(())) => {}
                            Ok(Err(_)) => tokio::time::sleep(Duration::from_millis(1)).await,
                            Err(_) => {
                                hung.fetch_add(1, Ordering::SeqCst);
                            }
                        }
                    }
                }
            })
            .await;
        let reconnects = lifecycle.reconnecting.load(Ordering::SeqCst);
        println!(
            "{} calls, {reconnects} reconnects, {} hung",
            calls.load(Ordering::SeqCst),
            hung.load(Ordering::SeqCst)
        );
        assert_eq!(
            hung.load(Ordering::SeqCst),
            0,
            "a call neither completed nor failed within 10 s ({reconnects} reconnects)"
        );
        assert!(reconnects > 0, "the connection was lost");
        connection.stop().await.unwrap();
    });
}
