//! `HubConnectionBuilder`: the options of a connection, named as in the official clients.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use url::Url;

use super::connection::HubConnection;
use super::lifecycle::Behaviour;
use super::retry::{DefaultRetryPolicy, RetryPolicy};
use crate::connect::{AccessTokenFactory, ConnectOptions};
use crate::error::{Error, Result};
use crate::http::HttpOptions;
use crate::protocol::keep_alive::{DEFAULT_KEEP_ALIVE_INTERVAL_MS, DEFAULT_SERVER_TIMEOUT_MS};
use crate::protocol::transports::{TransportKind, TransportSet};
use crate::protocol::{HubProtocol, DEFAULT_MAX_MESSAGE_SIZE};

/// The default time the server has to answer the handshake (15 s, as the .NET client).
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(15);

/// Builds a [`HubConnection`].
///
/// ```
/// use std::time::Duration;
/// use hublink::{HubConnectionBuilder, TransportKind};
/// let connection = HubConnectionBuilder::new()
///     .with_url("https://example.com/chat")
///     .with_messagepack()
///     .with_transports([TransportKind::WebSockets, TransportKind::LongPolling])
///     .with_header("X-Tenant", "a")
///     .with_access_token_factory(|| async { Ok(Some("token".to_owned())) })
///     .with_server_timeout(Duration::from_secs(60))
///     .build()
///     .unwrap();
/// assert_eq!(connection.state(), hublink::HubConnectionState::Disconnected);
/// ```
#[derive(Clone, Default)]
pub struct HubConnectionBuilder {
    url: Option<String>,
    protocol: Option<HubProtocol>,
    transports: Option<TransportSet>,
    skip_negotiation: bool,
    access_token_factory: Option<AccessTokenFactory>,
    http: HttpOptions,
    handshake_timeout: Option<Duration>,
    server_timeout: Option<Duration>,
    keep_alive_interval: Option<Duration>,
    max_message_size: Option<usize>,
    retry_policy: Option<Arc<dyn RetryPolicy>>,
    retry_on_start: bool,
    stateful_reconnect_buffer: Option<usize>,
    log_message_content: bool,
}

impl HubConnectionBuilder {
    /// A builder with the official defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// The hub URL (`http` or `https`).
    pub fn with_url(mut self, url: impl Into<String>) -> Self {
        self.url = Some(url.into());
        self
    }

    /// The hub protocol (JSON by default).
    pub fn with_protocol(mut self, protocol: HubProtocol) -> Self {
        self.protocol = Some(protocol);
        self
    }

    /// Uses the MessagePack hub protocol.
    pub fn with_messagepack(self) -> Self {
        self.with_protocol(HubProtocol::MessagePack)
    }

    /// The transports the client may use, tried in the server's order (all by default).
    pub fn with_transports(mut self, transports: impl IntoIterator<Item = TransportKind>) -> Self {
        self.transports = Some(transports.into_iter().collect());
        self
    }

    /// Connects a WebSocket straight to the hub URL without negotiating (WebSockets only).
    pub fn skip_negotiation(mut self, skip: bool) -> Self {
        self.skip_negotiation = skip;
        self
    }

    /// Supplies the bearer token, called before every negotiate (so again on reconnect).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn with_access_token_factory<F, Fut>(mut self, factory: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = std::result::Result<Option<String>, String>> + Send + 'static,
    {
        self.access_token_factory = Some(Arc::new(move || factory().boxed()));
        self
    }

    /// Supplies the bearer token, called before every negotiate (so again on reconnect).
    #[cfg(target_arch = "wasm32")]
    pub fn with_access_token_factory<F, Fut>(mut self, factory: F) -> Self
    where
        F: Fn() -> Fut + 'static,
        Fut: Future<Output = std::result::Result<Option<String>, String>> + 'static,
    {
        self.access_token_factory = Some(Arc::new(move || factory().boxed_local()));
        self
    }

