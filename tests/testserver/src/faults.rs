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
    /// `ignore_sequence`: stateful reconnect: on a resumed WebSocket, send no Sequence message
    /// and replay nothing.
    pub ignore_sequence: bool,
    /// `bad_sequence:N`: stateful reconnect: on a resumed WebSocket, send Sequence N instead of
    /// the right one (then replay as usual).
    pub bad_sequence: Option<u64>,
}

impl Faults {
    /// Parses the value of a `faults` query parameter (unknown names are ignored and logged).
    pub fn parse(text: &str) -> Faults {
        let mut f = Faults::default();
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
                "ignore_sequence" => f.ignore_sequence = true,
                "bad_sequence" => f.bad_sequence = num,
                other => eprintln!("hublink-testserver: unknown fault '{other}' ignored"),
            }
        }
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
    }
}
