//! Fault injection switches, parsed from the `faults` query parameter of the hub URL.

use std::time::Duration;

/// Faults a test asks for with `?faults=name[:value],name[:value]…` on the hub URL. The client
/// keeps the hub URL's query on negotiate and on every transport request, so the switches reach
/// the connection either way (also with skipNegotiation).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Faults {
    /// `drop_after_messages:N`: after N transport messages were sent to the client, drop the
    /// transport without a Close message (WebSockets: no close frame; SSE: the stream ends;
    /// Long Polling: the next poll answers 500).
    pub drop_after_messages: Option<u64>,
    /// `delay_handshake_ms:N`: wait N ms before answering the handshake.
    pub delay_handshake: Option<Duration>,
    /// `no_pings`: never send keep-alive pings (to trigger the client's server timeout).
    pub no_pings: bool,
    /// `split_frames`: WebSockets only: send every transport message as two frames, cut in the
    /// middle (a JSON record separator may end up alone in the second frame).
    pub split_frames: bool,
    /// `coalesce_frames`: WebSockets only: wait 20 ms before each send and send everything
    /// queued by then as one frame (e.g. the handshake answer and the first messages).
    pub coalesce_frames: bool,
    /// `oversized_message[:BYTES]`: right after the handshake, invoke `Oversized` on the client
    /// with one string argument of BYTES bytes (default 2 MiB).
    pub oversized_message: Option<usize>,
    /// `malformed_after:N`: after N transport messages were sent, send one malformed transport
    /// message (`{"type":` + 0x1E for JSON, `02 c1 c1` for MessagePack).
    pub malformed_after: Option<u64>,
    /// `poll_status:CODE`: Long Polling: every poll after the first answers with this status.
    pub poll_status: Option<u16>,
    /// `send_status:CODE`: every POST (send) answers with this status and drops the data.
    pub send_status: Option<u16>,
    /// `send_status_after:N`: with `send_status`, the first N POSTs (the handshake's among
    /// them) are served as usual; only later ones answer the status.
    pub send_status_after: u64,
    /// `ignore_sequence`: stateful reconnect: on a resumed WebSocket, send no Sequence message
    /// and replay nothing.
    pub ignore_sequence: bool,
    /// `bad_sequence:N`: stateful reconnect: on a resumed WebSocket, send Sequence N instead of
    /// the right one (then replay as usual).
    pub bad_sequence: Option<u64>,
    /// `drop_randomly:MEAN` (+ `drop_seed:S`, default 1): drop the transport (as `Abort()`
    /// does) again and again for the life of the connection, each time after a pseudo-random
    /// number of sent transport messages between 1 and 2×MEAN, drawn from the seed. The
    /// Sequence of a resume and the replay of messages sent before are not counted.
    pub drop_randomly: Option<RandomDrops>,
}

/// The parameters of `drop_randomly`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RandomDrops {
    /// The mean number of transport messages between two drops (at least 1).
    pub mean: u64,
    /// The seed of the gaps (`drop_seed`, default 1).
    pub seed: u64,
}

impl RandomDrops {
    /// The default `drop_seed`.
    pub const DEFAULT_SEED: u64 = 1;

    /// The gaps between drops, in transport messages: a deterministic sequence for the seed.
    pub fn gaps(&self) -> DropGaps {
        DropGaps::new(self.mean, self.seed)
    }
}

/// Gaps between drops, each in `1..=2×mean`: xorshift64* over a splitmix64-scrambled seed
/// (so that every seed, 0 included, gives a full-period sequence).
#[derive(Debug, Clone)]
pub struct DropGaps {
    span: u64,
    state: u64,
}

impl DropGaps {
    pub fn new(mean: u64, seed: u64) -> DropGaps {
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        DropGaps {
            span: mean.max(1).saturating_mul(2),
            state: if z == 0 { 0x2545_F491_4F6C_DD1D } else { z },
        }
    }
}

impl Iterator for DropGaps {
    type Item = u64;

    fn next(&mut self) -> Option<u64> {
        let mut x = self.state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.state = x;
        Some(1 + x.wrapping_mul(0x2545_F491_4F6C_DD1D) % self.span)
    }
}

