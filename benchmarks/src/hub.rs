//! The measured client: `HubConnection` as users call it.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::FuturesUnordered;
use futures_util::StreamExt;
use hublink::{HubConnection, HubConnectionBuilder, HubProtocol, TransportKind};

use crate::{
    measure_run, measure_window, Callers, EchoRun, Sample, CONNECT_TIMEOUT, DRAIN_TIMEOUT,
};

async fn connect(hub_url: &str, protocol: HubProtocol) -> Result<HubConnection, String> {
    let connection = HubConnectionBuilder::new()
        .with_url(hub_url)
        .with_protocol(protocol)
        .with_transports([TransportKind::WebSockets])
        .build()
        .map_err(|e| e.to_string())?;
    tokio::time::timeout(CONNECT_TIMEOUT, connection.start())
        .await
        .map_err(|_| "start timed out")?
        .map_err(|e| format!("start: {e}"))?;
    Ok(connection)
}

async fn stop(connection: HubConnection) -> Result<(), String> {
    tokio::time::timeout(DRAIN_TIMEOUT, connection.stop())
        .await
        .map_err(|_| "stop timed out")?
        .map_err(|e| format!("stop: {e}"))
}

fn check_echo(echoed: hublink::Result<String>) -> Result<(), String> {
    match echoed.map_err(|e| format!("invoke: {e}"))? {
        echoed if echoed == "x" => Ok(()),
        echoed => Err(format!("Echo returned {echoed:?}")),
    }
}

/// Echo invocations per second with `run.inflight` calls of `invoke::<String>("Echo", ("x",))`
/// in flight: one task per call (`Callers::Tasks`), or all of them in one task's
/// `FuturesUnordered` (`Callers::OneTask`).
pub async fn echo(run: EchoRun<'_>) -> Result<Sample, String> {
    let EchoRun {
        hub_url,
        protocol,
        callers,
        inflight,
        warmup,
        duration,
        server_pid,
    } = run;
    let connection = connect(hub_url, protocol).await?;
    let count = Arc::new(AtomicU64::new(0));
    let stop_flag = Arc::new(AtomicBool::new(false));
    let (task_count, calls_per_task) = match callers {
        Callers::Tasks => (inflight, 1),
        Callers::OneTask => (1, inflight),
    };
    let tasks: Vec<_> = (0..task_count)
        .map(|_| {
            let connection = connection.clone();
            let count = count.clone();
            let stop_flag = stop_flag.clone();
            tokio::spawn(async move {
                let call = || {
                    let connection = connection.clone();
                    async move { connection.invoke::<String>("Echo", ("x",)).await }
                };
                if calls_per_task == 1 {
                    while !stop_flag.load(Ordering::Relaxed) {
                        check_echo(call().await)?;
                        count.fetch_add(1, Ordering::Relaxed);
                    }
                    return Ok(());
                }
                let mut calls: FuturesUnordered<_> = (0..calls_per_task).map(|_| call()).collect();
                while let Some(echoed) = calls.next().await {
                    check_echo(echoed)?;
                    count.fetch_add(1, Ordering::Relaxed);
                    if !stop_flag.load(Ordering::Relaxed) {
                        calls.push(call());
                    }
                }
                Ok::<_, String>(())
            })
        })
        .collect();
    let sample = measure_window(&count, warmup, duration, server_pid).await;
    stop_flag.store(true, Ordering::Relaxed);
    let drained = tokio::time::timeout(DRAIN_TIMEOUT, futures_util::future::join_all(tasks))
        .await
        .map_err(|_| "the in-flight calls did not finish in time")?;
    for result in drained {
        result.map_err(|e| format!("a caller task failed: {e}"))??;
    }
    stop(connection).await?;
    Ok(sample)
}

async fn stream_count(connection: &HubConnection, n: u64) -> Result<u64, String> {
    let mut items = connection
        .stream::<i64>("StreamCount", (n,))
        .map_err(|e| format!("stream: {e}"))?;
    let mut count = 0u64;
    let mut last = -1;
    while let Some(item) = items.next().await {
        last = item.map_err(|e| format!("stream item: {e}"))?;
        count += 1;
    }
    if count != n || last != n as i64 - 1 {
        return Err(format!("{count} items ending with {last}, expected 0..{n}"));
    }
    Ok(count)
}

/// Stream items per second of one `stream::<i64>("StreamCount", (n,))` (after a warm-up
/// stream of n/10).
pub async fn stream(
    hub_url: &str,
    protocol: HubProtocol,
    n: u64,
    server_pid: u32,
    limit: Duration,
) -> Result<Sample, String> {
    let connection = connect(hub_url, protocol).await?;
    let run = async {
        stream_count(&connection, (n / 10).max(1)).await?;
        measure_run(server_pid, stream_count(&connection, n)).await
    };
    let sample = tokio::time::timeout(limit, run)
        .await
        .map_err(|_| format!("the streams took more than {} s", limit.as_secs()))??;
    stop(connection).await?;
    Ok(sample)
}
