//! The stateful-reconnect bookkeeping: sequence ids, the replay buffer, Ack and Sequence.

use std::collections::VecDeque;

use bytes::Bytes;

use super::message::HubMessage;

/// The default replay buffer size in bytes (the official clients' 100 000).
pub const DEFAULT_BUFFER_SIZE: usize = 100_000;

/// The official text when the server claims more messages than this side received.
pub const SEQUENCE_TOO_HIGH: &str = "Sequence ID greater than amount of messages we've received.";

/// What to do with a received message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inbound {
    /// Deliver it to the application.
    Process,
    /// A replayed copy of a message already delivered: drop it.
    Duplicate,
    /// Waiting for the peer's Sequence after a reconnect: ignore everything else.
    Ignore,
    /// The peer broke the protocol: close the connection with this text.
    Fail(String),
}

/// Sequence ids and the buffer of unacknowledged messages of one side of a connection with
/// stateful reconnect, as PROTOCOL.md §11 describes. It stores frames exactly as written so a
/// replay sends the same bytes.
///
/// ```
/// use bytes::Bytes;
/// use hublink_proto::stateful_reconnect::ReplayBuffer;
/// use hublink_proto::HubMessage;
/// let mut buffer = ReplayBuffer::new(100_000);
/// let ping = HubMessage::Ping;
/// buffer.on_sent(&ping, Bytes::from_static(b"not kept: pings are not sequenced"));
/// assert_eq!(buffer.buffered_bytes(), 0);
/// ```
#[derive(Debug)]
pub struct ReplayBuffer {
    limit: usize,
    unacked: VecDeque<(u64, Bytes)>,
    buffered_bytes: usize,
    next_outbound_id: u64,
    next_inbound_id: u64,
    highest_processed: u64,
    ack_due: bool,
    waiting_for_sequence: bool,
}

impl ReplayBuffer {
    /// A buffer that counts as full at `limit` bytes of unacknowledged messages.
    pub fn new(limit: usize) -> Self {
        ReplayBuffer {
            limit,
            unacked: VecDeque::new(),
            buffered_bytes: 0,
            next_outbound_id: 1,
            next_inbound_id: 1,
            highest_processed: 0,
            ack_due: false,
            waiting_for_sequence: false,
        }
    }

    /// Records a message written to the transport (`frame` is its encoded bytes). Sequenced
    /// messages (types 1–5) are numbered and kept until acknowledged.
    pub fn on_sent(&mut self, message: &HubMessage, frame: Bytes) {
        if message.is_sequenced() {
            self.record(frame);
        }
    }

    /// Records the frame of a sequenced message (types 1–5) written to the transport.
    pub fn record(&mut self, frame: Bytes) {
        self.buffered_bytes += frame.len();
        self.unacked.push_back((self.next_outbound_id, frame));
        self.next_outbound_id += 1;
    }

    /// Whether the unacknowledged bytes reached the limit: further sends should wait for an
    /// Ack (backpressure) rather than grow memory.
    pub fn is_full(&self) -> bool {
        self.is_full_with(0)
    }

    /// Whether the unacknowledged bytes and `queued` bytes of sequenced messages taken but not
    /// yet written (they will be kept too) reach the limit.
    pub fn is_full_with(&self, queued: usize) -> bool {
        self.buffered_bytes.saturating_add(queued) >= self.limit
    }

    /// Bytes kept for replay.
    pub fn buffered_bytes(&self) -> usize {
        self.buffered_bytes
    }

    /// Applies the peer's Ack: everything up to `sequence_id` is delivered and forgotten.
    pub fn on_ack(&mut self, sequence_id: u64) {
        while let Some((id, frame)) = self.unacked.front() {
            if *id > sequence_id {
                break;
            }
            self.buffered_bytes -= frame.len();
            self.unacked.pop_front();
        }
    }

