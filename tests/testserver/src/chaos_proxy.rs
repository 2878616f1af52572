//! A TCP proxy that cuts the connections through it, for chaos tests of reconnect.
//!
//! Every connection accepted on the proxy's loopback port is relayed to the upstream address.
//! A cutter wakes every `interval` (jittered from a seed) and cuts the live connection it
//! picks, in one of four ways:
//! - [`CutKind::Reset`]: both sockets are closed with a zero linger (an RST each way);
//! - [`CutKind::Fin`]: both sockets are shut down for writing, then closed (a clean FIN);
//! - [`CutKind::HalfClose`]: only the client's side is shut down for writing, so the client
//!   reads an end while its own writes still reach the server for a moment; then both close;
//! - [`CutKind::MidFrame`]: the next chunk from either side is forwarded only in part, then
//!   both sockets are reset, so the peer holds the first half of a frame or a request.
//!
//! Negotiate requests and WebSocket upgrades go through the proxy as well, so they are cut too.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// How a connection is cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CutKind {
    /// RST both ways.
    Reset,
    /// FIN both ways.
    Fin,
    /// FIN to the client only; the client-to-server direction goes on for a moment.
    HalfClose,
    /// Part of the next chunk, then RST both ways.
    MidFrame,
}

impl CutKind {
    /// Every kind, in the order the counters report them.
    pub const ALL: [CutKind; 4] = [
        CutKind::Reset,
        CutKind::Fin,
        CutKind::HalfClose,
        CutKind::MidFrame,
    ];

    fn index(self) -> usize {
        self as usize
    }
}

/// When and how to cut.
#[derive(Debug, Clone)]
pub struct ChaosPlan {
    /// The mean time between two cuts (each gap is drawn between half and one and a half).
    pub interval: Duration,
    /// The seed of the gaps, the choice of connection and the kind of cut.
    pub seed: u64,
    /// The kinds to choose from (all four by default).
    pub kinds: Vec<CutKind>,
}

impl Default for ChaosPlan {
    fn default() -> Self {
        ChaosPlan {
            interval: Duration::from_millis(150),
            seed: 1,
            kinds: CutKind::ALL.to_vec(),
        }
    }
}

/// A running proxy; dropping it stops accepting and cutting (relayed connections end with it).
pub struct ChaosProxy {
    addr: SocketAddr,
    stats: Arc<Stats>,
    tasks: Vec<JoinHandle<()>>,
}

#[derive(Default)]
struct Stats {
    accepted: AtomicU64,
    cuts: [AtomicU64; 4],
    live: Mutex<HashMap<u64, mpsc::UnboundedSender<CutKind>>>,
}

impl ChaosProxy {
    /// Listens on 127.0.0.1 (an ephemeral port) and relays to `upstream`, cutting by `plan`.
    pub async fn start(upstream: SocketAddr, plan: ChaosPlan) -> std::io::Result<ChaosProxy> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let stats = Arc::new(Stats::default());
        let accept = tokio::spawn(accept_loop(listener, upstream, stats.clone()));
        let cutter = tokio::spawn(cut_loop(plan, stats.clone()));
        Ok(ChaosProxy {
            addr,
            stats,
            tasks: vec![accept, cutter],
        })
    }

    /// The proxy's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The connections accepted so far.
    pub fn accepted(&self) -> u64 {
        self.stats.accepted.load(Ordering::SeqCst)
    }

    /// The cuts made so far, per kind.
    pub fn cuts(&self) -> Vec<(CutKind, u64)> {
        CutKind::ALL
            .iter()
            .map(|&kind| (kind, self.stats.cuts[kind.index()].load(Ordering::SeqCst)))
            .collect()
    }

    /// The cuts made so far, all kinds.
    pub fn total_cuts(&self) -> u64 {
        self.cuts().iter().map(|(_, n)| n).sum()
    }

    /// Stops cutting; connections already open keep being relayed.
    pub fn stop_cutting(&mut self) {
        if let Some(cutter) = self.tasks.pop() {
            cutter.abort();
        }
    }
}

impl Drop for ChaosProxy {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
        self.stats.live.lock().unwrap().clear();
    }
}

async fn accept_loop(listener: TcpListener, upstream: SocketAddr, stats: Arc<Stats>) {
    let mut next_id = 0u64;
    while let Ok((client, _)) = listener.accept().await {
        next_id += 1;
        let id = next_id;
        stats.accepted.fetch_add(1, Ordering::SeqCst);
        let (cut_tx, cut_rx) = mpsc::unbounded_channel();
        stats.live.lock().unwrap().insert(id, cut_tx);
        let stats = stats.clone();
        tokio::spawn(async move {
            if let Ok(server) = TcpStream::connect(upstream).await {
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                relay(client, server, cut_rx).await;
            }
            stats.live.lock().unwrap().remove(&id);
        });
    }
}

