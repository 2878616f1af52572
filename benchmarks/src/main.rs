//! `hublink-benchmarks`: HubConnection throughput end to end, against the test server running
//! as a separate process, next to the floor (a raw tokio-tungstenite client doing the same
//! work with pre-encoded frames). See `BENCHMARKS.md` at the repository root.
//!
//! ```sh
//! cargo run --release -p hublink-benchmarks -- --duration 3 --rounds 5
//! ```

mod cpu;
mod floor;
mod hub;
mod peer;
mod scan;
mod server;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hublink::HubProtocol;

/// Bound on connecting (negotiate, WebSocket, handshake).
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Bound on finishing the calls in flight and closing, after a window.
pub(crate) const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

const USAGE: &str = "usage: hublink-benchmarks [--duration SECS] [--warmup SECS] [--rounds N] \
[--inflight N] [--stream-items N] [--workloads echo,echo-one-task,stream] [--protocols json,messagepack] \
[--clients hublink,floor,floor-tasks,kotlin,node] [--threads N] [--pin C:S] [--server PATH]

Measures, against hublink-testserver started as a separate process (release build):
  echo           invocations per second of Echo(\"x\") with N calls in flight on one
                 connection, each call looped by its own task (N tasks)
  echo-one-task  the same N calls in flight, kept by one task (a FuturesUnordered), as the
                 floor keeps its calls in flight from one task
  stream         items per second of StreamCount(n)
for hublink's HubConnection and for the floor (a raw tokio-tungstenite client with
pre-encoded frames), over WebSockets with JSON and MessagePack, in interleaved rounds.
For echo also floor-tasks: the floor's socket task behind N caller tasks (a channel hop and
a task wake-up per call), the cost of that task structure alone.
Peers (not run by default), each a child process per measurement doing the same workloads
(benchmarks/peers): kotlin = hublink's Kotlin binding on the JVM (release library), node =
the official @microsoft/signalr on Node.
Prints a Markdown table: the median of the rounds, their spread, and each client / floor.

  --duration SECS      measured window of each echo run (default 3)
  --warmup SECS        echo calls before the window, on the same connection (default 1)
  --rounds N           rounds; each runs every selected measurement once (default 5)
  --inflight N         echo calls in flight (default 100)
  --stream-items N     items of each measured stream; a stream of N/10 warms up (default 2000000)
  --threads N          tokio worker threads of this (client) process (default: CPUs)
  --nice N             run client and server at this nice value (e.g. -10 on a shared machine,
                       as root), so that other processes disturb the measurement less
  --pin C:S            run this (client) process on CPU C and the server on CPU S alone, as if
                       on two machines: neither takes the other's CPU, and the scheduler does
                       not move their threads between CPUs (far steadier figures than without)
  --max-other CORES    measure again (up to 3 times) when other processes used more than this
                       many cores during a measurement (e.g. 0.2 on a shared machine)
  --server PATH        the test server binary (default: build it with cargo)";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Workload {
    /// Echo calls made by one task per call in flight.
    Echo,
    /// Echo calls kept in flight by one task.
    EchoOneTask,
    Stream,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Protocol {
    Json,
    MessagePack,
}