    /// Classifies a received message. Ack is applied here; the caller processes the message
    /// only on [`Inbound::Process`].
    pub fn on_received(&mut self, message: &HubMessage) -> Inbound {
        match message {
            HubMessage::Sequence { sequence_id } => {
                // Against what was processed, not the id counted so far: after a replay that
                // a second drop cut short, the peer rightly starts after our last Ack. (The
                // official clients compare with the next id, and fail there.)
                if *sequence_id > self.highest_processed + 1 {
                    return Inbound::Fail(SEQUENCE_TOO_HIGH.into());
                }
                self.next_inbound_id = *sequence_id;
                self.waiting_for_sequence = false;
                Inbound::Ignore
            }
            _ if self.waiting_for_sequence => Inbound::Ignore,
            HubMessage::Ack { sequence_id } => {
                self.on_ack(*sequence_id);
                Inbound::Ignore
            }
            m if m.is_sequenced() => {
                let id = self.next_inbound_id;
                self.next_inbound_id += 1;
                if id <= self.highest_processed {
                    // The last replayed duplicate: Ack again, in case the Ack that fell due
                    // while reconnecting was lost (the peer may be holding sends back).
                    if id == self.highest_processed {
                        self.ack_due = true;
                    }
                    Inbound::Duplicate
                } else {
                    self.highest_processed = id;
                    self.ack_due = true;
                    Inbound::Process
                }
            }
            _ => Inbound::Process,
        }
    }

    /// The Ack to send, if messages arrived since the last one (the official clients send it
    /// about a second after the first unacknowledged receipt). Never during a reconnect.
    pub fn take_ack(&mut self) -> Option<HubMessage> {
        if !self.ack_due || self.waiting_for_sequence {
            return None;
        }
        self.ack_due = false;
        Some(HubMessage::Ack {
            sequence_id: self.highest_processed,
        })
    }

    /// The transport dropped: until the peer's Sequence arrives on the new transport, every
    /// received message is ignored.
    pub fn on_disconnected(&mut self) {
        self.waiting_for_sequence = true;
    }