async fn cut_loop(plan: ChaosPlan, stats: Arc<Stats>) {
    let mut random = SplitMix64(plan.seed);
    let kinds = if plan.kinds.is_empty() {
        CutKind::ALL.to_vec()
    } else {
        plan.kinds.clone()
    };
    let mean = plan.interval.as_micros().max(2) as u64;
    loop {
        let gap = mean / 2 + random.next() % mean;
        tokio::time::sleep(Duration::from_micros(gap)).await;
        let kind = kinds[(random.next() % kinds.len() as u64) as usize];
        let target = {
            let live = stats.live.lock().unwrap();
            if live.is_empty() {
                continue;
            }
            let mut ids: Vec<u64> = live.keys().copied().collect();
            ids.sort_unstable();
            let id = ids[(random.next() % ids.len() as u64) as usize];
            live.get(&id).cloned()
        };
        if let Some(cut) = target {
            if cut.send(kind).is_ok() {
                stats.cuts[kind.index()].fetch_add(1, Ordering::SeqCst);
            }
        }
    }
}

/// How long a half-closed connection keeps relaying the client's writes.
const HALF_CLOSE_LINGER: Duration = Duration::from_millis(200);

async fn relay(client: TcpStream, server: TcpStream, mut cuts: mpsc::UnboundedReceiver<CutKind>) {
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let mut from_client = vec![0u8; 16 * 1024];
    let mut from_server = vec![0u8; 16 * 1024];
    let (mut client_open, mut server_open) = (true, true);
    let mut cut_mid_frame = false;
    while client_open || server_open {
        tokio::select! {
            cut = cuts.recv() => match cut {
                Some(CutKind::Reset) | None => {
                    reset(client_read, client_write, server_read, server_write);
                    return;
                }
                Some(CutKind::Fin) => {
                    let _ = client_write.shutdown().await;
                    let _ = server_write.shutdown().await;
                    return;
                }
                Some(CutKind::HalfClose) => {
                    let _ = client_write.shutdown().await;
                    let _ = tokio::time::timeout(HALF_CLOSE_LINGER, async {
                        while let Ok(n) = client_read.read(&mut from_client).await {
                            if n == 0 || server_write.write_all(&from_client[..n]).await.is_err() {
                                break;
                            }
                        }
                    })
                    .await;
                    let _ = server_write.shutdown().await;
                    return;
                }
                Some(CutKind::MidFrame) => cut_mid_frame = true,
            },
            read = client_read.read(&mut from_client), if client_open => {
                match pass_on(read, &from_client, &mut server_write, cut_mid_frame).await {
                    Relayed::Ended => client_open = false,
                    Relayed::Passed => {}
                    Relayed::CutMidFrame => {
                        reset(client_read, client_write, server_read, server_write);
                        return;
                    }
                }
            }
            read = server_read.read(&mut from_server), if server_open => {
                match pass_on(read, &from_server, &mut client_write, cut_mid_frame).await {
                    Relayed::Ended => server_open = false,
                    Relayed::Passed => {}
                    Relayed::CutMidFrame => {
                        reset(client_read, client_write, server_read, server_write);
                        return;
                    }
                }
            }
        }
    }
}

/// What one read in one direction came to.
enum Relayed {
    /// The sender's side ended (its end was passed on as a FIN).
    Ended,
    /// The chunk went through.
    Passed,
    /// Half of the chunk went through; the caller resets both sockets.
    CutMidFrame,
}

/// Passes one read's chunk on to `to`: whole, or only its first half when a mid-frame cut is due.
async fn pass_on(
    read: std::io::Result<usize>,
    chunk: &[u8],
    to: &mut OwnedWriteHalf,
    cut_mid_frame: bool,
) -> Relayed {
    match read {
        Ok(0) | Err(_) => {
            let _ = to.shutdown().await;
            Relayed::Ended
        }
        Ok(n) if cut_mid_frame => {
            let _ = to.write_all(&chunk[..n.div_ceil(2)]).await;
            Relayed::CutMidFrame
        }
        Ok(n) => {
            let _ = to.write_all(&chunk[..n]).await;
            Relayed::Passed
        }
    }
}

fn reset(
    client_read: OwnedReadHalf,
    client_write: OwnedWriteHalf,
    server_read: OwnedReadHalf,
    server_write: OwnedWriteHalf,
) {
    for (read, write) in [(client_read, client_write), (server_read, server_write)] {
        if let Ok(stream) = read.reunite(write) {
            let _ = stream.set_zero_linger();
        }
    }
}

/// splitmix64: a small deterministic generator, so a seed repeats a run's choices.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}
