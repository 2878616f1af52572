//! Counters and the latency histogram shared by every connection of a load run.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use hdrhistogram::Histogram;

/// Everything counted during a run.
pub struct Stats {
    pub up: AtomicU64,
    pub connect_failures: AtomicU64,
    pub calls_ok: AtomicU64,
    pub calls_failed: AtomicU64,
    pub delivered: AtomicU64,
    pub reconnects: AtomicU64,
    pub closed: AtomicU64,
    errors: Mutex<BTreeMap<String, u64>>,
    latency_us: Mutex<Histogram<u64>>,
}

impl Stats {
    pub fn new() -> Self {
        Stats {
            up: AtomicU64::new(0),
            connect_failures: AtomicU64::new(0),
            calls_ok: AtomicU64::new(0),
            calls_failed: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
            reconnects: AtomicU64::new(0),
            closed: AtomicU64::new(0),
            errors: Mutex::new(BTreeMap::new()),
            latency_us: Mutex::new(new_histogram()),
        }
    }

    /// A latency sample, in microseconds.
    pub fn record_latency(&self, micros: u64) {
        let mut histogram = self.latency_us.lock().unwrap();
        // Out of range (over an hour) is saturated rather than lost.
        histogram.saturating_record(micros.max(1));
    }

    /// An error, counted under its kind.
    pub fn record_error(&self, error: &hublink::Error) {
        *self
            .errors
            .lock()
            .unwrap()
            .entry(error.kind().name().to_owned())
            .or_default() += 1;
    }

    pub fn errors(&self) -> BTreeMap<String, u64> {
        self.errors.lock().unwrap().clone()
    }

    pub fn latency(&self) -> Histogram<u64> {
        self.latency_us.lock().unwrap().clone()
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

/// 1 µs to one hour, three significant digits.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid histogram bounds")
}
