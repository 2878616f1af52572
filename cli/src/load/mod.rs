//! `hublink load`: many connections running a workload, measured.
//!
//! One process opens its connections at the ramp rate, registers the workload's handlers
//! before each start (nothing arrives unheard), runs the workload for the duration once every
//! connection is up, waits a moment for messages still on their way, stops everything and
//! reports. With `--processes P` the parent runs P copies of itself (`coordinator`), starts
//! their workloads together and merges their reports.

mod coordinator;
mod report;
mod stats;
mod system;
mod workload;

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use crate::args::LoadArgs;
use crate::failure::Failure;
use stats::Stats;

/// Runs `load`.
pub async fn load(args: LoadArgs) -> Result<(), Failure> {
    crate::commands::init_logging(args.connection.verbose);
    check(&args)?;
    let mut report = if args.processes > 1 && args.child.is_none() {
        coordinator::run(&args).await?
    } else {
        workload::run(&args).await?
    };
    if args.child.is_some() {
        return child_line(&serde_json::json!({ "report": report }));
    }
    report.histogram.clear();
    if !args.quiet {
        eprint!("{}", report.summary());
    }
    if let Some(path) = &args.report {
        let json = serde_json::to_string_pretty(&report).expect("a report serializes");
        std::fs::write(path, json + "\n").map_err(|e| {
            Failure::Usage(format!(
                "cannot write the report to {}: {e}",
                path.display()
            ))
        })?;
    }
    let json = serde_json::to_value(&report).expect("a report serializes");
    let _ = crate::output::print_json(&json, args.connection.output);
    if report.connections.up == 0 {
        return Err(Failure::Connect(hublink::Error::new(
            hublink::ErrorKind::Transport,
            format!(
                "no connection could be opened (errors: {:?}; try one with 'hublink call')",
                report.errors
            ),
        )));
    }
    Ok(())
}

fn check(args: &LoadArgs) -> Result<(), Failure> {
    let positive = |name: &str, value: f64| {
        if value.is_finite() && value > 0.0 {
            Ok(())
        } else {
            Err(Failure::Usage(format!(
                "{name} must be a positive number, not {value}"
            )))
        }
    };
    positive("--duration", args.duration)?;
    positive("--rate", args.rate)?;
    if !(args.ramp.is_finite() && args.ramp >= 0.0) {
        return Err(Failure::Usage(format!(
            "--ramp must be 0 or more, not {}",
            args.ramp
        )));
    }
    if args.connections == 0 || args.processes == 0 || args.group_size == 0 {
        return Err(Failure::Usage(
            "--connections, --processes and --group-size must be at least 1".into(),
        ));
    }
    if args.processes > args.connections {
        return Err(Failure::Usage(format!(
            "--processes ({}) cannot exceed --connections ({})",
            args.processes, args.connections
        )));
    }
    Ok(())
}

/// A JSON line to the parent process (a child's standard output is its channel).
fn child_line(json: &serde_json::Value) -> Result<(), Failure> {
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{json}")
        .and_then(|()| stdout.flush())
        .map_err(|e| Failure::Usage(format!("the parent process went away: {e}")))
}

/// Prints the counters once a second until dropped: a progress line on stderr, or (in a child
/// process) a JSON line for the parent.
fn progress(
    stats: Arc<Stats>,
    requested: usize,
    child: bool,
    quiet: bool,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let started = tokio::time::Instant::now();
        let mut last_calls = 0;
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            let snapshot = Snapshot::of(&stats);
            if child {
                let _ = child_line(&serde_json::json!({ "progress": snapshot }));
            } else if !quiet {
                let rate = snapshot.calls_ok - last_calls;
                eprintln!(
                    "{}",
                    snapshot.line(started.elapsed().as_secs_f64(), requested as u64, rate)
                );
            }
            last_calls = snapshot.calls_ok;
        }
    })
}

/// The counters at one moment.
#[derive(Debug, Clone, Copy, Default, serde::Serialize, serde::Deserialize)]
struct Snapshot {
    up: u64,
    failed: u64,
    calls_ok: u64,
    calls_failed: u64,
    delivered: u64,
    reconnects: u64,
}

impl Snapshot {
    fn of(stats: &Stats) -> Self {
        Snapshot {
            up: Stats::get(&stats.up),
            failed: Stats::get(&stats.connect_failures),
            calls_ok: Stats::get(&stats.calls_ok),
            calls_failed: Stats::get(&stats.calls_failed),
            delivered: Stats::get(&stats.delivered),
            reconnects: Stats::get(&stats.reconnects),
        }
    }

    fn sum(parts: impl Iterator<Item = Snapshot>) -> Self {
        parts.fold(Snapshot::default(), |a, b| Snapshot {
            up: a.up + b.up,
            failed: a.failed + b.failed,
            calls_ok: a.calls_ok + b.calls_ok,
            calls_failed: a.calls_failed + b.calls_failed,
            delivered: a.delivered + b.delivered,
            reconnects: a.reconnects + b.reconnects,
        })
    }

    fn line(&self, seconds: f64, requested: u64, calls_per_second: u64) -> String {
        format!(
            "[{seconds:6.1} s] connections {}/{requested} up, {} failed | {calls_per_second} calls/s, {} errors | {} delivered | {} reconnects",
            self.up, self.failed, self.calls_failed, self.delivered, self.reconnects
        )
    }
}
