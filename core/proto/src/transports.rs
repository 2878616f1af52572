//! Transport kinds, transfer formats, and the official client's rules for choosing a transport.
//!
//! Everything here is pure data and decisions; nothing connects anywhere. The connection layer
//! asks [`select_transports`] which transports to try (in the server's order) and feeds the
//! outcome of every attempt to [`TransportAttempts`], which also produces the exact error text
//! of the official TypeScript client when nothing worked (PROTOCOL.md §2.5).
//!
//! ```
//! use hublink_proto::transports::{
//!     select_transports, AvailableTransport, TransferFormat, TransportKind, TransportSet,
//! };
//!
//! let offered = vec![
//!     AvailableTransport::new("WebSockets", vec![TransferFormat::Text, TransferFormat::Binary]),
//!     AvailableTransport::new("ServerSentEvents", vec![TransferFormat::Text]),
//!     AvailableTransport::new("LongPolling", vec![TransferFormat::Text, TransferFormat::Binary]),
//! ];
//! // MessagePack (Binary) never runs over Server-Sent Events.
//! let selection = select_transports(&offered, TransportSet::all(), TransferFormat::Binary);
//! let order: Vec<TransportKind> = selection.candidates().collect();
//! assert_eq!(order, [TransportKind::WebSockets, TransportKind::LongPolling]);
//! ```

use std::fmt;
use std::str::FromStr;

use thiserror::Error;

use super::error::ProtocolError;

/// The error text when the negotiate answer lists no transport at all (TS
/// `HttpConnection._createTransport`; see [`TransportErrors::error_text`]).
pub const NO_TRANSPORT_SUPPORTED: &str =
    "None of the transports supported by the client are supported by the server.";

/// The start of the aggregate error text when no transport could be started.
pub const ALL_TRANSPORTS_FAILED: &str =
    "Unable to connect to the server with any of the available transports.";

/// The error text when `skipNegotiation` is combined with anything but WebSockets alone.
pub const SKIP_NEGOTIATION_REQUIRES_WEBSOCKETS: &str =
    "Negotiation can only be skipped when using the WebSocket transport directly.";

/// A name that is not one of the wire names of a transport or transfer format.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("Unknown {what} '{name}'.")]
pub struct UnknownName {
    what: &'static str,
    name: String,
}

impl UnknownName {
    /// The name that was not recognised.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// One of the three SignalR transports.
///
/// The wire names (`"WebSockets"`, `"ServerSentEvents"`, `"LongPolling"`) are case-sensitive, as
/// in the negotiate answer and the TS `HttpTransportType` enum.
///
/// ```
/// use hublink_proto::transports::TransportKind;
///
/// assert_eq!("LongPolling".parse::<TransportKind>(), Ok(TransportKind::LongPolling));
/// assert_eq!(TransportKind::ServerSentEvents.to_string(), "ServerSentEvents");
/// assert!("websockets".parse::<TransportKind>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TransportKind {
    /// Full-duplex WebSockets.
    WebSockets,
    /// Server-Sent Events for receiving, HTTP POST for sending. Text only.
    ServerSentEvents,
    /// Long polling for receiving, HTTP POST for sending.
    LongPolling,
}

impl TransportKind {
    /// All transports, in the order servers list them.
    pub const ALL: [TransportKind; 3] = [
        TransportKind::WebSockets,
        TransportKind::ServerSentEvents,
        TransportKind::LongPolling,
    ];

    /// The wire name, as in the negotiate answer.
    pub const fn name(self) -> &'static str {
        match self {
            TransportKind::WebSockets => "WebSockets",
            TransportKind::ServerSentEvents => "ServerSentEvents",
            TransportKind::LongPolling => "LongPolling",
        }
    }

    /// The transport with this exact wire name, if any.
    pub fn from_name(name: &str) -> Option<Self> {
        TransportKind::ALL
            .into_iter()
            .find(|kind| kind.name() == name)
    }

    /// The bit of this transport in the TS `HttpTransportType` mask (1, 2, 4).
    pub const fn bit(self) -> u8 {
        match self {
            TransportKind::WebSockets => 1,
            TransportKind::ServerSentEvents => 2,
            TransportKind::LongPolling => 4,
        }
    }

    /// Whether this transport can carry the transfer format at all, whatever the server claims:
    /// Server-Sent Events carry text only, so MessagePack never runs over them.
    pub const fn can_carry(self, format: TransferFormat) -> bool {
        !matches!(
            (self, format),
            (TransportKind::ServerSentEvents, TransferFormat::Binary)
        )
    }

    /// Whether stateful reconnect can be used on this transport (WebSockets only; the TS client
    /// turns the feature off for every other transport).
    pub const fn supports_stateful_reconnect(self) -> bool {
        matches!(self, TransportKind::WebSockets)
    }

    /// Whether the transport provides its own keep-alive (Long Polling): the hub layer then sends
    /// no pings and runs no server-timeout timer (TS `features.inherentKeepAlive`).
    pub const fn has_inherent_keep_alive(self) -> bool {
        matches!(self, TransportKind::LongPolling)
    }
}

