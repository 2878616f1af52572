//! Stateful reconnect through a proxy that cuts TCP connections (`hublink_testserver::chaos_proxy`):
//! RST, FIN, half-close and mid-frame cuts, every ~`HUBLINK_CHAOS_INTERVAL_MS` (default 25 ms)
//! for `HUBLINK_CHAOS_SECONDS` (default 12 s), negotiate requests and WebSocket upgrades
//! included, seed `HUBLINK_CHAOS_SEED` (default 1).
//!
//! Counted per direction, over every connection the client made:
//! - client → server: each `send("Tally", key)` that resolved Ok ran exactly once on the server
//!   (the server-wide `TallyCounts`), unless the connection was lost for good (a cut during
//!   the one resume attempt: automatic reconnect then starts a new connection) after the send
//!   resolved; a send that failed ran at most once; no key ever ran twice;
//! - server → client: the `Numbered(i)` messages of every `EmitNumbered` call that resolved Ok
//!   all arrived; none ever arrived twice.
//!
//! The official client runs the same workload through the same proxy in
//! tests/js-reference/chaos.test.mjs.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use hublink::{
    HubConnection, HubConnectionBuilder, HubConnectionState, HubProtocol, RetryContext,
    RetryPolicy, TransportKind,
};
use hublink_testserver::chaos_proxy::{ChaosPlan, ChaosProxy};
use hublink_testserver::{TestServer, TestServerOptions};
use serde_json::Value;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .map(|v| v.parse().unwrap_or_else(|_| panic!("{name}={v:?}")))
        .unwrap_or(default)
}

/// Retries at once, then every 20 ms, for as long as it takes.
struct Forever;

impl RetryPolicy for Forever {
    fn next_retry_delay(&self, context: &RetryContext) -> Option<Duration> {
        Some(if context.previous_retry_count == 0 {
            Duration::ZERO
        } else {
            Duration::from_millis(20)
        })
    }
}

/// One call's outcome, with the number of full reconnects seen when it resolved.
struct Outcome {
    ok: bool,
    reconnects_at_resolution: u64,
}

/// Bounds every wait: a call that never resolves is a failure, not a hang.
const CALL_LIMIT: Duration = Duration::from_secs(60);

const SENDS_PER_ROUND: u64 = 40;
const NUMBERED_PER_ROUND: i64 = 40;

async fn bounded<T>(what: &str, future: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(CALL_LIMIT, future)
        .await
        .unwrap_or_else(|_| panic!("{what} did not resolve within {CALL_LIMIT:?}"))
}