impl Protocol {
    fn hub(self) -> HubProtocol {
        match self {
            Protocol::Json => HubProtocol::Json,
            Protocol::MessagePack => HubProtocol::MessagePack,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Client {
    Hublink,
    Floor,
    /// The floor's socket task behind one caller task per call in flight (echo only).
    FloorTasks,
    /// A peer client in its own process.
    Peer(peer::Peer),
}

#[derive(Debug, Clone)]
struct Options {
    duration: Duration,
    warmup: Duration,
    rounds: usize,
    inflight: usize,
    stream_items: u64,
    workloads: Vec<Workload>,
    protocols: Vec<Protocol>,
    clients: Vec<Client>,
    threads: Option<usize>,
    nice: Option<i32>,
    /// The CPUs of the client (this process) and of the server.
    pin: Option<(usize, usize)>,
    max_other: Option<f64>,
    server: Option<PathBuf>,
    /// The flags as given, for the command line printed with the results.
    given: Vec<String>,
}

fn list<T>(value: &str, parse: impl Fn(&str) -> Option<T>) -> Result<Vec<T>, String> {
    value
        .split(',')
        .map(|v| parse(v.trim()).ok_or_else(|| format!("unknown value '{v}'\n{USAGE}")))
        .collect()
}

fn parse_args() -> Result<Options, String> {
    let mut o = Options {
        duration: Duration::from_secs(3),
        warmup: Duration::from_secs(1),
        rounds: 5,
        inflight: 100,
        stream_items: 2_000_000,
        workloads: vec![Workload::Echo, Workload::EchoOneTask, Workload::Stream],
        protocols: vec![Protocol::Json, Protocol::MessagePack],
        clients: vec![Client::Hublink, Client::Floor, Client::FloorTasks],
        threads: None,
        nice: None,
        pin: None,
        max_other: None,
        server: None,
        given: std::env::args().skip(1).collect(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "-h" || flag == "--help" {
            return Err(USAGE.into());
        }
        let value = args
            .next()
            .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
        let number = || {
            value
                .parse::<f64>()
                .ok()
                .filter(|n| n.is_finite() && *n >= 0.0)
                .ok_or_else(|| format!("{flag}: '{value}' is not a number\n{USAGE}"))
        };
        let count = || {
            number().map(|n| n as u64).and_then(|n| match n {
                0 => Err(format!("{flag} must be at least 1")),
                n => Ok(n),
            })
        };
        match flag.as_str() {
            "--duration" => o.duration = Duration::from_secs_f64(number()?.max(0.1)),
            "--warmup" => o.warmup = Duration::from_secs_f64(number()?),
            "--rounds" => o.rounds = count()? as usize,
            "--inflight" => o.inflight = count()? as usize,
            "--stream-items" => o.stream_items = count()?,
            "--threads" => o.threads = Some(count()? as usize),
            "--server" => o.server = Some(PathBuf::from(&value)),
            "--max-other" => o.max_other = Some(number()?),
            "--pin" => {
                let cpus = value
                    .split_once(':')
                    .and_then(|(c, s)| Some((c.parse().ok()?, s.parse().ok()?)));
                o.pin = Some(cpus.ok_or_else(|| {
                    format!("--pin: '{value}' is not CLIENT_CPU:SERVER_CPU\n{USAGE}")
                })?);
            }
            "--nice" => {
                o.nice = Some(
                    value
                        .parse()
                        .map_err(|_| format!("--nice: '{value}' is not an integer\n{USAGE}"))?,
                )
            }
            "--workloads" => {
                o.workloads = list(&value, |v| match v {
                    "echo" => Some(Workload::Echo),
                    "echo-one-task" => Some(Workload::EchoOneTask),
                    "stream" => Some(Workload::Stream),
                    _ => None,
                })?
            }
            "--protocols" => {
                o.protocols = list(&value, |v| match v {
                    "json" => Some(Protocol::Json),
                    "messagepack" | "msgpack" => Some(Protocol::MessagePack),
                    _ => None,
                })?
            }
            "--clients" => {
                o.clients = list(&value, |v| match v {
                    "hublink" => Some(Client::Hublink),
                    "floor" => Some(Client::Floor),
                    "floor-tasks" => Some(Client::FloorTasks),
                    "kotlin" => Some(Client::Peer(peer::Peer::Kotlin)),
                    "node" => Some(Client::Peer(peer::Peer::Node)),
                    _ => None,
                })?
            }
            _ => return Err(format!("unknown flag {flag}\n{USAGE}")),
        }
    }
    Ok(o)
}

/// How the echo calls in flight are made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Callers {
    /// One task per call in flight, each looping one call (a task wake-up per call).
    Tasks,
    /// One task keeping every call in flight, as the floor does.
    OneTask,
}

/// One echo measurement, run the same way by every client.
#[derive(Debug, Clone, Copy)]
pub(crate) struct EchoRun<'a> {
    pub hub_url: &'a str,
    pub protocol: HubProtocol,
    pub callers: Callers,
    /// Calls in flight.
    pub inflight: usize,
    pub warmup: Duration,
    pub duration: Duration,
    pub server_pid: u32,
}

/// One measurement: operations done over a window, and the CPU each side used meanwhile.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sample {
    ops: u64,
    seconds: f64,
    cpu: cpu::CpuUse,
}

impl Sample {
    pub(crate) fn new(ops: u64, elapsed: Duration, cpu: cpu::CpuUse) -> Self {
        Sample {
            ops,
            seconds: elapsed.as_secs_f64(),
            cpu,
        }
    }

    fn rate(&self) -> f64 {
        self.ops as f64 / self.seconds
    }

    /// Context switches of the client's threads per operation.
    fn switches_per_op(&self) -> f64 {
        self.cpu.client_switches as f64 / self.ops.max(1) as f64
    }

