//! The little the client needs from an async runtime: spawn, sleep, yield, and a clock.
//!
//! Native builds use tokio; browser builds use the JavaScript event loop. Nothing else in the
//! crate names a runtime.

use std::future::Future;
use std::time::Duration;

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
