//! One process's part of a load run: open the connections, run the workload, report.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;
use hublink::{HubConnection, Value};
use tokio::io::AsyncBufReadExt;
use tokio::time::Instant;

use super::report::{Report, RunFacts};
use super::stats::Stats;
use super::{child_line, progress, system};
use crate::args::{LoadArgs, Workload};
use crate::connection;
use crate::failure::Failure;

/// How long one connection may take to open before it counts as failed.
const OPEN_LIMIT: Duration = Duration::from_secs(60);
/// How long messages still on their way may take to arrive after the workload's end.
const DELIVERY_GRACE: Duration = Duration::from_secs(5);
/// How long stopping every connection may take.
const STOP_LIMIT: Duration = Duration::from_secs(30);
/// Marks this run's messages (their text: `hublink-load:<sent µs>:<padding>`).
const TAG: &str = "hublink-load:";

/// One connection of the run, with its group (group-chat).
struct Member {
    connection: HubConnection,
    group: usize,
}

/// Runs this process's part and reports it.
pub async fn run(args: &LoadArgs) -> Result<Report, Failure> {
    // Built (no IO yet) before anything is opened: bad options fail the run at once.
    let connections = (0..args.connections)
        .map(|_| connection::build(&args.url, &args.connection))
        .collect::<Result<Vec<_>, _>>()?;
    system::raise_open_file_limit();
    let stats = Arc::new(Stats::new());
    let stopping = Arc::new(AtomicBool::new(false));
    let ticker = progress(
        stats.clone(),
        args.connections,
        args.child.is_some(),
        args.quiet,
    );
    let rss_before = system::resident_bytes();
    let opened_at = Instant::now();
    let members = open_all(args, connections, &stats, &stopping).await;
    let open_seconds = opened_at.elapsed().as_secs_f64();
    let rss_connected = system::resident_bytes();
    if args.child.is_some() {
        child_line(&serde_json::json!({ "ready": true }))?;
        wait_for_go().await?;
    }
    let duration = Duration::from_secs_f64(args.duration);
    let expected = run_workload(args, &members, &stats, duration).await;
    if expected.is_some() {
        let until = Instant::now() + DELIVERY_GRACE;
        while Stats::get(&stats.delivered) < expected.unwrap_or(0) && Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    stopping.store(true, Ordering::SeqCst);
    let stops = members.iter().map(|m| m.connection.stop());
    let _ = tokio::time::timeout(STOP_LIMIT, join_all(stops)).await;
    ticker.abort();
    Ok(Report::new(
        &stats,
        RunFacts {
            workload: args.workload,
            requested: args.connections as u64,
            open_seconds,
            duration_seconds: args.duration,
            expected_deliveries: expected,
            rss_before,
            rss_connected,
        },
    ))
}

/// Opens the connections at the ramp rate; the ones that opened, in order.
async fn open_all(
    args: &LoadArgs,
    connections: Vec<HubConnection>,
    stats: &Arc<Stats>,
    stopping: &Arc<AtomicBool>,
) -> Vec<Member> {
    let listening = matches!(args.workload, Workload::Broadcast | Workload::GroupChat);
    let pause = (args.ramp > 0.0).then(|| Duration::from_secs_f64(1.0 / args.ramp));
    let started = Instant::now();
    let mut opening = Vec::with_capacity(args.connections);
    for (index, connection) in connections.into_iter().enumerate() {
        if let Some(pause) = pause {
            tokio::time::sleep_until(started + pause * index as u32).await;
        }
        let group = index / args.group_size;
        watch(&connection, stats, stopping);
        if listening {
            count_deliveries(&connection, stats);
        }
        let stats = stats.clone();
        let workload = args.workload;
        opening.push(tokio::spawn(async move {
            let opened = tokio::time::timeout(OPEN_LIMIT, async {
                connection.start().await?;
                if workload == Workload::GroupChat {
                    connection
                        .invoke_value("JoinGroup", vec![Value::String(group_name(group))])
                        .await?;
                }
                Ok::<_, hublink::Error>(())
            })
            .await;
            match opened {
                Ok(Ok(())) => {
                    Stats::add(&stats.up, 1);
                    Some(Member { connection, group })
                }
                Ok(Err(error)) => {
                    stats.record_error(&error);
                    Stats::add(&stats.connect_failures, 1);
                    None
                }
                Err(_) => {
                    stats.record_error(&hublink::Error::new(hublink::ErrorKind::Timeout, "open"));
                    Stats::add(&stats.connect_failures, 1);
                    None
                }
            }
        }));
    }
    join_all(opening)
        .await
        .into_iter()
        .filter_map(|opened| opened.ok().flatten())
        .collect()
}

/// Counts reconnects, and connections that closed before the run stopped them.
fn watch(connection: &HubConnection, stats: &Arc<Stats>, stopping: &Arc<AtomicBool>) {
    let reconnecting = stats.clone();
    connection.on_reconnecting(move |_| Stats::add(&reconnecting.reconnects, 1));
    let (closed, stopping) = (stats.clone(), stopping.clone());
    connection.on_close(move |_| {
        if !stopping.load(Ordering::SeqCst) {
            Stats::add(&closed.closed, 1);
        }
    });
}

/// Counts every Message of this run and records how long it took from its sender.
fn count_deliveries(connection: &HubConnection, stats: &Arc<Stats>) {
    let stats = stats.clone();
    connection.on("Message", move |arguments: Vec<Value>| {
        if let Some(sent_us) = arguments.first().and_then(sent_at) {
            Stats::add(&stats.delivered, 1);
            stats.record_latency(system::wall_clock_us().saturating_sub(sent_us));
        }
        async {}
    });
}

fn sent_at(message: &Value) -> Option<u64> {
    let Value::String(text) = message else {
        return None;
    };
    text.strip_prefix(TAG)?.split(':').next()?.parse().ok()
}

/// A message of `payload` bytes that says when it was sent.
fn message(payload: usize) -> Value {
    let mut text = format!("{TAG}{}:", system::wall_clock_us());
    let padding = payload.saturating_sub(text.len());
    text.extend(std::iter::repeat_n('x', padding));
    Value::String(text)
}

fn group_name(group: usize) -> String {
    format!("hublink-load-{}-{group}", std::process::id())
}

/// Runs the workload for `duration`; the deliveries the run should see (broadcast and
/// group-chat), counted from the sends that succeeded.
async fn run_workload(
    args: &LoadArgs,
    members: &[Member],
    stats: &Arc<Stats>,
    duration: Duration,
) -> Option<u64> {
    let start = Instant::now();
    let end = start + duration;
    let interval = Duration::from_secs_f64(1.0 / args.rate);
    match args.workload {
        Workload::Idle => {
            tokio::time::sleep(duration).await;
            None
        }
        Workload::Echo => {
            let calls = members.iter().enumerate().map(|(i, member)| {
                repeat(
                    staggered(start, interval, i, members.len()),
                    end,
                    interval,
                    || {
                        let call = member
                            .connection
                            .invoke_value("Echo", vec![message(args.payload)]);
                        async move { call.await.map(|_| ()) }
                    },
                    stats,
                    true,
                )
            });
            join_all(calls).await;
            None
        }
        Workload::Broadcast => {
            let expected = Arc::new(AtomicU64::new(0));
            // In a run over several processes only the first one broadcasts.
            if let Some(sender) = members.first().filter(|_| args.child.unwrap_or(0) == 0) {
                let listeners = members.len() as u64;
                let expected = expected.clone();
                repeat(
                    start,
                    end,
                    interval,
                    || {
                        let call = sender
                            .connection
                            .invoke_value("SendToAll", vec![message(args.payload)]);
                        let expected = expected.clone();
                        async move {
                            call.await?;
                            expected.fetch_add(listeners, Ordering::Relaxed);
                            Ok(())
                        }
                    },
                    stats,
                    false,
                )
                .await;
            } else {
                tokio::time::sleep_until(end).await;
            }
            Some(expected.load(Ordering::Relaxed))
        }
        Workload::GroupChat => {
            let mut group_sizes = std::collections::HashMap::<usize, u64>::new();
            for member in members {
                *group_sizes.entry(member.group).or_default() += 1;
            }
            let expected = Arc::new(AtomicU64::new(0));
            let sends = members.iter().enumerate().map(|(i, member)| {
                let (size, group) = (group_sizes[&member.group], group_name(member.group));
                let expected = expected.clone();
                repeat(
                    staggered(start, interval, i, members.len()),
                    end,
                    interval,
                    move || {
                        let call = member.connection.invoke_value(
                            "SendToGroup",
                            vec![Value::String(group.clone()), message(args.payload)],
                        );
                        let expected = expected.clone();
                        async move {
                            call.await?;
                            expected.fetch_add(size, Ordering::Relaxed);
                            Ok(())
                        }
                    },
                    stats,
                    false,
                )
            });
            join_all(sends).await;
            Some(expected.load(Ordering::Relaxed))
        }
    }
}

/// The first due time of the `i`-th of `n` connections: spread evenly over one interval, so the
/// connections do not all call at the same instant.
fn staggered(start: Instant, interval: Duration, i: usize, n: usize) -> Instant {
    start + interval.mul_f64(i as f64 / n as f64)
}

/// Runs `call` at `first`, then every `interval` until `end`, one at a time; counts each
/// outcome and, with `timed`, records its latency from the time it was due (so a slow call
/// that delays the next one shows in the percentiles instead of hiding).
async fn repeat<F, Fut>(
    first: Instant,
    end: Instant,
    interval: Duration,
    call: F,
    stats: &Arc<Stats>,
    timed: bool,
) where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = hublink::Result<()>>,
{
    let mut due = first;
    while due < end {
        tokio::time::sleep_until(due).await;
        match call().await {
            Ok(()) => {
                Stats::add(&stats.calls_ok, 1);
                if timed {
                    stats.record_latency(due.elapsed().as_micros() as u64);
                }
            }
            Err(error) => {
                Stats::add(&stats.calls_failed, 1);
                stats.record_error(&error);
            }
        }
        due += interval;
    }
}

/// A child process waits for its parent's `go` (every process has its connections up).
async fn wait_for_go() -> Result<(), Failure> {
    let mut line = String::new();
    tokio::io::BufReader::new(tokio::io::stdin())
        .read_line(&mut line)
        .await
        .map_err(|e| Failure::Usage(format!("no word from the parent process: {e}")))?;
    if line.trim() == "go" {
        Ok(())
    } else {
        Err(Failure::Usage("the parent process ended the run".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_says_when_it_was_sent_and_has_the_payload_size() {
        let before = system::wall_clock_us();
        let sent = message(64);
        let Value::String(text) = &sent else { panic!() };
        assert_eq!(text.len(), 64);
        assert!(sent_at(&sent).unwrap() >= before);
        assert_eq!(sent_at(&Value::from("other:1")), None);
    }
}
