//! The report of a load run: built from the counters, merged across processes, printed.

use std::collections::BTreeMap;

use base64::Engine;
use hdrhistogram::serialization::{Deserializer, Serializer, V2Serializer};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use super::stats::{new_histogram, Stats};
use crate::args::Workload;

/// What a run measured. Its JSON form is the `--report` file and what a child process of
/// `--processes` hands to its parent.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub workload: Workload,
    pub processes: usize,
    pub connections: Connections,
    pub duration_seconds: f64,
    pub calls: Calls,
    /// Broadcast and group-chat: messages that should have arrived and did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deliveries: Option<Deliveries>,
    pub latency_us: Latency,
    pub errors: BTreeMap<String, u64>,
    pub reconnects: u64,
    pub closed_during_run: u64,
    pub memory: Memory,
    /// The latency histogram (HdrHistogram V2, base64), for merging reports; only in the
    /// reports of the processes of a `--processes` run.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub histogram: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Connections {
    pub requested: u64,
    pub up: u64,
    pub failed: u64,
    pub open_seconds: f64,
    pub opened_per_second: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Calls {
    pub ok: u64,
    pub failed: u64,
    pub per_second: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Deliveries {
    pub expected: u64,
    pub received: u64,
    pub completeness: f64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Latency {
    pub count: u64,
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
    pub mean: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Memory {
    pub rss_before_bytes: u64,
    pub rss_connected_bytes: u64,
    pub rss_per_connection_bytes: u64,
}

/// What a run knows besides its counters.
pub struct RunFacts {
    pub workload: Workload,
    pub requested: u64,
    pub open_seconds: f64,
    pub duration_seconds: f64,
    pub expected_deliveries: Option<u64>,
    pub rss_before: u64,
    pub rss_connected: u64,
}

impl Report {
    pub fn new(stats: &Stats, facts: RunFacts) -> Self {
        let up = Stats::get(&stats.up);
        let ok = Stats::get(&stats.calls_ok);
        let histogram = stats.latency();
        Report {
            workload: facts.workload,
            processes: 1,
            connections: Connections {
                requested: facts.requested,
                up,
                failed: Stats::get(&stats.connect_failures),
                open_seconds: facts.open_seconds,
                opened_per_second: per_second(up, facts.open_seconds),
            },
            duration_seconds: facts.duration_seconds,
            calls: Calls {
                ok,
                failed: Stats::get(&stats.calls_failed),
                per_second: per_second(ok, facts.duration_seconds),
            },
            deliveries: facts
                .expected_deliveries
                .map(|expected| deliveries(expected, Stats::get(&stats.delivered))),
            latency_us: latency(&histogram),
            errors: stats.errors(),
            reconnects: Stats::get(&stats.reconnects),
            closed_during_run: Stats::get(&stats.closed),
            memory: Memory {
                rss_before_bytes: facts.rss_before,
                rss_connected_bytes: facts.rss_connected,
                rss_per_connection_bytes: facts
                    .rss_connected
                    .saturating_sub(facts.rss_before)
                    .checked_div(up)
                    .unwrap_or(0),
            },
            histogram: encode(&histogram),
        }
    }

    /// The reports of the processes of one run as one (counts summed, histograms merged,
    /// times the longest). `expected_deliveries` replaces the parts' own expectations (only
    /// the whole run knows every listener).
    pub fn merge(parts: &[Report], expected_deliveries: Option<u64>) -> Report {
        let mut histogram = new_histogram();
        for part in parts {
            if let Some(h) = decode(&part.histogram) {
                let _ = histogram.add(h);
            }
        }
        let sum = |f: fn(&Report) -> u64| parts.iter().map(f).sum::<u64>();
        let longest = |f: fn(&Report) -> f64| parts.iter().map(f).fold(0.0, f64::max);
        let (up, ok) = (sum(|r| r.connections.up), sum(|r| r.calls.ok));
        let (open_seconds, duration_seconds) = (
            longest(|r| r.connections.open_seconds),
            longest(|r| r.duration_seconds),
        );
        let mut errors = BTreeMap::new();
        for (kind, n) in parts.iter().flat_map(|r| r.errors.iter()) {
            *errors.entry(kind.clone()).or_default() += n;
        }
        let growth = sum(|r| {
            r.memory
                .rss_connected_bytes
                .saturating_sub(r.memory.rss_before_bytes)
        });
        Report {
            workload: parts.first().map_or(Workload::Idle, |r| r.workload),
            processes: parts.len(),
            connections: Connections {
                requested: sum(|r| r.connections.requested),
                up,
                failed: sum(|r| r.connections.failed),
                open_seconds,
                opened_per_second: per_second(up, open_seconds),
            },
            duration_seconds,
            calls: Calls {
                ok,
                failed: sum(|r| r.calls.failed),
                per_second: per_second(ok, duration_seconds),
            },
            deliveries: expected_deliveries.map(|expected| {
                deliveries(
                    expected,
                    parts
                        .iter()
                        .filter_map(|r| r.deliveries.as_ref())
                        .map(|d| d.received)
                        .sum(),
                )
            }),
            latency_us: latency(&histogram),
            errors,
            reconnects: sum(|r| r.reconnects),
            closed_during_run: sum(|r| r.closed_during_run),
            memory: Memory {
                rss_before_bytes: sum(|r| r.memory.rss_before_bytes),
                rss_connected_bytes: sum(|r| r.memory.rss_connected_bytes),
                rss_per_connection_bytes: growth.checked_div(up).unwrap_or(0),
            },
            histogram: encode(&histogram),
        }
    }

    /// The report for people.
    pub fn summary(&self) -> String {
        let c = &self.connections;
        let l = &self.latency_us;
        let mut text = format!(
            "workload {:?} over {} process(es)\n\
             connections  {}/{} up, {} failed, opened in {:.2} s ({:.0}/s)\n\
             calls        {} ok, {} failed, {:.0}/s over {:.1} s\n",
            self.workload,
            self.processes,
            c.up,
            c.requested,
            c.failed,
            c.open_seconds,
            c.opened_per_second,
            self.calls.ok,
            self.calls.failed,
            self.calls.per_second,
            self.duration_seconds,
        );
        if let Some(d) = &self.deliveries {
            text += &format!(
                "deliveries   {}/{} ({:.4} %)\n",
                d.received,
                d.expected,
                d.completeness * 100.0
            );
        }
        text += &format!(
            "latency µs   p50 {} p90 {} p99 {} p99.9 {} max {} (mean {:.0}, {} samples)\n\
             errors       {:?}, reconnects {}, closed {}\n\
             memory       {} KiB per connection (RSS {} → {} KiB)\n",
            l.p50,
            l.p90,
            l.p99,
            l.p999,
            l.max,
            l.mean,
            l.count,
            self.errors,
            self.reconnects,
            self.closed_during_run,
            self.memory.rss_per_connection_bytes / 1024,
            self.memory.rss_before_bytes / 1024,
            self.memory.rss_connected_bytes / 1024,
        );
        text
    }
}

fn per_second(n: u64, seconds: f64) -> f64 {
    if seconds > 0.0 {
        n as f64 / seconds
    } else {
        0.0
    }
}

fn deliveries(expected: u64, received: u64) -> Deliveries {
    Deliveries {
        expected,
        received,
        completeness: if expected == 0 {
            1.0
        } else {
            received as f64 / expected as f64
        },
    }
}

fn latency(h: &Histogram<u64>) -> Latency {
    if h.is_empty() {
        return Latency::default();
    }
    Latency {
        count: h.len(),
        p50: h.value_at_quantile(0.50),
        p90: h.value_at_quantile(0.90),
        p99: h.value_at_quantile(0.99),
        p999: h.value_at_quantile(0.999),
        max: h.max(),
        mean: h.mean(),
    }
}

fn encode(h: &Histogram<u64>) -> String {
    let mut bytes = Vec::new();
    let _ = V2Serializer::new().serialize(h, &mut bytes);
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn decode(text: &str) -> Option<Histogram<u64>> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .ok()?;
    Deserializer::new().deserialize(&mut bytes.as_slice()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merged_reports_sum_counts_and_merge_histograms() {
        let stats = |samples: &[u64], up: u64| {
            let stats = Stats::new();
            for s in samples {
                stats.record_latency(*s);
            }
            Stats::add(&stats.up, up);
            Stats::add(&stats.calls_ok, samples.len() as u64);
            Stats::add(&stats.delivered, 3);
            stats
        };
        let facts = || RunFacts {
            workload: Workload::Echo,
            requested: 2,
            open_seconds: 1.0,
            duration_seconds: 2.0,
            expected_deliveries: Some(5),
            rss_before: 1000,
            rss_connected: 3000,
        };
        let a = Report::new(&stats(&[100, 200], 2), facts());
        let b = Report::new(&stats(&[300, 400, 10_000], 2), facts());
        let merged = Report::merge(&[a, b], Some(8));
        assert_eq!(merged.connections.up, 4);
        assert_eq!(merged.calls.ok, 5);
        assert_eq!(merged.latency_us.count, 5);
        assert_eq!(merged.latency_us.max, 10_007); // 3 significant digits
        assert_eq!(merged.latency_us.p50, 300);
        assert_eq!(merged.memory.rss_per_connection_bytes, 1000);
        let deliveries = merged.deliveries.as_ref().unwrap();
        assert_eq!((deliveries.received, deliveries.expected), (6, 8));
        let json = serde_json::to_string(&merged).unwrap();
        let back: Report = serde_json::from_str(&json).unwrap();
        assert_eq!(back.latency_us.count, 5);
    }
}