impl fmt::Display for TransportKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for TransportKind {
    type Err = UnknownName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TransportKind::from_name(s).ok_or_else(|| UnknownName {
            what: "transport",
            name: s.to_owned(),
        })
    }
}

/// How hub messages travel: as text (JSON protocol) or as binary (MessagePack protocol).
///
/// Wire names `"Text"` and `"Binary"`, case-sensitive.
///
/// ```
/// use hublink_proto::transports::TransferFormat;
///
/// assert_eq!("Binary".parse::<TransferFormat>(), Ok(TransferFormat::Binary));
/// assert_eq!(TransferFormat::Text.name(), "Text");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TransferFormat {
    /// UTF-8 text frames (JSON hub protocol).
    Text,
    /// Binary frames (MessagePack hub protocol).
    Binary,
}

impl TransferFormat {
    /// The wire name, as in the negotiate answer's `transferFormats`.
    pub const fn name(self) -> &'static str {
        match self {
            TransferFormat::Text => "Text",
            TransferFormat::Binary => "Binary",
        }
    }

    /// The transfer format with this exact wire name, if any.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "Text" => Some(TransferFormat::Text),
            "Binary" => Some(TransferFormat::Binary),
            _ => None,
        }
    }
}

impl fmt::Display for TransferFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for TransferFormat {
    type Err = UnknownName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TransferFormat::from_name(s).ok_or_else(|| UnknownName {
            what: "transfer format",
            name: s.to_owned(),
        })
    }
}

/// The transports the client allows, like the TS `transport` option (a `HttpTransportType`
/// bit mask).
///
/// An empty set means "all transports", exactly like the TS mask `0`, `null` or `undefined`:
/// [`TransportSet::from_bits(0)`](TransportSet::from_bits) and an empty list both give
/// [`TransportSet::all()`], which is also the [`Default`].
///
/// ```
/// use hublink_proto::transports::{TransportKind, TransportSet};
///
/// let set: TransportSet = [TransportKind::WebSockets, TransportKind::LongPolling].into_iter().collect();
/// assert!(set.contains(TransportKind::LongPolling));
/// assert!(!set.contains(TransportKind::ServerSentEvents));
/// assert_eq!(set.bits(), 5);
/// assert_eq!(TransportSet::from_kinds(&[]), TransportSet::all());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TransportSet {
    /// Never 0: the empty set is normalised to all three bits.
    bits: u8,
}

impl TransportSet {
    const ALL_BITS: u8 = 0b111;

    /// Every transport allowed (the default).
    pub const fn all() -> Self {
        TransportSet {
            bits: Self::ALL_BITS,
        }
    }

    /// Only this transport allowed.
    pub const fn only(kind: TransportKind) -> Self {
        TransportSet { bits: kind.bit() }
    }

    /// The set of a TS `HttpTransportType` mask (`WebSockets = 1`, `ServerSentEvents = 2`,
    /// `LongPolling = 4`). Unknown bits are ignored; a mask with no known bit means all.
    pub const fn from_bits(mask: u32) -> Self {
        let bits = (mask & Self::ALL_BITS as u32) as u8;
        if bits == 0 {
            Self::all()
        } else {
            TransportSet { bits }
        }
    }

    /// The set of the listed transports; an empty list means all.
    pub fn from_kinds(kinds: &[TransportKind]) -> Self {
        kinds.iter().copied().collect()
    }

    /// The TS mask of this set (1 to 7).
    pub const fn bits(self) -> u8 {
        self.bits
    }

