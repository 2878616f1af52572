//! Keep-alive pings and the server timeout, driven by a `now` in milliseconds.

/// The official text when the server has been silent for too long.
pub const SERVER_TIMEOUT_ELAPSED: &str =
    "Server timeout elapsed without receiving a message from the server.";

/// The default interval after which an idle client sends a Ping (15 s).
pub const DEFAULT_KEEP_ALIVE_INTERVAL_MS: u64 = 15_000;

/// The default silence after which the server is considered gone (30 s).
pub const DEFAULT_SERVER_TIMEOUT_MS: u64 = 30_000;

/// What the keep-alive clock asks of the connection at a given moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeepAliveAction {
    /// Nothing to do before [`KeepAlive::next_deadline`].
    Wait,
    /// Nothing was sent for an interval: send a Ping now (then call `on_sent`).
    SendPing,
    /// Nothing was received for the server timeout: close with [`SERVER_TIMEOUT_ELAPSED`].
    ServerTimeout,
}

/// The two timers of a hub connection: ping cadence and server timeout.
///
/// Any message sent pushes the next ping back; any message received pushes the server
/// timeout back. Long Polling keeps the connection alive by itself, so there neither runs.
///
/// While the client itself stops reading (a stream's buffer is full: see
/// [`pause_reading`](Self::pause_reading)), the server timeout does not run: what waits unread
/// is no sign of a silent server. It runs again, in full, from the moment reading resumes.
///
/// ```
/// use hublink_proto::keep_alive::{KeepAlive, KeepAliveAction};
/// let mut clock = KeepAlive::new(15_000, 30_000, 0);
/// assert_eq!(clock.poll(14_999), KeepAliveAction::Wait);
/// assert_eq!(clock.poll(15_000), KeepAliveAction::SendPing);
/// clock.on_sent(15_000);
/// assert_eq!(clock.next_deadline(), Some(30_000));
/// assert_eq!(clock.poll(30_000), KeepAliveAction::ServerTimeout);
/// ```
#[derive(Debug, Clone)]
pub struct KeepAlive {
    interval_ms: u64,
    server_timeout_ms: u64,
    last_sent_ms: u64,
    last_received_ms: u64,
    enabled: bool,
    reading_paused: bool,
}

impl KeepAlive {
    /// Starts both timers at `now_ms`.
    pub fn new(interval_ms: u64, server_timeout_ms: u64, now_ms: u64) -> Self {
        KeepAlive {
            interval_ms,
            server_timeout_ms,
            last_sent_ms: now_ms,
            last_received_ms: now_ms,
            enabled: true,
            reading_paused: false,
        }
    }

    /// Timers that never fire, for transports with inherent keep-alive (Long Polling).
    pub fn inherent() -> Self {
        KeepAlive {
            enabled: false,
            ..KeepAlive::new(0, 0, 0)
        }
    }

    /// Records that a message was sent.
    pub fn on_sent(&mut self, now_ms: u64) {
        self.last_sent_ms = self.last_sent_ms.max(now_ms);
    }

    /// Records that a message (of any type) was received.
    pub fn on_received(&mut self, now_ms: u64) {
        self.last_received_ms = self.last_received_ms.max(now_ms);
    }

    /// Records that the client stopped reading from the server: the server timeout stops
    /// until [`resume_reading`](Self::resume_reading). Pings go on.
    pub fn pause_reading(&mut self) {
        self.reading_paused = true;
    }

    /// Records that the client reads again at `now_ms`: the server timeout starts over.
    pub fn resume_reading(&mut self, now_ms: u64) {
        if self.reading_paused {
            self.reading_paused = false;
            self.on_received(now_ms);
        }
    }

    /// The moment the next action is due, if any timer runs.
    pub fn next_deadline(&self) -> Option<u64> {
        self.enabled.then(|| match self.server_timeout_due() {
            Some(timeout) => self.ping_due().min(timeout),
            None => self.ping_due(),
        })
    }

    /// What is due at `now_ms`. The server timeout wins over a ping.
    pub fn poll(&self, now_ms: u64) -> KeepAliveAction {
        if !self.enabled {
            KeepAliveAction::Wait
        } else if self.server_timeout_due().is_some_and(|due| now_ms >= due) {
            KeepAliveAction::ServerTimeout
        } else if now_ms >= self.ping_due() {
            KeepAliveAction::SendPing
        } else {
            KeepAliveAction::Wait
        }
    }

    fn ping_due(&self) -> u64 {
        self.last_sent_ms.saturating_add(self.interval_ms)
    }

    fn server_timeout_due(&self) -> Option<u64> {
        (!self.reading_paused).then(|| self.last_received_ms.saturating_add(self.server_timeout_ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_of_moments() {
        // (event, at, expected action after it, expected next deadline)
        enum E {
            Sent,
            Received,
            Nothing,
        }
        let mut clock = KeepAlive::new(100, 300, 0);
        let steps = [
            (E::Nothing, 50, KeepAliveAction::Wait, 100),
            (E::Sent, 80, KeepAliveAction::Wait, 180),
            (E::Nothing, 180, KeepAliveAction::SendPing, 180),
            (E::Sent, 180, KeepAliveAction::Wait, 280),
            (E::Received, 250, KeepAliveAction::Wait, 280),
            (E::Sent, 290, KeepAliveAction::Wait, 390),
            (E::Sent, 390, KeepAliveAction::Wait, 490),
            (E::Nothing, 489, KeepAliveAction::Wait, 490),
            (E::Nothing, 549, KeepAliveAction::SendPing, 490),
            (E::Nothing, 550, KeepAliveAction::ServerTimeout, 490),
        ];
        for (event, at, action, deadline) in steps {
            match event {
                E::Sent => clock.on_sent(at),
                E::Received => clock.on_received(at),
                E::Nothing => {}
            }
            assert_eq!(clock.poll(at), action, "at {at}");
            assert_eq!(clock.next_deadline(), Some(deadline), "at {at}");
        }
    }

    #[test]
    fn inherent_keep_alive_never_fires() {
        let clock = KeepAlive::inherent();
        assert_eq!(clock.poll(u64::MAX), KeepAliveAction::Wait);
        assert_eq!(clock.next_deadline(), None);
    }

    #[test]
    fn time_never_runs_backwards() {
        let mut clock = KeepAlive::new(100, 300, 1_000);
        clock.on_received(500);
        assert_eq!(clock.poll(1_299), KeepAliveAction::SendPing);
        assert_eq!(clock.poll(1_300), KeepAliveAction::ServerTimeout);
    }

    #[test]
    fn no_server_timeout_while_the_client_itself_does_not_read() {
        let mut clock = KeepAlive::new(100, 300, 0);
        clock.pause_reading();
        assert_eq!(clock.next_deadline(), Some(100), "pings go on");
        assert_eq!(clock.poll(100), KeepAliveAction::SendPing);
        clock.on_sent(100);
        assert_eq!(clock.poll(199), KeepAliveAction::Wait);
        clock.on_sent(1_000);
        assert_eq!(clock.poll(1_000), KeepAliveAction::Wait, "long past 300");
        // Reading again starts the whole timeout over.
        clock.resume_reading(1_000);
        assert_eq!(clock.next_deadline(), Some(1_100));
        clock.on_sent(1_250);
        assert_eq!(clock.poll(1_299), KeepAliveAction::Wait);
        assert_eq!(clock.poll(1_300), KeepAliveAction::ServerTimeout);
        // Resuming without a pause moves nothing.
        clock.resume_reading(5_000);
        assert_eq!(clock.poll(1_300), KeepAliveAction::ServerTimeout);
    }
}