    /// After reconnecting: the Sequence to send first, then the frames to replay, in order.
    pub fn resend(&self) -> (HubMessage, Vec<Bytes>) {
        let first = self
            .unacked
            .front()
            .map_or(self.next_outbound_id, |(id, _)| *id);
        let frames = self.unacked.iter().map(|(_, f)| f.clone()).collect();
        (HubMessage::Sequence { sequence_id: first }, frames)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{Invocation, Payload};
    use crate::value::Value;

    fn invocation(n: i64) -> HubMessage {
        HubMessage::Invocation(Invocation {
            invocation_id: None,
            target: "m".into(),
            arguments: vec![Payload::Value(Value::Int(n))],
            stream_ids: None,
            headers: vec![],
        })
    }

    fn frame(n: u8) -> Bytes {
        Bytes::from(vec![n; 10])
    }

    fn sequence(buffer: &ReplayBuffer) -> u64 {
        match buffer.resend().0 {
            HubMessage::Sequence { sequence_id } => sequence_id,
            other => panic!("{other:?}"),
        }
    }

    // The official client's tests: after 3 sends and a reconnect it sends Sequence 1 and the
    // 3 invocations; after Ack 2, Sequence 3 and only the third.
    #[test]
    fn a_sequence_after_a_replay_cut_short_starts_after_the_last_processed_message() {
        let mut buffer = ReplayBuffer::new(DEFAULT_BUFFER_SIZE);
        for n in 1..=10 {
            assert_eq!(buffer.on_received(&invocation(n.into())), Inbound::Process);
        }
        assert!(matches!(
            buffer.take_ack(),
            Some(HubMessage::Ack { sequence_id: 10 })
        ));
        buffer.on_disconnected();
        // The server replays from 5, but the transport drops again after 7.
        assert_eq!(
            buffer.on_received(&HubMessage::Sequence { sequence_id: 5 }),
            Inbound::Ignore
        );
        for n in 5..=7 {
            assert_eq!(
                buffer.on_received(&invocation(n.into())),
                Inbound::Duplicate
            );
        }
        buffer.on_disconnected();
        // It had our Ack for 10, so it resumes at 11: no gap.
        assert_eq!(
            buffer.on_received(&HubMessage::Sequence { sequence_id: 11 }),
            Inbound::Ignore
        );
        assert_eq!(buffer.on_received(&invocation(11)), Inbound::Process);
        buffer.on_disconnected();
        assert_eq!(
            buffer.on_received(&HubMessage::Sequence { sequence_id: 13 }),
            Inbound::Fail(SEQUENCE_TOO_HIGH.into()),
            "12 was never received"
        );
    }

    #[test]
    fn resend_starts_at_the_oldest_unacknowledged_message() {
        let mut buffer = ReplayBuffer::new(DEFAULT_BUFFER_SIZE);
        for n in 1..=3 {
            buffer.on_sent(&invocation(n.into()), frame(n));
        }
        buffer.on_sent(&HubMessage::Ping, frame(9));
        assert_eq!(sequence(&buffer), 1);
        assert_eq!(buffer.resend().1, vec![frame(1), frame(2), frame(3)]);
        buffer.on_ack(2);
        assert_eq!(sequence(&buffer), 3);
        assert_eq!(buffer.resend().1, vec![frame(3)]);
        buffer.on_ack(3);
        assert_eq!(sequence(&buffer), 4, "empty buffer: total sent + 1");
        assert!(buffer.resend().1.is_empty());
    }

    #[test]
    fn acks_are_due_after_receiving_and_report_the_highest_id() {
        let mut buffer = ReplayBuffer::new(DEFAULT_BUFFER_SIZE);
        assert!(buffer.take_ack().is_none());
        assert_eq!(buffer.on_received(&invocation(1)), Inbound::Process);
        assert!(matches!(
            buffer.take_ack(),
            Some(HubMessage::Ack { sequence_id: 1 })
        ));
        for n in 2..=4 {
            buffer.on_received(&invocation(n.into()));
        }
        assert!(matches!(
            buffer.take_ack(),
            Some(HubMessage::Ack { sequence_id: 4 })
        ));
        assert!(buffer.take_ack().is_none());
        assert_eq!(buffer.on_received(&HubMessage::Ping), Inbound::Process);
        assert!(buffer.take_ack().is_none(), "pings are not sequenced");
    }

    #[test]
    fn replayed_duplicates_are_dropped_after_the_peer_sequence() {
        let mut buffer = ReplayBuffer::new(DEFAULT_BUFFER_SIZE);
        for n in 1..=2 {
            assert_eq!(buffer.on_received(&invocation(n.into())), Inbound::Process);
        }
        buffer.on_disconnected();
        assert_eq!(buffer.on_received(&invocation(9)), Inbound::Ignore);
        assert!(buffer.take_ack().is_none(), "no Ack during a reconnect");
        assert_eq!(
            buffer.on_received(&HubMessage::Sequence { sequence_id: 1 }),
            Inbound::Ignore
        );
        assert!(
            buffer.take_ack().is_some(),
            "the Ack that fell due meanwhile"
        );
        assert_eq!(buffer.on_received(&invocation(1)), Inbound::Duplicate);
        assert!(buffer.take_ack().is_none());
        assert_eq!(buffer.on_received(&invocation(2)), Inbound::Duplicate);
        assert!(
            matches!(buffer.take_ack(), Some(HubMessage::Ack { sequence_id: 2 })),
            "the last duplicate is acknowledged again"
        );
        assert_eq!(buffer.on_received(&invocation(3)), Inbound::Process);
    }

    #[test]
    fn a_sequence_adjusts_the_window() {
        let mut buffer = ReplayBuffer::new(DEFAULT_BUFFER_SIZE);
        buffer.on_received(&invocation(1));
        buffer.on_received(&invocation(2));
        buffer.on_disconnected();
        buffer.on_received(&HubMessage::Sequence { sequence_id: 2 });
        assert_eq!(buffer.on_received(&invocation(2)), Inbound::Duplicate);
        assert_eq!(buffer.on_received(&invocation(3)), Inbound::Process);
    }

    #[test]
    fn a_sequence_beyond_what_was_received_fails() {
        let mut buffer = ReplayBuffer::new(DEFAULT_BUFFER_SIZE);
        buffer.on_received(&invocation(1));
        buffer.on_received(&invocation(2));
        buffer.on_disconnected();
        assert_eq!(
            buffer.on_received(&HubMessage::Sequence { sequence_id: 4 }),
            Inbound::Fail(SEQUENCE_TOO_HIGH.into())
        );
    }

    #[test]
    fn the_buffer_fills_and_drains_with_acks() {
        let mut buffer = ReplayBuffer::new(25);
        buffer.on_sent(&invocation(1), frame(1));
        buffer.on_sent(&invocation(2), frame(2));
        assert!(!buffer.is_full());
        buffer.on_sent(&invocation(3), frame(3));
        assert!(buffer.is_full());
        assert_eq!(buffer.buffered_bytes(), 30);
        buffer.on_received(&HubMessage::Ack { sequence_id: 1 });
        assert!(!buffer.is_full());
        assert_eq!(buffer.buffered_bytes(), 20);
    }
}
