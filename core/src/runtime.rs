//! The little the client needs from an async runtime: spawn, sleep, yield, and a clock.
//!
//! Native builds use tokio; browser builds use the JavaScript event loop. Nothing else in the
//! crate names a runtime.

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

    pub fn spawn<F: Future<Output = ()> + Send + 'static>(future: F) {
        tokio::spawn(future);
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

    pub fn now_ms() -> u64 {
        js_sys::Date::now() as u64
    }
}

/// Runs a task in the background.
pub(crate) use imp::spawn;

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
