//! Other clients as peers: a child process per measurement (`benchmarks/peers/*/run.sh`),
//! against the same server, in the same rounds. The peer prints `window` when its measured
//! window starts and `done OPS SECONDS` when it ends (benchmarks/peers/README.md); the CPU
//! snapshots are taken here at those two lines, with the peer's process as the client.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hublink::HubProtocol;

use crate::{cpu, Sample};

/// A peer client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Peer {
    /// hublink's Kotlin binding on the JVM (`benchmarks/peers/kotlin`).
    Kotlin,
    /// The official `@microsoft/signalr` on Node (`benchmarks/peers/node`).
    Node,
}

impl Peer {
    fn script(self) -> PathBuf {
        let dir = match self {
            Peer::Kotlin => "kotlin",
            Peer::Node => "node",
        };
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("peers")
            .join(dir)
            .join("run.sh")
    }

    /// Builds or installs what the peer needs (`run.sh --prepare`), once, before the rounds.
    pub fn prepare(self) -> Result<(), String> {
        let script = self.script();
        let status = Command::new(&script)
            .arg("--prepare")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .status()
            .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
        if !status.success() {
            return Err(format!("{} --prepare failed ({status})", script.display()));
        }
        Ok(())
    }
}

/// What one peer run measures.
pub struct PeerRun<'a> {
    pub peer: Peer,
    pub hub_url: &'a str,
    pub protocol: HubProtocol,
    /// "echo", "echo-one-task" or "stream".
    pub workload: &'static str,
    pub inflight: usize,
    pub warmup: Duration,
    pub duration: Duration,
    pub stream_items: u64,
    pub server_pid: u32,
    /// The whole run (start, warm-up, window, stop) must end within this.
    pub limit: Duration,
}

/// Runs the peer once and returns its window's sample.
pub async fn run(run: PeerRun<'_>) -> Result<Sample, String> {
    let protocol = match run.protocol {
        HubProtocol::MessagePack => "messagepack",
        _ => "json",
    };
    let args: Vec<String> = vec![
        run.hub_url.to_owned(),
        protocol.to_owned(),
        run.workload.to_owned(),
        run.inflight.to_string(),
        run.warmup.as_secs_f64().to_string(),
        run.duration.as_secs_f64().to_string(),
        run.stream_items.to_string(),
    ];
    let (script, server_pid, limit) = (run.peer.script(), run.server_pid, run.limit);
    tokio::task::spawn_blocking(move || run_blocking(&script, &args, server_pid, limit))
        .await
        .map_err(|e| format!("the peer's runner panicked: {e}"))?
}

fn run_blocking(
    script: &Path,
    args: &[String],
    server_pid: u32,
    limit: Duration,
) -> Result<Sample, String> {
    let mut child = Command::new(script)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", script.display()))?;
    let pid = child.id();
    // A watchdog: kill the peer when it overruns its limit.
    let finished = Arc::new(AtomicBool::new(false));
    let watchdog = {
        let finished = finished.clone();
        std::thread::spawn(move || {
            let deadline = Instant::now() + limit;
            while !finished.load(Ordering::Relaxed) {
                if Instant::now() >= deadline {
                    // SAFETY: kill(2) on our own child's PID, not reaped before `finished`.
                    unsafe {
                        libc::kill(pid as libc::pid_t, libc::SIGKILL);
                    }
                    return true;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            false
        })
    };
    let stdout = child.stdout.take().expect("piped stdout");
    let mut before = None;
    let mut result = Err("the peer ended without a result".to_owned());
    for line in BufReader::new(stdout).lines() {
        let Ok(line) = line else { break };
        let line = line.trim();
        if line == "window" {
            before = Some(cpu::snapshot_of_peer(pid, server_pid));
        } else if let Some(rest) = line.strip_prefix("done ") {
            let after = cpu::snapshot_of_peer(pid, server_pid);
            let mut fields = rest.split_whitespace();
            let ops = fields.next().and_then(|f| f.parse::<u64>().ok());
            let seconds = fields.next().and_then(|f| f.parse::<f64>().ok());
            result = match (before, ops, seconds) {
                (Some(before), Some(ops), Some(seconds)) if seconds > 0.0 => Ok(Sample::new(
                    ops,
                    Duration::from_secs_f64(seconds),
                    cpu::between(&before, &after),
                )),
                _ => Err(format!("the peer printed {line:?}")),
            };
        }
    }
    let status = child
        .wait()
        .map_err(|e| format!("waiting for the peer: {e}"))?;
    finished.store(true, Ordering::Relaxed);
    if watchdog.join().unwrap_or(false) {
        return Err(format!("the peer took more than {} s", limit.as_secs()));
    }
    if !status.success() {
        return Err(format!("the peer failed ({status})"));
    }
    result
}
