//! An in-process SignalR server that behaves like the ASP.NET Core FunctionalTests server as the
//! official clients see it (TEST-SERVERS.md §5), for hublink's tests.
//!
//! ```no_run
//! # async fn demo() {
//! use hublink_testserver::{TestServer, TestServerOptions};
//! let server = TestServer::start(TestServerOptions::default()).await.unwrap();
//! let hub_url = format!("{}/testhub", server.base_url());
//! # let _ = hub_url;
//! server.shutdown().await;
//! # }
//! ```

mod backplane;
pub mod chaos_proxy;
mod faults;
mod http;
mod hub;
mod session;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use faults::Faults;

/// Settings of a [`TestServer`]. The defaults are ASP.NET Core's, except the Long Polling
/// timeout (5 s instead of 90 s, so that tests run fast).
#[derive(Debug, Clone)]
pub struct TestServerOptions {
    /// Port to bind on 127.0.0.1; 0 lets the OS choose.
    pub port: u16,
    /// A Ping is sent when nothing was sent for this long (ASP.NET `KeepAliveInterval`, 15 s).
    pub keep_alive_interval: Duration,
    /// The connection is closed when nothing was received for this long (ASP.NET
    /// `ClientTimeoutInterval`, 30 s). Not applied to Long Polling.
    pub client_timeout: Duration,
    /// The handshake must arrive within this time (ASP.NET `HandshakeTimeout`, 15 s).
    pub handshake_timeout: Duration,
    /// How long a poll waits for data before answering 200 with an empty body.
    pub long_poll_timeout: Duration,
    /// Largest hub message accepted from a client (ASP.NET `MaximumReceiveMessageSize`, 32 KiB).
    pub max_message_size: usize,
    /// Whether endpoints that allow it grant stateful reconnect when a client asks.
    pub stateful_reconnect: bool,
    /// How long a stateful connection waits for its WebSocket to come back.
    pub stateful_reconnect_grace: Duration,
    /// Bytes of unacknowledged outgoing messages kept for replay (ASP.NET
    /// `StatefulReconnectBufferSize`, 100 000). Past it a warning is logged; unlike ASP.NET the
    /// server does not hold back further sends.
    pub stateful_reconnect_buffer_size: usize,
    /// How long after receiving a message the server acknowledges it (stateful reconnect).
    pub ack_delay: Duration,
    /// A negotiated connection that no transport picked up within this time is dropped.
    pub unused_connection_timeout: Duration,
    /// A Redis server (`redis://127.0.0.1:6379`) shared with other instances: what a hub
    /// method sends to everyone, others, a group, a user or a connection then reaches the
    /// connections of every instance on it. `None`: this instance alone.
    pub redis_url: Option<String>,
    /// What `GetInstanceName` answers (null when `None`), so that a client can tell which
    /// instance behind a load balancer it landed on.
    pub instance_name: Option<String>,
}

impl Default for TestServerOptions {
    fn default() -> Self {
        TestServerOptions {
            port: 0,
            keep_alive_interval: Duration::from_secs(15),
            client_timeout: Duration::from_secs(30),
            handshake_timeout: Duration::from_secs(15),
            long_poll_timeout: Duration::from_secs(5),
            max_message_size: 32 * 1024,
            stateful_reconnect: true,
            stateful_reconnect_grace: Duration::from_secs(15),
            stateful_reconnect_buffer_size: 100_000,
            ack_delay: Duration::from_secs(1),
            unused_connection_timeout: Duration::from_secs(30),
            redis_url: None,
            instance_name: None,
        }
    }
}

/// A running server; it stops when dropped or on [`shutdown`](TestServer::shutdown).
pub struct TestServer {
    addr: SocketAddr,
    state: Arc<ServerState>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl TestServer {
    /// Binds 127.0.0.1 and starts serving (with a Redis backplane: once subscribed to it).
    pub async fn start(options: TestServerOptions) -> std::io::Result<TestServer> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", options.port)).await?;
        let addr = listener.local_addr()?;
        let (backplane, subscription) = match &options.redis_url {
            Some(url) => {
                let (backplane, subscription) = backplane::Backplane::connect(url)
                    .await
                    .map_err(std::io::Error::other)?;
                (Some(backplane), Some(subscription))
            }
            None => (None, None),
        };
        let state = Arc::new(ServerState::new(options, backplane));
        if let Some(subscription) = subscription {
            tokio::spawn(backplane::deliver_from_redis(subscription, state.clone()));
        }
        let app = http::router(state.clone());
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
                let _ = stop_rx.await;
            });
            if let Err(e) = serve.await {
                eprintln!("hublink-testserver: server error: {e}");
            }
        });
        Ok(TestServer {
            addr,
            state,
            stop: Some(stop_tx),
            task: Some(task),
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, ends open connections and waits (at most 5 s) for the server task.
    pub async fn shutdown(mut self) {
        self.state.shutdown.cancel();
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let abort = task.abort_handle();
            if tokio::time::timeout(Duration::from_secs(5), task)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.state.shutdown.cancel();
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Shared state of one server.
pub(crate) struct ServerState {
    pub(crate) options: TestServerOptions,
    /// Connections by connection token (the `id` of transport requests).
    pub(crate) by_token: Mutex<HashMap<String, Arc<session::Conn>>>,
    /// Connections by public connection id.
    pub(crate) by_id: Mutex<HashMap<String, Arc<session::Conn>>>,
    /// Group members (connection ids) by "<hub>/<group>".
    pub(crate) groups: Mutex<HashMap<String, HashSet<String>>>,
    /// Tokens handed out by /generateJwtToken, with their user.
    pub(crate) tokens: Mutex<HashMap<String, String>>,
    /// How many more requests a token from `/generateJwtToken?uses=N` authorizes.
    pub(crate) token_uses: Mutex<HashMap<String, u64>>,
    pub(crate) redirects: AtomicU64,
    /// The connection (id) of each run of `Tally`, by key, over every connection of this server.
    pub(crate) tallies: Mutex<HashMap<String, Vec<String>>>,
    /// Streams ended by the client's CancelInvocation (not by the connection ending).
    pub(crate) cancelled_streams: AtomicU64,
    /// Ends every connection on shutdown.
    pub(crate) shutdown: tokio_util::sync::CancellationToken,
    /// Where messages to other connections go when instances share Redis.
    pub(crate) backplane: Option<backplane::Backplane>,
}

impl ServerState {
    fn new(options: TestServerOptions, backplane: Option<backplane::Backplane>) -> Self {
        ServerState {
            options,
            backplane,
            by_token: Mutex::default(),
            by_id: Mutex::default(),
            groups: Mutex::default(),
            tokens: Mutex::default(),
            token_uses: Mutex::default(),
            redirects: AtomicU64::new(0),
            tallies: Mutex::default(),
            cancelled_streams: AtomicU64::new(0),
            shutdown: tokio_util::sync::CancellationToken::new(),
        }
    }
}

impl Drop for ServerState {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Waits for SIGTERM or SIGINT (Ctrl-C elsewhere): how the binaries of this crate are stopped.
pub async fn wait_for_shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}