    /// Client CPU time per operation, in microseconds.
    fn client_us_per_op(&self) -> f64 {
        self.cpu.client * self.cpu.seconds / self.ops.max(1) as f64 * 1e6
    }
}

/// Waits out the warm-up, then counts what `count` gains over `duration`.
pub(crate) async fn measure_window(
    count: &AtomicU64,
    warmup: Duration,
    duration: Duration,
    server_pid: u32,
) -> Sample {
    tokio::time::sleep(warmup).await;
    let before = cpu::snapshot(server_pid);
    let start = count.load(Ordering::Relaxed);
    let started = Instant::now();
    tokio::time::sleep(duration).await;
    let end = count.load(Ordering::Relaxed);
    let elapsed = started.elapsed();
    let after = cpu::snapshot(server_pid);
    Sample::new(end - start, elapsed, cpu::between(&before, &after))
}

/// Times `work`, which returns how many operations it did, with CPU snapshots around it.
pub(crate) async fn measure_run(
    server_pid: u32,
    work: impl std::future::Future<Output = Result<u64, String>>,
) -> Result<Sample, String> {
    let before = cpu::snapshot(server_pid);
    let started = Instant::now();
    let ops = work.await?;
    let elapsed = started.elapsed();
    let after = cpu::snapshot(server_pid);
    Ok(Sample::new(ops, elapsed, cpu::between(&before, &after)))
}

type Key = (Workload, Protocol, Client);

fn protocol_name(p: Protocol) -> &'static str {
    match p {
        Protocol::Json => "JSON",
        Protocol::MessagePack => "MessagePack",
    }
}

fn client_name(c: Client) -> &'static str {
    match c {
        Client::Hublink => "hublink",
        Client::Floor => "floor",
        Client::FloorTasks => "floor, caller tasks",
        Client::Peer(peer::Peer::Kotlin) => "hublink Kotlin (JVM)",
        Client::Peer(peer::Peer::Node) => "official JS client (Node)",
    }
}

async fn run_one(key: Key, o: &Options, hub_url: &str, server_pid: u32) -> Result<Sample, String> {
    let (workload, protocol, client) = key;
    let protocol = protocol.hub();
    // Generous: a stream far slower than 20 000 items/s is broken, not slow.
    let stream_limit = Duration::from_secs(30 + o.stream_items * 11 / 10 / 20_000);
    if let Client::Peer(which) = client {
        let limit = match workload {
            Workload::Stream => stream_limit,
            _ => o.warmup + o.duration + Duration::from_secs(60),
        };
        return peer::run(peer::PeerRun {
            peer: which,
            hub_url,
            protocol,
            workload: match workload {
                Workload::Echo => "echo",
                Workload::EchoOneTask => "echo-one-task",
                Workload::Stream => "stream",
            },
            inflight: o.inflight,
            warmup: o.warmup,
            duration: o.duration,
            stream_items: o.stream_items,
            server_pid,
            limit,
        })
        .await;
    }
    match (workload, client) {
        (Workload::Echo | Workload::EchoOneTask, _) => {
            let callers = match (workload, client) {
                (Workload::Echo, Client::Hublink) | (_, Client::FloorTasks) => Callers::Tasks,
                _ => Callers::OneTask,
            };
            let run = EchoRun {
                hub_url,
                protocol,
                callers,
                inflight: o.inflight,
                warmup: o.warmup,
                duration: o.duration,
                server_pid,
            };
            match client {
                Client::Hublink => hub::echo(run).await,
                Client::Floor | Client::FloorTasks => floor::echo(run).await,
                Client::Peer(_) => unreachable!("peers ran above"),
            }
        }
        (Workload::Stream, Client::FloorTasks) => {
            unreachable!("floor-tasks runs only the echo workloads")
        }
        (Workload::Stream, Client::Hublink) => {
            hub::stream(hub_url, protocol, o.stream_items, server_pid, stream_limit).await
        }
        (Workload::Stream, Client::Floor) => {
            floor::stream(hub_url, protocol, o.stream_items, server_pid, stream_limit).await
        }
        (Workload::Stream, Client::Peer(_)) => unreachable!("peers ran above"),
    }
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

/// 1234567.8 → "1 234 568".
fn grouped(value: f64) -> String {
    let digits = format!("{:.0}", value);
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push('\u{202f}');
        }
        out.push(c);
    }
    out
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, m)| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".into())
}

/// Measurements that other processes disturbed (see `--max-other`).
#[derive(Debug, Default)]
struct Disturbed {
    /// Discarded and measured again.
    retried: usize,
    /// Kept after `MAX_RETRIES` retries.
    kept: usize,
}

/// How often a disturbed measurement is repeated before it is kept anyway.
const MAX_RETRIES: usize = 3;

