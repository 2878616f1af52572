//! How often the hub driver runs for a burst of calls from many tasks, counted from its
//! "driver turn" trace events. A process of its own: the counting subscriber is global.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hublink::{HubConnectionBuilder, HubProtocol, TransportKind};
use hublink_testserver::{TestServer, TestServerOptions};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

const TASKS: usize = 100;
const CALLS_PER_TASK: usize = 50;

static TURNS: AtomicU64 = AtomicU64::new(0);

struct CountTurns;

impl<S: Subscriber> Layer<S> for CountTurns {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        if event.metadata().target() == "hublink::hub::driver"
            && event.metadata().level() == &tracing::Level::TRACE
        {
            let mut message = String::new();
            event.record(
                &mut |field: &tracing::field::Field, value: &dyn std::fmt::Debug| {
                    if field.name() == "message" {
                        message = format!("{value:?}");
                    }
                },
            );
            if message == "driver turn" {
                TURNS.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// 100 tasks each make 50 calls in a row on one connection (100 calls in flight). The driver
/// lets the woken callers run before it flushes their calls, and does not run again for each
/// of their calls meanwhile: it takes far fewer turns than there are calls (it took about one
/// per call when every call woke it).
// scenario: ws.json.invoke.concurrent-callers
#[test]
fn a_burst_of_calls_from_many_tasks_costs_the_driver_few_turns() {
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(CountTurns))
        .expect("the only subscriber of this process");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let server = TestServer::start(TestServerOptions::default())
            .await
            .unwrap();
        let connection = HubConnectionBuilder::new()
            .with_url(format!("{}/testhub", server.base_url()))
            .with_transports([TransportKind::WebSockets])
            .with_protocol(HubProtocol::Json)
            .build()
            .unwrap();
        connection.start().await.unwrap();
        let before = TURNS.load(Ordering::Relaxed);
        let callers: Vec<_> = (0..TASKS)
            .map(|task| {
                let connection = connection.clone();
                tokio::spawn(async move {
                    for call in 0..CALLS_PER_TASK {
                        let text = format!("{task}/{call}");
                        let echoed: String = connection.invoke("Echo", (&text,)).await.unwrap();
                        assert_eq!(echoed, text);
                    }
                })
            })
            .collect();
        let all = futures_util::future::join_all(callers);
        for finished in tokio::time::timeout(Duration::from_secs(60), all)
            .await
            .unwrap()
        {
            finished.unwrap();
        }
        let turns = TURNS.load(Ordering::Relaxed) - before;
        let calls = (TASKS * CALLS_PER_TASK) as u64;
        assert!(
            turns < calls / 2,
            "the driver took {turns} turns for {calls} calls from {TASKS} tasks"
        );
        connection.stop().await.unwrap();
        eprintln!("{turns} driver turns for {calls} calls");
    });
}
