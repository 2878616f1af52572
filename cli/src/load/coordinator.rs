//! `--processes P`: P copies of this command, each with its share of the connections, started
//! together and reported as one.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

use super::report::Report;
use super::Snapshot;
use crate::args::{LoadArgs, Workload};
use crate::failure::Failure;

/// What a child said on one line.
enum Said {
    Progress(usize, Snapshot),
    Ready,
    Report(Box<Report>),
}

/// Runs the children, lets them start the workload together, merges their reports.
pub async fn run(args: &LoadArgs) -> Result<Report, Failure> {
    let exe = std::env::current_exe().map_err(|e| {
        Failure::Usage(format!("cannot find this program to run copies of it: {e}"))
    })?;
    let (said_tx, mut said) = mpsc::unbounded_channel();
    let mut children = Vec::new();
    for index in 0..args.processes {
        let share = args.connections / args.processes
            + usize::from(index < args.connections % args.processes);
        let mut child = Command::new(&exe)
            .args(std::env::args_os().skip(1))
            .args([
                "--child",
                &index.to_string(),
                "--connections",
                &share.to_string(),
            ])
            .args(["--processes", "1", "--quiet"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| Failure::Usage(format!("cannot start process {index}: {e}")))?;
        listen(index, &mut child, said_tx.clone());
        children.push(child);
    }
    drop(said_tx);
    let mut latest = vec![Snapshot::default(); args.processes];
    let mut ready = 0;
    let mut reports = Vec::new();
    let started = tokio::time::Instant::now();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    let mut last_calls = 0;
    loop {
        tokio::select! {
            said = said.recv() => match said {
                Some(Said::Progress(i, snapshot)) => latest[i] = snapshot,
                Some(Said::Ready) => {
                    ready += 1;
                    if ready == args.processes {
                        for child in &mut children {
                            if let Some(stdin) = child.stdin.as_mut() {
                                let _ = stdin.write_all(b"go\n").await;
                            }
                        }
                    }
                }
                Some(Said::Report(report)) => reports.push(*report),
                None => break,
            },
            _ = tick.tick(), if !args.quiet => {
                let all = Snapshot::sum(latest.iter().copied());
                eprintln!("{}", all.line(
                    started.elapsed().as_secs_f64(),
                    args.connections as u64,
                    all.calls_ok - last_calls,
                ));
                last_calls = all.calls_ok;
            }
        }
    }
    for child in &mut children {
        let _ = child.wait().await;
    }
    if reports.len() != args.processes {
        return Err(Failure::Usage(format!(
            "{} of {} processes did not report (see their errors above)",
            args.processes - reports.len(),
            args.processes
        )));
    }
    let expected = match args.workload {
        Workload::Broadcast => {
            // Every listener of every process should get every broadcast the first one sent.
            let sent: u64 = reports.iter().map(|r| r.calls.ok).sum();
            Some(sent * reports.iter().map(|r| r.connections.up).sum::<u64>())
        }
        Workload::GroupChat => Some(
            reports
                .iter()
                .filter_map(|r| r.deliveries.as_ref())
                .map(|d| d.expected)
                .sum(),
        ),
        Workload::Idle | Workload::Echo => None,
    };
    Ok(Report::merge(&reports, expected))
}

/// Reads a child's JSON lines until it ends.
fn listen(index: usize, child: &mut Child, said: mpsc::UnboundedSender<Said>) {
    let stdout = child.stdout.take().expect("piped");
    tokio::spawn(async move {
        let mut lines = BufReader::new(stdout).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let Ok(json) = serde_json::from_str::<serde_json::Value>(&line) else {
                continue;
            };
            let message = if let Some(p) = json.get("progress") {
                serde_json::from_value(p.clone())
                    .ok()
                    .map(|s| Said::Progress(index, s))
            } else if json.get("ready").is_some() {
                Some(Said::Ready)
            } else if let Some(r) = json.get("report") {
                serde_json::from_value(r.clone())
                    .ok()
                    .map(|r| Said::Report(Box::new(r)))
            } else {
                None
            };
            if let Some(message) = message {
                let _ = said.send(message);
            }
        }
    });
}