    /// This set plus `kind`.
    #[must_use]
    pub const fn with(self, kind: TransportKind) -> Self {
        TransportSet {
            bits: self.bits | kind.bit(),
        }
    }

    /// Whether `kind` is allowed.
    pub const fn contains(self, kind: TransportKind) -> bool {
        self.bits & kind.bit() != 0
    }

    /// Whether every transport is allowed.
    pub const fn is_all(self) -> bool {
        self.bits == Self::ALL_BITS
    }

    /// Whether `kind` is the one and only allowed transport.
    pub const fn is_only(self, kind: TransportKind) -> bool {
        self.bits == kind.bit()
    }

    /// The allowed transports, in the order servers list them.
    pub fn iter(self) -> impl Iterator<Item = TransportKind> {
        TransportKind::ALL
            .into_iter()
            .filter(move |kind| self.contains(*kind))
    }
}

impl Default for TransportSet {
    fn default() -> Self {
        TransportSet::all()
    }
}

impl fmt::Debug for TransportSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

impl From<TransportKind> for TransportSet {
    fn from(kind: TransportKind) -> Self {
        TransportSet::only(kind)
    }
}

impl FromIterator<TransportKind> for TransportSet {
    /// Collects the listed transports; nothing listed means all.
    fn from_iter<I: IntoIterator<Item = TransportKind>>(iter: I) -> Self {
        let bits = iter.into_iter().fold(0u8, |bits, kind| bits | kind.bit());
        TransportSet::from_bits(u32::from(bits))
    }
}

/// Checks the `skipNegotiation` rule: negotiation can only be skipped when the allowed set is
/// exactly WebSockets (TS compares the option with `HttpTransportType.WebSockets`, so "all" is
/// refused too).
///
/// The error is [`ProtocolError::InvalidNegotiate`] with the TS text
/// [`SKIP_NEGOTIATION_REQUIRES_WEBSOCKETS`].
///
/// ```
/// use hublink_proto::transports::{check_skip_negotiation, TransportKind, TransportSet};
///
/// assert!(check_skip_negotiation(TransportSet::only(TransportKind::WebSockets)).is_ok());
/// let err = check_skip_negotiation(TransportSet::all()).unwrap_err();
/// assert_eq!(
///     err.to_string(),
///     "Negotiation can only be skipped when using the WebSocket transport directly."
/// );
/// ```
pub fn check_skip_negotiation(allowed: TransportSet) -> Result<(), ProtocolError> {
    if allowed.is_only(TransportKind::WebSockets) {
        Ok(())
    } else {
        Err(ProtocolError::InvalidNegotiate(
            SKIP_NEGOTIATION_REQUIRES_WEBSOCKETS.to_owned(),
        ))
    }
}

/// One entry of the negotiate answer's `availableTransports`, kept even when the transport name
/// is unknown to this client so the selection can report it.
///
/// Transfer-format names this client does not know are dropped when the answer is parsed, as
/// the TS client's lookup does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AvailableTransport {
    /// The `transport` name exactly as the server sent it.
    pub transport: String,
    /// The known entries of `transferFormats`, in the server's order.
    pub transfer_formats: Vec<TransferFormat>,
}

impl AvailableTransport {
    /// An entry with this name and these formats.
    pub fn new(transport: impl Into<String>, transfer_formats: Vec<TransferFormat>) -> Self {
        AvailableTransport {
            transport: transport.into(),
            transfer_formats,
        }
    }

    /// The transport, if the name is one this client knows.
    pub fn kind(&self) -> Option<TransportKind> {
        TransportKind::from_name(&self.transport)
    }
}

/// What to do with one entry of `availableTransports`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransportChoice {
    /// Try to start this transport.
    Try(TransportKind),
    /// Skip the entry: it cannot be used, and `reason` says why (the TS error text).
    Skip {
        /// The transport name as the server sent it.
        transport: String,
        /// Why it was skipped, for example `'LongPolling' is disabled by the client.`
        reason: String,
    },
}

/// The decision for every entry of a negotiate answer, in the server's order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TransportSelection {
    choices: Vec<TransportChoice>,
}

impl TransportSelection {
    /// Every entry's decision, in the server's order.
    pub fn choices(&self) -> &[TransportChoice] {
        &self.choices
    }