fn report(
    o: &Options,
    results: &BTreeMap<Key, Vec<Sample>>,
    load_before: &str,
    disturbed: &Disturbed,
    took: Duration,
) -> String {
    let mut out = String::new();
    let command = if o.given.is_empty() {
        "cargo run --release -p hublink-benchmarks".to_owned()
    } else {
        format!(
            "cargo run --release -p hublink-benchmarks -- {}",
            o.given.join(" ")
        )
    };
    let _ = writeln!(out, "Command: `{command}`  ");
    let _ = writeln!(
        out,
        "Machine: {} CPUs ({}); load average {} before, {} after; client runtime: tokio \
         multi-thread, {} workers; server: hublink-testserver (release), own process; \
         {}nice {}.  ",
        cpu::cpus(),
        cpu_model(),
        load_before,
        load_average(),
        tokio::runtime::Handle::current().metrics().num_workers(),
        match o.pin {
            Some((client, server)) => format!("client on CPU {client}, server on CPU {server}; "),
            None => String::new(),
        },
        o.nice.unwrap_or(0),
    );
    let _ = writeln!(
        out,
        "Each value is the median of {} interleaved rounds; spread = (max − min) / median. \
         Echo: one connection, {} calls in flight, {} s warm-up then a {} s window. \
         Stream: `StreamCount({})` after a warm-up stream of a tenth of that. CPU columns: \
         cores busy during the window (client = this process, or a peer's process; other = the rest of the \
         machine). {}\n",
        o.rounds,
        o.inflight,
        o.warmup.as_secs_f64(),
        o.duration.as_secs_f64(),
        o.stream_items,
        match o.max_other {
            Some(max) => format!(
                "Measurements during which other processes used more than {max} cores were \
                 repeated: {} repeated, {} kept after {MAX_RETRIES} repeats. The run took {:.0} s.",
                disturbed.retried,
                disturbed.kept,
                took.as_secs_f64()
            ),
            None => format!("The run took {:.0} s.", took.as_secs_f64()),
        },
    );
    let _ = writeln!(
        out,
        "| workload | protocol | client | median | min – max | spread | ÷ floor | ÷ hublink | \
         client CPU | server CPU | other CPU | client CPU/op | client switches/op |"
    );
    let _ = writeln!(out, "|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|");
    for (&(workload, protocol, client), samples) in results {
        if samples.is_empty() {
            continue;
        }
        let mut rates: Vec<f64> = samples.iter().map(Sample::rate).collect();
        let med = median(&mut rates);
        let (min, max) = (rates[0], rates[rates.len() - 1]);
        let unit = match workload {
            Workload::Echo | Workload::EchoOneTask => "calls/s",
            Workload::Stream => "items/s",
        };
        // This client's median ÷ the median of `base`, and the ratios of the same rounds.
        let versus = |base: Client| {
            if client == base {
                return String::new();
            }
            match results.get(&(workload, protocol, base)) {
                Some(other) if !other.is_empty() => {
                    let mut other_rates: Vec<f64> = other.iter().map(Sample::rate).collect();
                    let ratio = med / median(&mut other_rates);
                    let mut paired: Vec<f64> = samples
                        .iter()
                        .zip(other)
                        .map(|(h, f)| h.rate() / f.rate())
                        .collect();
                    paired.sort_by(f64::total_cmp);
                    format!(
                        "**{ratio:.2}×** ({:.2}–{:.2})",
                        paired[0],
                        paired[paired.len() - 1]
                    )
                }
                _ => "–".into(),
            }
        };
        let ratio = versus(Client::Floor);
        let ratio_hublink = match client {
            Client::Floor | Client::FloorTasks => String::new(),
            _ => versus(Client::Hublink),
        };
        let pick = |f: fn(&Sample) -> f64| median(&mut samples.iter().map(f).collect::<Vec<_>>());
        let client_cpu = pick(|s| s.cpu.client);
        let server_cpu = pick(|s| s.cpu.server);
        let other_cpu = pick(|s| s.cpu.other);
        let per_op = pick(Sample::client_us_per_op);
        let switches = pick(Sample::switches_per_op);
        let workload_name = match workload {
            Workload::Echo => format!("echo ×{} tasks", o.inflight),
            Workload::EchoOneTask => format!("echo ×{} one task", o.inflight),
            Workload::Stream => "stream".to_owned(),
        };
        let _ = writeln!(
            out,
            "| {workload_name} | {} | {} | {} {unit} | {} – {} | {:.1} % | {ratio} | {ratio_hublink} | {client_cpu:.2} | \
             {server_cpu:.2} | {other_cpu:.2} | {per_op:.2} µs | {switches:.2} |",
            protocol_name(protocol),
            client_name(client),
            grouped(med),
            grouped(min),
            grouped(max),
            (max - min) / med * 100.0,
        );
    }
    out
}