async fn run(protocol: HubProtocol, tag: &str) {
    let seconds = env_u64("HUBLINK_CHAOS_SECONDS", 12);
    let interval = Duration::from_millis(env_u64("HUBLINK_CHAOS_INTERVAL_MS", 25));
    let seed = env_u64("HUBLINK_CHAOS_SEED", 1);
    let server = TestServer::start(TestServerOptions {
        stateful_reconnect_buffer_size: usize::MAX,
        ..TestServerOptions::default()
    })
    .await
    .expect("test server");
    let mut proxy = ChaosProxy::start(
        server.addr(),
        ChaosPlan {
            interval,
            seed,
            ..ChaosPlan::default()
        },
    )
    .await
    .expect("chaos proxy");

    let connection = HubConnectionBuilder::new()
        .with_url(format!("http://{}/testhub", proxy.addr()))
        .with_transports([TransportKind::WebSockets])
        .with_protocol(protocol)
        .with_stateful_reconnect()
        .with_retry_policy(Forever)
        .with_retry_on_start(true)
        .build()
        .unwrap();
    let reconnects = Arc::new(AtomicU64::new(0));
    let reconnect_errors = Arc::new(Mutex::new(Vec::<String>::new()));
    {
        let (reconnects, reconnect_errors) = (reconnects.clone(), reconnect_errors.clone());
        connection.on_reconnecting(move |error| {
            reconnects.fetch_add(1, Ordering::SeqCst);
            let text = error.map_or_else(|| "(none)".to_owned(), |e| e.to_string());
            reconnect_errors.lock().unwrap().push(text);
        });
    }
    let numbered = Arc::new(Mutex::new(Vec::<i64>::new()));
    {
        let numbered = numbered.clone();
        connection.on("Numbered", move |(i,): (i64,)| {
            numbered.lock().unwrap().push(i);
            async {}
        });
    }
    bounded("start", connection.start())
        .await
        .expect("start (retried through the cuts)");

    let began = Instant::now();
    let mut sends: Vec<(String, Outcome)> = Vec::new();
    let mut emits: Vec<(i64, Outcome)> = Vec::new();
    let mut round = 0u64;
    while began.elapsed() < Duration::from_secs(seconds) {
        wait_connected(&connection).await;
        let keys: Vec<String> = (0..SENDS_PER_ROUND)
            .map(|i| format!("{tag}/{round}/{i}"))
            .collect();
        // Submitted at once, one after another, without awaiting: they go out back to back.
        let pending: Vec<_> = keys
            .iter()
            .map(|key| connection.send("Tally", (key.clone(),)))
            .collect();
        let start = round as i64 * NUMBERED_PER_ROUND;
        let emitted = connection.invoke::<i64>("EmitNumbered", (start, NUMBERED_PER_ROUND));
        let resolved = bounded("a round of sends", join_all(pending)).await;
        for (key, result) in keys.into_iter().zip(resolved) {
            sends.push((
                key,
                Outcome {
                    ok: result.is_ok(),
                    reconnects_at_resolution: reconnects.load(Ordering::SeqCst),
                },
            ));
        }
        let emitted = bounded("EmitNumbered", emitted).await;
        if let Ok(count) = &emitted {
            assert_eq!(*count, NUMBERED_PER_ROUND);
        }
        emits.push((
            start,
            Outcome {
                ok: emitted.is_ok(),
                reconnects_at_resolution: reconnects.load(Ordering::SeqCst),
            },
        ));
        round += 1;
    }

    proxy.stop_cutting();
    // Asked round by round: the whole map of a long run exceeds the maximum message size.
    let mut tallies = HashMap::<String, u64>::new();
    for asked in 0..round {
        let counts = tally_counts(&connection, &format!("{tag}/{asked}/"), &reconnect_errors).await;
        tallies.extend(counts);
    }
    // Numbered messages of Ok calls came before their completion: by now all were handled,
    // unless the handlers are behind; give them a moment.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let numbered = numbered.lock().unwrap().clone();
    let full_reconnects = reconnects.load(Ordering::SeqCst);
    bounded("stop", connection.stop()).await.unwrap();

    let duplicated: Vec<_> = tallies.iter().filter(|(_, &n)| n > 1).collect();
    let ok_sends = sends.iter().filter(|(_, o)| o.ok).count();
    let lost: Vec<_> = sends
        .iter()
        .filter(|(key, o)| o.ok && !tallies.contains_key(key))
        .collect();
    let lost_in_stateful = lost
        .iter()
        .filter(|(_, o)| o.reconnects_at_resolution == full_reconnects)
        .count();
    let mut seen = HashMap::<i64, u32>::new();
    for i in &numbered {
        *seen.entry(*i).or_default() += 1;
    }
    let numbered_twice = seen.values().filter(|&&n| n > 1).count();
    let missing_after_ok: Vec<i64> = emits
        .iter()
        .filter(|(_, o)| o.ok)
        .flat_map(|(start, _)| *start..*start + NUMBERED_PER_ROUND)
        .filter(|i| !seen.contains_key(i))
        .collect();
    let ok_emits = emits.iter().filter(|(_, o)| o.ok).count();
    let cuts = proxy.cuts();
    eprintln!(
        "chaos {tag}: {seconds} s, cuts {cuts:?} ({} in all) over {} TCP connections; \
         {full_reconnects} full reconnects; client→server: {} sends, {ok_sends} ok, {} lost \
         with a connection lost for good after they resolved, {} twice; server→client: {} \
         EmitNumbered, {ok_emits} ok, {} messages, {numbered_twice} twice",
        proxy.total_cuts(),
        proxy.accepted(),
        sends.len(),
        lost.len(),
        duplicated.len(),
        emits.len(),
        numbered.len(),
    );

    assert!(
        proxy.total_cuts() >= seconds * 10,
        "the proxy cut only {} times",
        proxy.total_cuts()
    );
    assert!(ok_sends > 0 && ok_emits > 0, "nothing got through the cuts");
    assert!(
        duplicated.is_empty(),
        "client → server: {} messages ran twice on the server, e.g. {:?}",
        duplicated.len(),
        &duplicated[..duplicated.len().min(5)]
    );
    assert_eq!(
        lost_in_stateful, 0,
        "client → server: sends resolved Ok and never ran, although the connection they were \
         written to was resumed (not replaced)"
    );
    assert_eq!(
        numbered_twice, 0,
        "server → client: messages delivered twice"
    );
    assert!(
        missing_after_ok.is_empty(),
        "server → client: {} messages of EmitNumbered calls that resolved Ok never arrived, \
         e.g. {:?}",
        missing_after_ok.len(),
        &missing_after_ok[..missing_after_ok.len().min(5)]
    );
    server.shutdown().await;
}

/// How often `TallyCounts` is asked before the test gives up, and the pause between tries:
/// a cut the proxy made just before it stopped can still cost a reconnect (or two, when it
/// lands in the resume) after the last round.
const TALLY_TRIES: usize = 20;
const TALLY_PAUSE: Duration = Duration::from_millis(50);

/// `TallyCounts(prefix)`, asked again if an answer is lost to a late cut.
async fn tally_counts(
    connection: &HubConnection,
    prefix: &str,
    reconnect_errors: &Mutex<Vec<String>>,
) -> HashMap<String, u64> {
    let mut last_error = None;
    for attempt in 0..TALLY_TRIES {
        if attempt > 0 {
            tokio::time::sleep(TALLY_PAUSE).await;
        }
        wait_connected(connection).await;
        match bounded(
            "TallyCounts",
            connection.invoke::<Value>("TallyCounts", (prefix,)),
        )
        .await
        {
            Ok(counts) => {
                return counts
                    .as_object()
                    .expect("TallyCounts answers a map")
                    .iter()
                    .map(|(k, v)| (k.clone(), v.as_u64().unwrap()))
                    .collect()
            }
            Err(e) => last_error = Some(e),
        }
    }
    let errors = reconnect_errors.lock().unwrap();
    panic!(
        "TallyCounts({prefix:?}) failed {TALLY_TRIES} times: {last_error:?}; state {:?}; the \
         last reconnects were for: {:?}",
        connection.state(),
        &errors[errors.len().saturating_sub(5)..]
    );
}

async fn wait_connected(connection: &HubConnection) {
    bounded("a connected state", async {
        while connection.state() != HubConnectionState::Connected {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
}

// scenario: ws.json.stateful.chaos-tcp-cuts
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stateful_json_exactly_once_through_tcp_cuts() {
    run(HubProtocol::Json, "ws.json").await;
}

// scenario: ws.msgpack.stateful.chaos-tcp-cuts
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stateful_msgpack_exactly_once_through_tcp_cuts() {
    run(HubProtocol::MessagePack, "ws.msgpack").await;
}