impl Faults {
    /// Parses the value of a `faults` query parameter (unknown names are ignored and logged).
    pub fn parse(text: &str) -> Faults {
        let mut f = Faults::default();
        let (mut drop_mean, mut drop_seed) = (None, None);
        for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (name, value) = match item.split_once(':') {
                Some((n, v)) => (n.trim(), Some(v.trim())),
                None => (item, None),
            };
            let num = value.and_then(|v| v.parse::<u64>().ok());
            match name {
                "drop_after_messages" => f.drop_after_messages = num.or(Some(0)),
                "delay_handshake_ms" => f.delay_handshake = num.map(Duration::from_millis),
                "no_pings" => f.no_pings = true,
                "split_frames" => f.split_frames = true,
                "coalesce_frames" => f.coalesce_frames = true,
                "oversized_message" => {
                    f.oversized_message = Some(num.map_or(2 * 1024 * 1024, |n| n as usize))
                }
                "malformed_after" => f.malformed_after = num.or(Some(0)),
                "poll_status" => f.poll_status = num.and_then(|n| u16::try_from(n).ok()),
                "send_status" => f.send_status = num.and_then(|n| u16::try_from(n).ok()),
                "send_status_after" => f.send_status_after = num.unwrap_or(0),
                "ignore_sequence" => f.ignore_sequence = true,
                "bad_sequence" => f.bad_sequence = num,
                "drop_randomly" => drop_mean = Some(num.unwrap_or(1).max(1)),
                "drop_seed" => drop_seed = num,
                other => eprintln!("hublink-testserver: unknown fault '{other}' ignored"),
            }
        }
        f.drop_randomly = drop_mean.map(|mean| RandomDrops {
            mean,
            seed: drop_seed.unwrap_or(RandomDrops::DEFAULT_SEED),
        });
        f
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_switches() {
        let f = Faults::parse("drop_after_messages:5,delay_handshake_ms:2000,no_pings,split_frames,coalesce_frames,oversized_message,malformed_after:3,poll_status:404");
        assert_eq!(f.drop_after_messages, Some(5));
        assert_eq!(f.delay_handshake, Some(Duration::from_millis(2000)));
        assert!(f.no_pings && f.split_frames && f.coalesce_frames);
        assert_eq!(f.oversized_message, Some(2 * 1024 * 1024));
        assert_eq!(f.malformed_after, Some(3));
        assert_eq!(f.poll_status, Some(404));
        assert_eq!(f.drop_randomly, None);
    }

    #[test]
    fn parses_drop_randomly_with_and_without_a_seed() {
        assert_eq!(
            Faults::parse("drop_randomly:20").drop_randomly,
            Some(RandomDrops { mean: 20, seed: 1 })
        );
        assert_eq!(
            Faults::parse("drop_randomly:7, drop_seed:42").drop_randomly,
            Some(RandomDrops { mean: 7, seed: 42 })
        );
        // The seed may come first; it alone switches nothing on.
        assert_eq!(
            Faults::parse("drop_seed:3,no_pings,drop_randomly:5").drop_randomly,
            Some(RandomDrops { mean: 5, seed: 3 })
        );
        assert_eq!(Faults::parse("drop_seed:3").drop_randomly, None);
        // A missing, zero or unreadable mean is 1 (a drop after every message or two).
        for text in ["drop_randomly", "drop_randomly:0", "drop_randomly:x"] {
            assert_eq!(
                Faults::parse(text).drop_randomly,
                Some(RandomDrops { mean: 1, seed: 1 }),
                "{text}"
            );
        }
        // An unreadable seed falls back to the default.
        assert_eq!(
            Faults::parse("drop_randomly:4,drop_seed:-1").drop_randomly,
            Some(RandomDrops { mean: 4, seed: 1 })
        );
        let f = Faults::parse("drop_randomly:9,drop_after_messages:3,bad_sequence:2");
        assert_eq!(f.drop_after_messages, Some(3));
        assert_eq!(f.bad_sequence, Some(2));
    }

    #[test]
    fn drop_gaps_are_deterministic_in_range_and_average_the_mean() {
        for (mean, seed) in [(1, 1), (5, 0), (20, 1), (50, 7), (1000, u64::MAX)] {
            let drops = RandomDrops { mean, seed };
            let a: Vec<u64> = drops.gaps().take(20_000).collect();
            let b: Vec<u64> = drops.gaps().take(20_000).collect();
            assert_eq!(a, b, "the same seed gives the same gaps");
            assert!(
                a.iter().all(|g| (1..=2 * mean).contains(g)),
                "{mean}: {a:?}"
            );
            let avg = a.iter().sum::<u64>() as f64 / a.len() as f64;
            let expected = (1 + 2 * mean) as f64 / 2.0;
            assert!(
                (avg - expected).abs() <= expected * 0.05,
                "mean {mean} seed {seed}: average {avg}, expected about {expected}"
            );
            if mean > 1 {
                assert!(a.contains(&1) || mean > 100);
                assert!(a.contains(&(2 * mean)) || mean > 100);
            }
        }
        let one: Vec<u64> = RandomDrops { mean: 20, seed: 1 }.gaps().take(50).collect();
        let two: Vec<u64> = RandomDrops { mean: 20, seed: 2 }.gaps().take(50).collect();
        assert_ne!(one, two, "different seeds, different gaps");
    }
}