    /// Adds a header to every HTTP request and WebSocket upgrade; overrides hublink's own.
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.http.headers.push((name.into(), value.into()));
        self
    }

    /// The timeout of negotiate and send requests (100 s by default).
    pub fn with_http_timeout(mut self, timeout: Duration) -> Self {
        self.http.timeout = timeout;
        self
    }

    /// How long the server has to answer the handshake (15 s by default).
    pub fn with_handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = Some(timeout);
        self
    }

    /// Closes the connection when nothing arrives for this long (30 s by default).
    pub fn with_server_timeout(mut self, timeout: Duration) -> Self {
        self.server_timeout = Some(timeout);
        self
    }

    /// Sends a Ping when nothing was sent for this long (15 s by default).
    pub fn with_keep_alive_interval(mut self, interval: Duration) -> Self {
        self.keep_alive_interval = Some(interval);
        self
    }

    /// The largest message accepted from the server (1 MiB by default).
    pub fn with_max_message_size(mut self, bytes: usize) -> Self {
        self.max_message_size = Some(bytes);
        self
    }

    /// Reconnects automatically when the connection is lost, after 0, 2, 10 and 30 seconds,
    /// then gives up (the official default). Each attempt negotiates again and calls the
    /// access-token factory again.
    pub fn with_automatic_reconnect(self) -> Self {
        self.with_retry_policy(DefaultRetryPolicy::default())
    }

    /// Reconnects automatically after each of `delays` in turn, then gives up.
    pub fn with_automatic_reconnect_delays(
        self,
        delays: impl IntoIterator<Item = Duration>,
    ) -> Self {
        self.with_retry_policy(DefaultRetryPolicy::with_delays(delays))
    }

    /// Reconnects automatically as `policy` decides.
    pub fn with_retry_policy(mut self, policy: impl RetryPolicy + 'static) -> Self {
        self.retry_policy = Some(Arc::new(policy));
        self
    }

    /// Also retries the first `start()` under the retry policy (the official clients do
    /// not; users have asked for it since dotnet/aspnetcore#24957). Needs a retry policy.
    pub fn with_retry_on_start(mut self, retry: bool) -> Self {
        self.retry_on_start = retry;
        self
    }

    /// Asks the server for stateful reconnect (WebSockets only): a dropped transport is
    /// reconnected with the same connection, unacknowledged messages are replayed both ways,
    /// and the application notices nothing. The replay buffer holds 100 000 bytes; sends
    /// beyond it wait for the server's acknowledgements.
    pub fn with_stateful_reconnect(self) -> Self {
        self.with_stateful_reconnect_buffer_size(
            crate::protocol::stateful_reconnect::DEFAULT_BUFFER_SIZE,
        )
    }

    /// Stateful reconnect with a replay buffer of `bytes`.
    pub fn with_stateful_reconnect_buffer_size(mut self, bytes: usize) -> Self {
        self.stateful_reconnect_buffer = Some(bytes);
        self
    }

    /// Lets trace-level logs show the contents of sent and received messages (the official
    /// `logMessageContent`). Off by default: messages may hold private data. Tokens are never
    /// logged.
    pub fn with_message_content_logging(mut self, enabled: bool) -> Self {
        self.log_message_content = enabled;
        self
    }

    /// Builds the connection (not started).
    pub fn build(self) -> Result<HubConnection> {
        let url = self
            .url
            .ok_or_else(|| Error::InvalidArgument("The 'url' argument is required.".into()))?;
        let url = Url::parse(&url)
            .map_err(|e| Error::InvalidArgument(format!("Cannot resolve '{url}': {e}.")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Error::InvalidArgument(format!(
                "The URL '{url}' must use http or https."
            )));
        }
        let options = ConnectOptions {
            url,
            protocol: self.protocol.unwrap_or(HubProtocol::Json),
            transports: self.transports.unwrap_or_default(),
            skip_negotiation: self.skip_negotiation,
            access_token_factory: self.access_token_factory,
            http: self.http,
            handshake_timeout: self.handshake_timeout.unwrap_or(DEFAULT_HANDSHAKE_TIMEOUT),
            max_message_size: self.max_message_size.unwrap_or(DEFAULT_MAX_MESSAGE_SIZE),
            log_message_content: self.log_message_content,
        };
        let millis =
            |d: Option<Duration>, default: u64| d.map_or(default, |d| d.as_millis() as u64);
        if self.retry_on_start && self.retry_policy.is_none() {
            return Err(Error::InvalidArgument(
                "with_retry_on_start needs a retry policy (with_automatic_reconnect).".into(),
            ));
        }
        Ok(HubConnection::new(
            options,
            Behaviour {
                keep_alive_interval_ms: millis(
                    self.keep_alive_interval,
                    DEFAULT_KEEP_ALIVE_INTERVAL_MS,
                ),
                server_timeout_ms: millis(self.server_timeout, DEFAULT_SERVER_TIMEOUT_MS),
                retry_policy: self.retry_policy,
                retry_on_start: self.retry_on_start,
                stateful_reconnect_buffer: self.stateful_reconnect_buffer,
            },
        ))
    }
}