    /// The transports to try, in order.
    pub fn candidates(&self) -> impl Iterator<Item = TransportKind> + '_ {
        self.choices.iter().filter_map(|choice| match choice {
            TransportChoice::Try(kind) => Some(*kind),
            TransportChoice::Skip { .. } => None,
        })
    }

    /// The skipped entries as `(name, reason)`, in order.
    pub fn skipped(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.choices.iter().filter_map(|choice| match choice {
            TransportChoice::Try(_) => None,
            TransportChoice::Skip { transport, reason } => {
                Some((transport.as_str(), reason.as_str()))
            }
        })
    }

    /// Whether at least one transport is worth trying.
    pub fn has_candidates(&self) -> bool {
        self.candidates().next().is_some()
    }

    /// Starts the bookkeeping of the attempts over this selection.
    pub fn into_attempts(self) -> TransportAttempts {
        TransportAttempts::new(self)
    }
}

/// Decides, for every entry of the negotiate answer (in the server's order), whether to try it
/// or why to skip it, following TS `HttpConnection._resolveTransportOrError`:
///
/// 1. unknown name: `Skipping transport '<name>' because it is not supported by this client.`
/// 2. not allowed by the client: `'<name>' is disabled by the client.`
/// 3. the transfer format is not listed (or is Binary over Server-Sent Events):
///    `'<name>' does not support <Text|Binary>.`
/// 4. otherwise: try it.
///
/// Equivalent to [`select_transports_in_environment`] with every transport available.
pub fn select_transports(
    available: &[AvailableTransport],
    allowed: TransportSet,
    format: TransferFormat,
) -> TransportSelection {
    select_transports_in_environment(available, allowed, format, TransportSet::all())
}

/// Like [`select_transports`], for a runtime that implements only the transports in
/// `environment`; the others are skipped, after the checks above, with
/// `'<name>' is not supported in your environment.` (TS `UnsupportedTransportError`).
pub fn select_transports_in_environment(
    available: &[AvailableTransport],
    allowed: TransportSet,
    format: TransferFormat,
    environment: TransportSet,
) -> TransportSelection {
    let choices = available
        .iter()
        .map(|entry| {
            let skip = |reason: String| TransportChoice::Skip {
                transport: entry.transport.clone(),
                reason,
            };
            let Some(kind) = entry.kind() else {
                return skip(format!(
                    "Skipping transport '{}' because it is not supported by this client.",
                    entry.transport
                ));
            };
            if !allowed.contains(kind) {
                skip(format!("'{kind}' is disabled by the client."))
            } else if !entry.transfer_formats.contains(&format) || !kind.can_carry(format) {
                skip(format!("'{kind}' does not support {format}."))
            } else if !environment.contains(kind) {
                skip(format!("'{kind}' is not supported in your environment."))
            } else {
                TransportChoice::Try(kind)
            }
        })
        .collect();
    TransportSelection { choices }
}

/// The next transport to start, from [`TransportAttempts::next_attempt`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NextAttempt {
    /// The transport to start.
    pub transport: TransportKind,
    /// Whether to negotiate again first: after a transport failed to start, the negotiate answer
    /// is used up and the next attempt needs a fresh connection id/token (and connect URL).
    pub renegotiate: bool,
}

/// Bookkeeping of the fallback over a [`TransportSelection`]: which transport to start next,
/// whether to negotiate again before it, and the error text when all of them failed.
///
/// ```
/// use hublink_proto::transports::{
///     select_transports, AvailableTransport, TransferFormat, TransportKind, TransportSet,
/// };
///
/// let offered = vec![
///     AvailableTransport::new("WebSockets", vec![TransferFormat::Text]),
///     AvailableTransport::new("LongPolling", vec![TransferFormat::Text]),
/// ];
/// let allowed = TransportSet::only(TransportKind::WebSockets);
/// let mut attempts = select_transports(&offered, allowed, TransferFormat::Text).into_attempts();
///
/// let first = attempts.next_attempt().unwrap();
/// assert_eq!(first.transport, TransportKind::WebSockets);
/// assert!(!first.renegotiate);
/// attempts.failed(TransportKind::WebSockets, "boom");
/// assert_eq!(attempts.next_attempt(), None);
/// assert_eq!(
///     attempts.error_text(),
///     "Unable to connect to the server with any of the available transports. \
///      Error: WebSockets failed: Error: boom \
///      LongPolling failed: Error: 'LongPolling' is disabled by the client."
/// );
/// ```
#[derive(Debug, Clone)]
pub struct TransportAttempts {
    choices: std::vec::IntoIter<TransportChoice>,
    errors: TransportErrors,
    started_and_failed: bool,
}

