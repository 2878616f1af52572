//! Running a step of a command under `--timeout` and Ctrl-C.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use crate::failure::Failure;

/// The command's deadline (`--timeout`), shared by all its steps.
#[derive(Debug, Clone, Copy)]
pub struct Deadline(Option<(Instant, Duration)>);

impl Deadline {
    /// Ends `timeout` from now; never without one.
    pub fn after(timeout: Option<Duration>) -> Self {
        Deadline(timeout.map(|t| (Instant::now() + t, t)))
    }

    /// Runs `step` until it ends, the deadline passes (`TimedOut`, saying `what` it was
    /// doing), or Ctrl-C (`Interrupted`).
    pub async fn run<T>(
        self,
        what: &'static str,
        step: impl Future<Output = T>,
    ) -> Result<T, Failure> {
        let expired = async {
            match self.0 {
                Some((at, _)) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            out = step => Ok(out),
            () = expired => Err(Failure::TimedOut {
                what,
                seconds: self.0.map_or(0.0, |(_, t)| t.as_secs_f64()),
            }),
            _ = tokio::signal::ctrl_c() => Err(Failure::Interrupted),
        }
    }

    /// [`run`](Self::run) for a hub call: its own error is the call's failure.
    pub async fn call<T>(
        self,
        what: &'static str,
        call: impl Future<Output = hublink::Result<T>>,
    ) -> Result<T, Failure> {
        self.run(what, call).await?.map_err(Failure::Call)
    }
}
