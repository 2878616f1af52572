//! The little the client needs from an async runtime: spawn, sleep, yield, and a clock.
//!
//! Native builds use tokio (the caller's runtime, else the [`SharedRuntime`]); browser builds
//! use the JavaScript event loop. The transports and the driver also use tokio's timers,
//! `select!` and channels directly; they run inside the runtime this module spawns them on.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::task::{ArcWake, AtomicWaker};

#[cfg(not(target_arch = "wasm32"))]
mod imp {
    use super::*;

    /// Spawns on the caller's tokio runtime, or on the shared one outside any.
    pub fn spawn<F: Future<Output = ()> + Send + 'static>(future: F) {
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => drop(runtime.spawn(future)),
            Err(_) => drop(crate::shared_runtime::SharedRuntime::handle().spawn(future)),
        }
    }

    /// Runs `future` where tokio is available: in place inside a tokio runtime, otherwise as
    /// a task of the shared runtime that this future awaits (and aborts when dropped). So
    /// the connection's futures can be awaited from any executor (asyncio, Kotlin
    /// coroutines, Swift tasks).
    pub async fn in_runtime<T: Send + 'static>(
        future: impl Future<Output = T> + Send + 'static,
    ) -> T {
        if tokio::runtime::Handle::try_current().is_ok() {
            return future.await;
        }
        struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);
        impl<T> Drop for AbortOnDrop<T> {
            fn drop(&mut self) {
                self.0.abort();
            }
        }
        let mut task = AbortOnDrop(crate::shared_runtime::SharedRuntime::handle().spawn(future));
        match (&mut task.0).await {
            Ok(value) => value,
            Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
            Err(_) => unreachable!("the task is aborted only when this future is dropped"),
        }
    }

    pub async fn sleep(duration: Duration) {
        tokio::time::sleep(duration).await
    }

    pub async fn yield_now() {
        tokio::task::yield_now().await
    }

    pub fn now_ms() -> u64 {
        use std::sync::OnceLock;
        static START: OnceLock<std::time::Instant> = OnceLock::new();
        START
            .get_or_init(std::time::Instant::now)
            .elapsed()
            .as_millis() as u64
    }
}

#[cfg(target_arch = "wasm32")]
mod imp {
    use super::*;

    pub fn spawn<F: Future<Output = ()> + 'static>(future: F) {
        wasm_bindgen_futures::spawn_local(future);
    }

    /// The page's event loop runs every future: nothing to move.
    pub async fn in_runtime<T: 'static>(future: impl Future<Output = T> + 'static) -> T {
        future.await
    }

    pub async fn sleep(duration: Duration) {
        gloo_timers::future::sleep(duration).await
    }

    pub async fn yield_now() {
        let mut yielded = false;
        std::future::poll_fn(|cx| {
            if yielded {
                return std::task::Poll::Ready(());
            }
            yielded = true;
            cx.waker().wake_by_ref();
            std::task::Poll::Pending
        })
        .await
    }

    #[wasm_bindgen::prelude::wasm_bindgen]
    extern "C" {
        /// `performance.now()`: monotonic milliseconds since the page (or worker) started.
        #[wasm_bindgen(js_namespace = performance, js_name = now)]
        fn performance_now() -> f64;
    }

    /// `performance.now()`, not `Date.now()`: the wall clock may jump.
    pub fn now_ms() -> u64 {
        performance_now() as u64
    }
}

/// Runs a task in the background.
pub(crate) use imp::spawn;

/// Runs a future where the runtime's timers and IO are available.
pub(crate) use imp::in_runtime;

/// Waits for `duration`.
pub(crate) use imp::sleep;

/// Lets the other tasks that are ready run first.
pub(crate) use imp::yield_now;

/// Milliseconds on a monotonic clock, for the protocol layer's `now` arguments.
pub(crate) use imp::now_ms;

/// Resolves once the other tasks that are ready have run, as [`yield_now`] does, but is not
/// ended early by a wake-up of its task from elsewhere meanwhile (a [`yield_now`] polled a
/// second time resolves, whoever woke it). The hub driver yields before it flushes so that the
/// callers its answers woke queue their next calls first; their calls must not wake it once
/// each in the meantime.
#[derive(Default)]
pub(crate) struct YieldToOthers {
    /// Set at the first poll, when the yield starts.
    done: Option<Arc<YieldDone>>,
}

#[derive(Default)]
struct YieldDone {
    woken: AtomicBool,
    task: AtomicWaker,
}

impl ArcWake for YieldDone {
    fn wake_by_ref(done: &Arc<Self>) {
        done.woken.store(true, Ordering::Release);
        done.task.wake();
    }
}

impl Future for YieldToOthers {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let Some(done) = &self.done else {
            // The runtime keeps `done`'s waker, not the task's, for when the others have run;
            // where it wakes it at once (outside a tokio worker, in the browser), that wake-up
            // reaches the task through `done` all the same, and this poll still yields.
            let done = Arc::new(YieldDone::default());
            done.task.register(cx.waker());
            let waker = futures_util::task::waker(done.clone());
            self.done = Some(done);
            return std::pin::pin!(yield_now()).poll(&mut Context::from_waker(&waker));
        };
        done.task.register(cx.waker());
        if done.woken.load(Ordering::Acquire) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use std::sync::Mutex;

    use super::*;

    /// A task yields; another task wakes it at once (as a caller's command would) and only then
    /// makes two more tasks ready. The yield must last until those have run: a plain
    /// `yield_now` ends at the wake-up, before them.
    #[test]
    fn a_yield_to_others_outlasts_wake_ups_and_ends_after_the_ready_tasks() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let order = Arc::new(Mutex::new(Vec::new()));
        let (log, others_log) = (order.clone(), order.clone());
        // Every part is a spawned task: the runtime runs them in the order they became ready.
        let test = async move {
            let (polled, first_poll) = tokio::sync::oneshot::channel();
            let mut polled = Some(polled);
            let yielding = tokio::spawn(async move {
                let mut yielding = YieldToOthers::default();
                let mut polls = 0;
                std::future::poll_fn(|cx| {
                    polls += 1;
                    if let Some(polled) = polled.take() {
                        let _ = polled.send(cx.waker().clone());
                    }
                    Pin::new(&mut yielding).poll(cx)
                })
                .await;
                log.lock()
                    .unwrap()
                    .push(format!("yield ended after {polls} polls"));
            });
            let waker = first_poll.await.expect("the yield was polled");
            waker.wake();
            let others: Vec<_> = (0..2)
                .map(|i| {
                    let log = others_log.clone();
                    tokio::spawn(async move { log.lock().unwrap().push(format!("task {i}")) })
                })
                .collect();
            for task in others {
                task.await.unwrap();
            }
            yielding.await.unwrap();
        };
        runtime.block_on(runtime.spawn(test)).unwrap();
        assert_eq!(
            *order.lock().unwrap(),
            ["task 0", "task 1", "yield ended after 3 polls"]
        );
    }
}