impl TransportAttempts {
    /// Bookkeeping over `selection`, nothing tried yet.
    pub fn new(selection: TransportSelection) -> Self {
        TransportAttempts {
            choices: selection.choices.into_iter(),
            errors: TransportErrors::new(),
            started_and_failed: false,
        }
    }

    /// The next transport to start, recording the skipped entries on the way; `None` when the
    /// list is exhausted (then [`error_text`](Self::error_text) says why start failed).
    pub fn next_attempt(&mut self) -> Option<NextAttempt> {
        for choice in self.choices.by_ref() {
            match choice {
                TransportChoice::Skip { transport, reason } => {
                    self.errors.skipped(&transport, &reason);
                }
                TransportChoice::Try(transport) => {
                    return Some(NextAttempt {
                        transport,
                        renegotiate: self.started_and_failed,
                    });
                }
            }
        }
        None
    }

    /// Records that `transport` failed to start with this error text.
    pub fn failed(&mut self, transport: TransportKind, error: &str) {
        self.started_and_failed = true;
        self.errors.failed(transport, error);
    }

    /// The errors recorded so far.
    pub fn errors(&self) -> &TransportErrors {
        &self.errors
    }

    /// The start-failure text for what was recorded so far (see [`TransportErrors::error_text`]).
    pub fn error_text(&self) -> String {
        self.errors.error_text()
    }
}

/// The per-transport errors of one start attempt, joined into the TS `AggregateErrors` text.
///
/// The TS client pushes, for a skipped entry, the string `"<name> failed:"` followed by the
/// skip `Error`, and for a transport that failed to start, a `FailedToStartTransportError`
/// whose message is `"<name> failed: <error>"`; it then joins them with spaces, and every
/// `Error` object prints as `Error: <message>`. So the entries read
/// `<name> failed: Error: <reason>` (skipped) and `Error: <name> failed: Error: <error>`
/// (started and failed), exactly as the official tests expect.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TransportErrors {
    entries: Vec<String>,
}

impl TransportErrors {
    /// No errors yet.
    pub fn new() -> Self {
        TransportErrors::default()
    }

    /// Records a skipped entry and the reason it was skipped.
    pub fn skipped(&mut self, transport: &str, reason: &str) {
        self.entries
            .push(format!("{transport} failed: Error: {reason}"));
    }