async fn run(o: Options) -> Result<String, String> {
    let binary = match &o.server {
        Some(path) => path.clone(),
        None => server::build()?,
    };
    let server = server::ServerProcess::start(&binary, o.pin.map(|(_, server)| server))?;
    let hub_url = format!("{}/testhub", server.base_url());
    eprintln!(
        "server PID {} at {}; {} rounds",
        server.pid(),
        server.base_url(),
        o.rounds
    );
    for &client in &o.clients {
        if let Client::Peer(which) = client {
            eprintln!("preparing the {} peer…", client_name(client));
            which.prepare()?;
        }
    }
    let load_before = load_average();
    let mut results: BTreeMap<Key, Vec<Sample>> = BTreeMap::new();
    let mut keys = Vec::new();
    for &workload in &o.workloads {
        for &protocol in &o.protocols {
            for &client in &o.clients {
                if client == Client::FloorTasks && workload != Workload::Echo {
                    continue;
                }
                keys.push((workload, protocol, client));
            }
        }
    }
    keys.sort();
    let started = Instant::now();
    let mut disturbed = Disturbed::default();
    for round in 0..o.rounds {
        for pair in keys.chunk_by(|a, b| a.0 == b.0 && a.1 == b.1) {
            // Alternate which client goes first, so neither always runs on a warmer machine.
            let mut order = pair.to_vec();
            if round % 2 == 1 {
                order.reverse();
            }
            for key in order {
                let mut attempt = 0;
                let sample = loop {
                    attempt += 1;
                    // On a worker thread, like a user's tasks (not on the thread in `block_on`).
                    let (options, url, pid) = (o.clone(), hub_url.clone(), server.pid());
                    let sample =
                        tokio::spawn(async move { run_one(key, &options, &url, pid).await })
                            .await
                            .unwrap_or_else(|e| Err(format!("the run panicked: {e}")))
                            .map_err(|e| {
                                format!(
                                    "{:?} {} {}: {e}",
                                    key.0,
                                    protocol_name(key.1),
                                    client_name(key.2)
                                )
                            })?;
                    eprintln!(
                        "[{:>5.1} s] round {}/{} {:?} {} {}: {} /s, client {:.2} cores, server {:.2}, other {:.2}, {:.2} µs client CPU/op, {:.2} client switches/op",
                        started.elapsed().as_secs_f64(),
                        round + 1,
                        o.rounds,
                        key.0,
                        protocol_name(key.1),
                        client_name(key.2),
                        grouped(sample.rate()),
                        sample.cpu.client,
                        sample.cpu.server,
                        sample.cpu.other,
                        sample.client_us_per_op(),
                        sample.switches_per_op(),
                    );
                    match o.max_other {
                        Some(max) if sample.cpu.other > max => {
                            if attempt <= MAX_RETRIES {
                                eprintln!(
                                    "  other processes used {:.2} cores: again",
                                    sample.cpu.other
                                );
                                disturbed.retried += 1;
                                continue;
                            }
                            disturbed.kept += 1;
                        }
                        _ => {}
                    }
                    break sample;
                };
                results.entry(key).or_default().push(sample);
            }
        }
    }
    let report = report(&o, &results, &load_before, &disturbed, started.elapsed());
    drop(server);
    Ok(report)
}

fn main() -> ExitCode {
    let options = match parse_args() {
        Ok(o) => o,
        Err(e) if e == USAGE => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    if let Some(nice) = options.nice {
        // Before any thread or the server process exists: both inherit it.
        // SAFETY: setpriority has no memory-safety preconditions.
        if unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, nice) } != 0 {
            eprintln!(
                "--nice {nice}: {} (run as root for negative values)",
                std::io::Error::last_os_error()
            );
            return ExitCode::FAILURE;
        }
    }
    if let Some((client, _)) = options.pin {
        // Before the runtime's threads exist: they inherit it.
        if let Err(e) = cpu::pin_current_thread(client) {
            eprintln!("--pin: cannot run on CPU {client}: {e}");
            return ExitCode::FAILURE;
        }
    }
    if cfg!(debug_assertions) {
        eprintln!("warning: a debug build; run with --release for meaningful numbers");
    }
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    runtime.enable_all();
    if let Some(threads) = options.threads {
        runtime.worker_threads(threads);
    }
    let runtime = match runtime.build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(options)) {
        Ok(report) => {
            println!("{report}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("hublink-benchmarks: {e}");
            ExitCode::FAILURE
        }
    }
}
