//! The runtime hublink runs on when its caller brings none: bindings to languages with an
//! event loop of their own (Python's asyncio, Kotlin coroutines, Swift tasks) share this one.

use std::sync::Mutex;
use std::time::Duration;

use tokio::runtime::{Handle, Runtime};

use crate::error::{Error, Result};

/// Worker threads of the shared runtime unless [`SharedRuntime::set_worker_threads`] says
/// otherwise: enough for the connection's driver and its callers' wake-ups.
pub const DEFAULT_WORKER_THREADS: usize = 2;

struct State {
    runtime: Option<Runtime>,
    worker_threads: usize,
}

static STATE: Mutex<State> = Mutex::new(State {
    runtime: None,
    worker_threads: DEFAULT_WORKER_THREADS,
});

/// The process-wide tokio runtime hublink starts lazily when a connection is used outside
/// any tokio runtime. Inside one (a `#[tokio::main]` program), hublink uses that one and
/// never starts this.
///
/// ```
/// use std::time::Duration;
/// use hublink::SharedRuntime;
///
/// SharedRuntime::set_worker_threads(1).unwrap(); // before first use
/// let answer = SharedRuntime::handle().block_on(async { 6 * 7 });
/// assert_eq!(answer, 42);
/// SharedRuntime::shutdown(Duration::from_secs(1)); // e.g. at process exit
/// ```
#[derive(Debug)]
pub struct SharedRuntime(());

impl SharedRuntime {
    /// The shared runtime's handle, starting the runtime if it is not running.
    pub fn handle() -> Handle {
        let mut state = STATE.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(runtime) = &state.runtime {
            return runtime.handle().clone();
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(state.worker_threads)
            .thread_name("hublink-rt")
            .enable_all()
            .build()
            .expect("the shared hublink runtime starts");
        let handle = runtime.handle().clone();
        state.runtime = Some(runtime);
        handle
    }

    /// How many worker threads the runtime starts with (2 by default). Fails once it runs:
    /// call it before the first connection is used, or after [`shutdown`](Self::shutdown).
    pub fn set_worker_threads(threads: usize) -> Result<()> {
        if threads == 0 {
            return Err(Error::invalid_argument(
                "The shared runtime needs at least one worker thread.",
            ));
        }
        let mut state = STATE.lock().unwrap_or_else(|e| e.into_inner());
        if state.runtime.is_some() {
            return Err(Error::invalid_state(
                "The shared runtime is already running: set its worker threads before first use.",
            ));
        }
        state.worker_threads = threads;
        Ok(())
    }

    /// Whether the runtime is running.
    pub fn is_running() -> bool {
        STATE
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .runtime
            .is_some()
    }

    /// Stops the runtime: its tasks (connections' drivers among them) are dropped, and its
    /// threads are given `timeout` to finish. Connections still open are cut without a Close
    /// message: stop them first. A later use starts a new runtime. Bindings call this at
    /// process exit (Python's `atexit`, a JVM shutdown hook).
    pub fn shutdown(timeout: Duration) {
        let runtime = STATE
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .runtime
            .take();
        match runtime {
            // Blocking inside a runtime is not allowed: let the threads wind down alone.
            Some(runtime) if Handle::try_current().is_ok() => runtime.shutdown_background(),
            Some(runtime) => runtime.shutdown_timeout(timeout),
            None => {}
        }
    }
}
