//! `HubConnectionBuilder`: the options of a connection, named as in the official clients.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;

use super::connection::HubConnection;
use super::retry::{DefaultRetryPolicy, RetryPolicy};
use crate::error::Result;
use crate::maybe_send::{MaybeSend, MaybeSync};
use crate::options::ConnectionOptions;
use crate::protocol::transports::TransportKind;
use crate::protocol::HubProtocol;

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
#[must_use = "a builder does nothing until build() is called"]
#[derive(Clone, Debug, Default)]
pub struct HubConnectionBuilder {
    options: ConnectionOptions,
}

impl HubConnectionBuilder {
    /// A builder with the official defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// The hub URL (`http` or `https`).
    pub fn with_url(mut self, url: impl Into<String>) -> Self {
        self.options.url = url.into();
        self
    }

    /// The hub protocol (JSON by default).
    pub fn with_protocol(mut self, protocol: HubProtocol) -> Self {
        self.options.protocol = protocol;
        self
    }

    /// Uses the MessagePack hub protocol.
    pub fn with_messagepack(self) -> Self {
        self.with_protocol(HubProtocol::MessagePack)
    }

    /// The transports the client may use, tried in the server's order (all by default).
    pub fn with_transports(mut self, transports: impl IntoIterator<Item = TransportKind>) -> Self {
        self.options.transports = transports.into_iter().collect();
        self
    }

    /// Connects a WebSocket straight to the hub URL without negotiating (WebSockets only).
    pub fn skip_negotiation(mut self, skip: bool) -> Self {
        self.options.skip_negotiation = skip;
        self
    }

    /// Supplies the bearer token, called before every negotiate (so again on reconnect) and
    /// once more when a request is refused with 401, to retry it once with the new token.
    pub fn with_access_token_factory<F, Fut>(mut self, factory: F) -> Self
    where
        F: Fn() -> Fut + MaybeSend + MaybeSync + 'static,
        Fut: Future<Output = std::result::Result<Option<String>, String>> + MaybeSend + 'static,
    {
        #[cfg(not(target_arch = "wasm32"))]
        let factory: crate::options::AccessTokenFactory = Arc::new(move || factory().boxed());
        #[cfg(target_arch = "wasm32")]
        let factory: crate::options::AccessTokenFactory = Arc::new(move || factory().boxed_local());
        self.options.access_token_factory = Some(factory);
        self
    }

    /// Sends a cookie (`name=value`, as in a `Set-Cookie` header) from the first request on.
    pub fn with_cookie(mut self, cookie: impl Into<String>) -> Self {
        self.options.cookies.push(cookie.into());
        self
    }

    /// Adds a header to every HTTP request and WebSocket upgrade; overrides hublink's own.
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.options.headers.push((name.into(), value.into()));
        self
    }

    /// The timeout of negotiate and send requests (100 s by default).
    pub fn with_http_timeout(mut self, timeout: Duration) -> Self {
        self.options.http_timeout = timeout;
        self
    }

    /// How long the server has to answer the handshake (15 s by default).
    pub fn with_handshake_timeout(mut self, timeout: Duration) -> Self {
        self.options.handshake_timeout = timeout;
        self
    }

    /// Closes the connection when nothing arrives for this long (30 s by default).
    pub fn with_server_timeout(mut self, timeout: Duration) -> Self {
        self.options.server_timeout = timeout;
        self
    }

    /// Sends a Ping when nothing was sent for this long (15 s by default).
    pub fn with_keep_alive_interval(mut self, interval: Duration) -> Self {
        self.options.keep_alive_interval = interval;
        self
    }

    /// The largest message accepted from the server (1 MiB by default).
    pub fn with_max_message_size(mut self, bytes: usize) -> Self {
        self.options.max_message_size = bytes;
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
        self.options.retry_policy = Some(Arc::new(policy));
        self
    }

    /// Also retries the first `start()` under the retry policy (the official clients do
    /// not; users have asked for it since dotnet/aspnetcore#24957). Needs a retry policy.
    pub fn with_retry_on_start(mut self, retry: bool) -> Self {
        self.options.retry_on_start = retry;
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
        self.options.stateful_reconnect = true;
        self.options.stateful_reconnect_buffer_size = bytes;
        self
    }

    /// How many received items each server-to-client stream buffers (1024 by default, at
    /// least 1). While a stream's buffer is full the connection reads nothing from the server:
    /// the server feels TCP backpressure and nothing is dropped, but the connection's other
    /// messages (answers to calls, the server's invocations) wait until the stream is read.
    pub fn with_stream_buffer_capacity(mut self, items: usize) -> Self {
        self.options.stream_buffer_capacity = items;
        self
    }

    /// Lets trace-level logs show the contents of sent and received messages (the official
    /// `logMessageContent`). Off by default: messages may hold private data. Tokens are never
    /// logged.
    pub fn with_message_content_logging(mut self, enabled: bool) -> Self {
        self.options.log_message_content = enabled;
        self
    }

    /// Also trusts the root certificate(s) in `pem`, next to the operating system's roots, for
    /// every request and the WebSocket alike (not in the browser, where the browser does TLS).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn with_root_certificate_pem(mut self, pem: impl Into<String>) -> Self {
        self.options.tls_root_certificates_pem.push(pem.into());
        self
    }

    /// Presents this client certificate (`chain_pem`, leaf first) with its private key
    /// (`key_pem`) when the server asks for one.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn with_client_certificate_pem(
        mut self,
        chain_pem: impl Into<String>,
        key_pem: impl Into<String>,
    ) -> Self {
        self.options.tls_client_certificate_pem = Some((chain_pem.into(), key_pem.into()));
        self
    }

    /// DANGEROUS: accepts any server certificate (expired, self-signed, for another host), so
    /// anyone on the path can read and change the traffic, tokens included. For tests only.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn danger_accept_invalid_certs(mut self, accept: bool) -> Self {
        self.options.danger_accept_invalid_certs = accept;
        self
    }

    /// Sends negotiate and every transport through this HTTP proxy
    /// (`http://[user:password@]host:port`), the WebSocket in a `CONNECT` tunnel, whatever the
    /// environment says. Without it the environment's proxy is used (`HTTP_PROXY`,
    /// `HTTPS_PROXY`, `ALL_PROXY`, `NO_PROXY`). Not in the browser, which uses its own.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn with_proxy(mut self, url: impl Into<String>) -> Self {
        self.options.proxy = crate::Proxy::url(url);
        self
    }

    /// Connects without any proxy, whatever the environment says.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn with_no_proxy(mut self) -> Self {
        self.options.proxy = crate::Proxy::Disabled;
        self
    }

    /// The proxy setting in full, such as an explicit proxy with hosts that bypass it.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn with_proxy_setting(mut self, proxy: crate::Proxy) -> Self {
        self.options.proxy = proxy;
        self
    }

    /// The options collected so far.
    pub fn options(&self) -> &ConnectionOptions {
        &self.options
    }

    /// Builds the connection (not started).
    pub fn build(self) -> Result<HubConnection> {
        HubConnection::new(self.options)
    }
}

impl From<ConnectionOptions> for HubConnectionBuilder {
    fn from(options: ConnectionOptions) -> Self {
        HubConnectionBuilder { options }
    }
}