    /// Records a transport that was started and failed with this error text.
    pub fn failed(&mut self, transport: TransportKind, error: &str) {
        self.entries
            .push(format!("Error: {transport} failed: Error: {error}"));
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The recorded entries, each formatted as it appears in the aggregate text.
    pub fn entries(&self) -> &[String] {
        &self.entries
    }

    /// The start-failure text: `Unable to connect to the server with any of the available
    /// transports. <entries joined by spaces>`, or, when the server listed no transport at all
    /// (nothing recorded), `None of the transports supported by the client are supported by the
    /// server.`
    ///
    /// Note that the TS client gives the "None of the transports…" text only when
    /// `availableTransports` is empty; when every entry was skipped (for example all disabled by
    /// the client) it gives the aggregate text listing the skip reasons. This follows it.
    pub fn error_text(&self) -> String {
        if self.entries.is_empty() {
            NO_TRANSPORT_SUPPORTED.to_owned()
        } else {
            format!("{ALL_TRANSPORTS_FAILED} {}", self.entries.join(" "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use TransferFormat::{Binary, Text};
    use TransportKind::{LongPolling, ServerSentEvents, WebSockets};

    /// The default answer of the TS tests (`defaultNegotiateResponse`).
    fn default_offer() -> Vec<AvailableTransport> {
        vec![
            AvailableTransport::new("WebSockets", vec![Text, Binary]),
            AvailableTransport::new("ServerSentEvents", vec![Text]),
            AvailableTransport::new("LongPolling", vec![Text, Binary]),
        ]
    }

    #[test]
    fn transport_names_round_trip() {
        let cases = [
            ("WebSockets", Some(WebSockets)),
            ("ServerSentEvents", Some(ServerSentEvents)),
            ("LongPolling", Some(LongPolling)),
            ("websockets", None),
            ("WebTransport", None),
            ("", None),
        ];
        for (name, expected) in cases {
            assert_eq!(TransportKind::from_name(name), expected, "{name}");
            assert_eq!(name.parse::<TransportKind>().ok(), expected, "{name}");
            if let Some(kind) = expected {
                assert_eq!(kind.to_string(), name);
                assert_eq!(kind.name(), name);
            }
        }
        assert_eq!(
            "Foo".parse::<TransportKind>().unwrap_err().to_string(),
            "Unknown transport 'Foo'."
        );
    }

    #[test]
    fn transfer_format_names_round_trip() {
        let cases = [
            ("Text", Some(Text)),
            ("Binary", Some(Binary)),
            ("text", None),
            ("Json", None),
        ];
        for (name, expected) in cases {
            assert_eq!(TransferFormat::from_name(name), expected, "{name}");
            assert_eq!(name.parse::<TransferFormat>().ok(), expected, "{name}");
            if let Some(format) = expected {
                assert_eq!(format.to_string(), name);
            }
        }
        let err = "Json".parse::<TransferFormat>().unwrap_err();
        assert_eq!(err.to_string(), "Unknown transfer format 'Json'.");
        assert_eq!(err.name(), "Json");
    }

    #[test]
    fn transport_properties() {
        let cases = [
            // kind, bit, carries Binary, stateful reconnect, inherent keep-alive
            (WebSockets, 1, true, true, false),
            (ServerSentEvents, 2, false, false, false),
            (LongPolling, 4, true, false, true),
        ];
        for (kind, bit, binary, stateful, keep_alive) in cases {
            assert_eq!(kind.bit(), bit);
            assert!(kind.can_carry(Text));
            assert_eq!(kind.can_carry(Binary), binary);
            assert_eq!(kind.supports_stateful_reconnect(), stateful);
            assert_eq!(kind.has_inherent_keep_alive(), keep_alive);
        }
    }

    #[test]
    fn transport_set_construction() {
        let cases: [(TransportSet, u8); 9] = [
            (TransportSet::all(), 7),
            (TransportSet::default(), 7),
            (TransportSet::from_bits(0), 7),
            (TransportSet::from_bits(8), 7),
            (TransportSet::from_bits(!1u32), 6), // TS `~WebSockets`
            (TransportSet::only(ServerSentEvents), 2),
            (TransportSet::from_kinds(&[]), 7),
            (TransportSet::from_kinds(&[LongPolling, WebSockets]), 5),
            (TransportSet::only(WebSockets).with(LongPolling), 5),
        ];
        for (set, bits) in cases {
            assert_eq!(set.bits(), bits, "{set:?}");
        }
        assert_eq!(
            TransportSet::from(LongPolling),
            TransportSet::only(LongPolling)
        );
    }

    #[test]
    fn transport_set_queries() {
        let set = TransportSet::from_kinds(&[WebSockets, LongPolling]);
        assert!(set.contains(WebSockets));
        assert!(!set.contains(ServerSentEvents));
        assert!(set.contains(LongPolling));
        assert!(!set.is_all());
        assert!(!set.is_only(WebSockets));
        assert_eq!(set.iter().collect::<Vec<_>>(), [WebSockets, LongPolling]);
        assert_eq!(format!("{set:?}"), "{WebSockets, LongPolling}");
        assert!(TransportSet::all().is_all());
        assert!(TransportSet::only(WebSockets).is_only(WebSockets));
    }

    #[test]
    fn skip_negotiation_needs_exactly_websockets() {
        let cases = [
            (TransportSet::only(WebSockets), true),
            (TransportSet::all(), false),
            (TransportSet::only(LongPolling), false),
            (TransportSet::only(ServerSentEvents), false),
            (TransportSet::only(WebSockets).with(LongPolling), false),
        ];
        for (set, ok) in cases {
            let result = check_skip_negotiation(set);
            assert_eq!(result.is_ok(), ok, "{set:?}");
            if let Err(err) = result {
                assert_eq!(
                    err,
                    ProtocolError::InvalidNegotiate(
                        "Negotiation can only be skipped when using the WebSocket transport directly."
                            .to_owned()
                    )
                );
            }
        }
    }

    #[test]
    fn selection_table() {
        fn skip(transport: &str, reason: &str) -> TransportChoice {
            TransportChoice::Skip {
                transport: transport.to_owned(),
                reason: reason.to_owned(),
            }
        }
        use TransportChoice::Try;
        type Case = (
            &'static str,
            Vec<AvailableTransport>,
            TransportSet,
            TransferFormat,
            Vec<TransportChoice>,
        );
        let cases: Vec<Case> = vec![
            (
                "all allowed, JSON",
                default_offer(),
                TransportSet::all(),
                Text,
                vec![Try(WebSockets), Try(ServerSentEvents), Try(LongPolling)],
            ),
            (
                "MessagePack skips SSE",
                default_offer(),
                TransportSet::all(),
                Binary,
                vec![
                    Try(WebSockets),
                    skip("ServerSentEvents", "'ServerSentEvents' does not support Binary."),
                    Try(LongPolling),
                ],
            ),
            (
                "MessagePack never over SSE, even if the server claims it",
                vec![AvailableTransport::new("ServerSentEvents", vec![Text, Binary])],
                TransportSet::all(),
                Binary,
                vec![skip("ServerSentEvents", "'ServerSentEvents' does not support Binary.")],
            ),
            (
                "only WebSockets allowed",
                default_offer(),
                TransportSet::only(WebSockets),
                Text,
                vec![
                    Try(WebSockets),
                    skip("ServerSentEvents", "'ServerSentEvents' is disabled by the client."),
                    skip("LongPolling", "'LongPolling' is disabled by the client."),
                ],
            ),
            (
                "server order kept",
                vec![
                    AvailableTransport::new("LongPolling", vec![Text]),
                    AvailableTransport::new("WebSockets", vec![Text]),
                ],
                TransportSet::all(),
                Text,
                vec![Try(LongPolling), Try(WebSockets)],
            ),
            (
                "unknown transport and format",
                vec![
                    AvailableTransport::new("WebTransport", vec![Text, Binary]),
                    AvailableTransport::new("LongPolling", vec![Binary]),
                ],
                TransportSet::all(),
                Text,
                vec![
                    skip(
                        "WebTransport",
                        "Skipping transport 'WebTransport' because it is not supported by this client.",
                    ),
                    skip("LongPolling", "'LongPolling' does not support Text."),
                ],
            ),
            (
                "disabled is checked before the format",
                vec![AvailableTransport::new("ServerSentEvents", vec![Text])],
                TransportSet::only(LongPolling),
                Binary,
                vec![skip("ServerSentEvents", "'ServerSentEvents' is disabled by the client.")],
            ),
            ("nothing offered", vec![], TransportSet::all(), Text, vec![]),
        ];
        for (name, offer, allowed, format, expected) in cases {
            let selection = select_transports(&offer, allowed, format);
            assert_eq!(selection.choices(), expected.as_slice(), "{name}");
            let tried: Vec<_> = expected
                .iter()
                .filter_map(|c| match c {
                    Try(kind) => Some(*kind),
                    TransportChoice::Skip { .. } => None,
                })
                .collect();
            assert_eq!(selection.candidates().collect::<Vec<_>>(), tried, "{name}");
            assert_eq!(selection.has_candidates(), !tried.is_empty(), "{name}");
        }
    }

    #[test]
    fn selection_in_environment() {
        let environment = TransportSet::only(LongPolling).with(WebSockets);
        let selection = select_transports_in_environment(
            &default_offer(),
            TransportSet::all(),
            Text,
            environment,
        );
        assert_eq!(
            selection.skipped().collect::<Vec<_>>(),
            [(
                "ServerSentEvents",
                "'ServerSentEvents' is not supported in your environment."
            )]
        );
        assert_eq!(
            selection.candidates().collect::<Vec<_>>(),
            [WebSockets, LongPolling]
        );
    }

    /// Exact texts of HttpConnection.test.ts.
    #[test]
    fn aggregate_error_texts() {
        const WS_FAILED: &str = "WebSocket failed to connect. The connection could not be found on the server, either the endpoint may not be a SignalR endpoint, the connection ID is not present on the server, or there is a proxy blocking WebSockets. If you have multiple servers check that sticky sessions are enabled.";
        struct Case {
            name: &'static str,
            offer: Vec<AvailableTransport>,
            allowed: TransportSet,
            format: TransferFormat,
            /// Error of each started transport, in order.
            failures: Vec<&'static str>,
            /// Expected `renegotiate` flags of the attempts.
            renegotiate: Vec<bool>,
            text: String,
        }
        let cases = vec![
            Case {
                name: "all transport failure errors get aggregated",
                offer: default_offer(),
                allowed: TransportSet::only(WebSockets),
                format: Text,
                failures: vec![WS_FAILED],
                renegotiate: vec![false],
                text: format!(
                    "Unable to connect to the server with any of the available transports. Error: WebSockets failed: Error: {WS_FAILED} ServerSentEvents failed: Error: 'ServerSentEvents' is disabled by the client. LongPolling failed: Error: 'LongPolling' is disabled by the client."
                ),
            },
            Case {
                name: "negotiate called again when transport fails to start and falls back",
                offer: default_offer(),
                allowed: TransportSet::only(WebSockets).with(ServerSentEvents),
                format: Text,
                failures: vec!["Don't allow Websockets.", "Don't allow ServerSentEvents."],
                renegotiate: vec![false, true],
                text: "Unable to connect to the server with any of the available transports. Error: WebSockets failed: Error: Don't allow Websockets. Error: ServerSentEvents failed: Error: Don't allow ServerSentEvents. LongPolling failed: Error: 'LongPolling' is disabled by the client.".to_owned(),
            },
            Case {
                name: "requested transport not available on server",
                offer: vec![
                    AvailableTransport::new("ServerSentEvents", vec![Text]),
                    AvailableTransport::new("LongPolling", vec![Text, Binary]),
                ],
                allowed: TransportSet::only(WebSockets),
                format: Text,
                failures: vec![],
                renegotiate: vec![],
                text: "Unable to connect to the server with any of the available transports. ServerSentEvents failed: Error: 'ServerSentEvents' is disabled by the client. LongPolling failed: Error: 'LongPolling' is disabled by the client.".to_owned(),
            },
            Case {
                name: "server's only transport masked out",
                offer: vec![AvailableTransport::new("LongPolling", vec![Text, Binary])],
                allowed: TransportSet::from_bits(!4u32),
                format: Text,
                failures: vec![],
                renegotiate: vec![],
                text: "Unable to connect to the server with any of the available transports. LongPolling failed: Error: 'LongPolling' is disabled by the client.".to_owned(),
            },
            Case {
                name: "start throws after all transports fail (none offered)",
                offer: vec![],
                allowed: TransportSet::all(),
                format: Text,
                failures: vec![],
                renegotiate: vec![],
                text: "None of the transports supported by the client are supported by the server.".to_owned(),
            },
            Case {
                name: "unknown transport is reported",
                offer: vec![AvailableTransport::new("Carrier", vec![Text])],
                allowed: TransportSet::all(),
                format: Text,
                failures: vec![],
                renegotiate: vec![],
                text: "Unable to connect to the server with any of the available transports. Carrier failed: Error: Skipping transport 'Carrier' because it is not supported by this client.".to_owned(),
            },
        ];
        for case in cases {
            let mut attempts =
                select_transports(&case.offer, case.allowed, case.format).into_attempts();
            let mut failures = case.failures.iter();
            let mut renegotiate = Vec::new();
            while let Some(next) = attempts.next_attempt() {
                renegotiate.push(next.renegotiate);
                let error = failures.next().expect("more attempts than failures");
                attempts.failed(next.transport, error);
            }
            assert!(failures.next().is_none(), "{}", case.name);
            assert_eq!(renegotiate, case.renegotiate, "{}", case.name);
            assert_eq!(attempts.error_text(), case.text, "{}", case.name);
            assert_eq!(
                attempts.errors().is_empty(),
                case.offer.is_empty(),
                "{}",
                case.name
            );
        }
    }

    #[test]
    fn success_stops_the_fallback() {
        let mut attempts =
            select_transports(&default_offer(), TransportSet::all(), Text).into_attempts();
        let first = attempts.next_attempt().unwrap();
        assert_eq!(
            first,
            NextAttempt {
                transport: WebSockets,
                renegotiate: false
            }
        );
        attempts.failed(WebSockets, "nope");
        let second = attempts.next_attempt().unwrap();
        assert_eq!(
            second,
            NextAttempt {
                transport: ServerSentEvents,
                renegotiate: true
            }
        );
        assert_eq!(
            attempts.errors().entries(),
            ["Error: WebSockets failed: Error: nope"]
        );
    }
}
