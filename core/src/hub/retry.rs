//! Retry policies for automatic reconnect.

use std::time::Duration;

use crate::error::Error;
use crate::maybe_send::{MaybeSend, MaybeSync};

/// What a retry policy knows when it decides on the next attempt.
#[derive(Debug, Clone)]
pub struct RetryContext {
    /// Consecutive failed attempts so far (0 before the first retry).
    pub previous_retry_count: u64,
    /// Time since reconnecting began (zero before the first retry).
    pub elapsed: Duration,
    /// Why this retry is needed: the connection loss first, then the last attempt's error.
    pub retry_reason: Error,
}

/// Decides whether and when to try reconnecting again.
///
/// ```
/// use std::time::Duration;
/// use hublink::{RetryContext, RetryPolicy};
///
/// /// Retries every second for a minute.
/// struct EverySecond;
/// impl RetryPolicy for EverySecond {
///     fn next_retry_delay(&self, context: &RetryContext) -> Option<Duration> {
///         (context.elapsed < Duration::from_secs(60)).then_some(Duration::from_secs(1))
///     }
/// }
/// ```
pub trait RetryPolicy: MaybeSend + MaybeSync {
    /// The delay before the next attempt, or `None` to give up.
    fn next_retry_delay(&self, context: &RetryContext) -> Option<Duration>;
}

/// The official default: retry after 0, 2, 10 and 30 seconds, then give up; or a list of
/// delays of your own.
#[derive(Debug, Clone)]
pub struct DefaultRetryPolicy {
    delays: Vec<Duration>,
}

impl DefaultRetryPolicy {
    /// Retries after each of `delays` in turn, then gives up.
    pub fn with_delays(delays: impl IntoIterator<Item = Duration>) -> Self {
        DefaultRetryPolicy {
            delays: delays.into_iter().collect(),
        }
    }
}

impl Default for DefaultRetryPolicy {
    fn default() -> Self {
        Self::with_delays([0, 2, 10, 30].map(Duration::from_secs))
    }
}

impl RetryPolicy for DefaultRetryPolicy {
    fn next_retry_delay(&self, context: &RetryContext) -> Option<Duration> {
        usize::try_from(context.previous_retry_count)
            .ok()
            .and_then(|i| self.delays.get(i).copied())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context(count: u64) -> RetryContext {
        RetryContext {
            previous_retry_count: count,
            elapsed: Duration::ZERO,
            retry_reason: Error::transport("lost"),
        }
    }

    #[test]
    fn the_default_delays_then_give_up() {
        let policy = DefaultRetryPolicy::default();
        let delays: Vec<Option<u64>> = (0..5)
            .map(|n| policy.next_retry_delay(&context(n)).map(|d| d.as_secs()))
            .collect();
        assert_eq!(delays, [Some(0), Some(2), Some(10), Some(30), None]);
        assert_eq!(
            DefaultRetryPolicy::with_delays([]).next_retry_delay(&context(0)),
            None
        );
    }
}
