//! Every option of a connection as one plain struct: the form bindings fill from their own
//! options types, and what [`HubConnectionBuilder`](crate::HubConnectionBuilder) builds.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::hub::retry::RetryPolicy;
use crate::protocol::keep_alive::{DEFAULT_KEEP_ALIVE_INTERVAL_MS, DEFAULT_SERVER_TIMEOUT_MS};
use crate::protocol::stateful_reconnect::DEFAULT_BUFFER_SIZE;
use crate::protocol::transports::TransportKind;
use crate::protocol::{HubProtocol, DEFAULT_MAX_MESSAGE_SIZE};
use crate::BoxFuture;

/// The default time the server has to answer the handshake (15 s, as the .NET client).
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(15);

/// How many received items each server-to-client stream buffers by default before the
/// connection stops reading (1024): four of the 256-item batches the bindings take at once, so
/// a reader keeping up never holds the connection back, while a reader that stops holds at most
/// this many items (each at most [`max_message_size`](ConnectionOptions::max_message_size)).
pub const DEFAULT_STREAM_BUFFER_CAPACITY: usize = 1024;

/// Default timeout of negotiate, send and DELETE requests (the official 100 s).
pub const DEFAULT_HTTP_TIMEOUT: Duration = Duration::from_secs(100);

/// Produces the bearer token for a connection attempt; called for every negotiate (and so for
/// every reconnect), and once more when a request is refused with 401 (that request is then
/// retried once). `Ok(None)` sends no token; `Err(text)` fails the attempt with it.
#[cfg(not(target_arch = "wasm32"))]
pub type AccessTokenFactory =
    Arc<dyn Fn() -> BoxFuture<'static, std::result::Result<Option<String>, String>> + Send + Sync>;
/// Produces the bearer token for a connection attempt; called for every negotiate (and so for
/// every reconnect), and once more when a request is refused with 401 (that request is then
/// retried once). `Ok(None)` sends no token; `Err(text)` fails the attempt with it.
#[cfg(target_arch = "wasm32")]
pub type AccessTokenFactory =
    Arc<dyn Fn() -> BoxFuture<'static, std::result::Result<Option<String>, String>>>;

/// Every option of a connection, with the official clients' defaults.
///
/// Fill it field by field (it is `#[non_exhaustive]`: start from [`ConnectionOptions::new`])
/// and pass it to [`HubConnection::new`](crate::HubConnection::new):
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use hublink::{parse_transports, ConnectionOptions, DefaultRetryPolicy, HubConnection, HubProtocol};
///
/// let mut options = ConnectionOptions::new("https://example.com/chat");
/// options.protocol = HubProtocol::MessagePack;
/// options.transports = parse_transports(["webSockets", "LongPolling"]).unwrap();
/// options.headers.push(("X-Tenant".into(), "a".into()));
/// options.retry_policy = Some(Arc::new(DefaultRetryPolicy::default()));
/// options.server_timeout = Duration::from_secs(60);
/// let connection = HubConnection::new(options).unwrap();
/// ```
#[non_exhaustive]
#[derive(Clone)]
pub struct ConnectionOptions {
    /// The hub URL (`http` or `https`).
    pub url: String,
    /// The transports the client may use, tried in the server's order; empty means all.
    pub transports: Vec<TransportKind>,
    /// The hub protocol (JSON by default).
    pub protocol: HubProtocol,
    /// Connects a WebSocket straight to the hub URL without negotiating (WebSockets only).
    pub skip_negotiation: bool,
    /// Headers added to every HTTP request and WebSocket upgrade; they override hublink's own.
    pub headers: Vec<(String, String)>,
    /// Cookies to send from the first request on, as `name=value` (attributes such as
    /// `Path=/` may follow, as in a `Set-Cookie` header), scoped to the hub URL's host.
    /// Cookies the server sets are kept for the connection in any case.
    pub cookies: Vec<String>,
    /// In a browser: sends cookies and credentials on cross-origin requests (`withCredentials`,
    /// on by default as in the official client). Ignored elsewhere.
    pub with_credentials: bool,
    /// Supplies the bearer token before every negotiate.
    pub access_token_factory: Option<AccessTokenFactory>,
    /// Asks the server for stateful reconnect (WebSockets only).
    pub stateful_reconnect: bool,
    /// The replay buffer of stateful reconnect, in bytes (100 000 by default).
    pub stateful_reconnect_buffer_size: usize,
    /// Reconnects automatically as this policy decides; `None` never reconnects.
    pub retry_policy: Option<Arc<dyn RetryPolicy>>,
    /// Also retries the first `start()` under the retry policy.
    pub retry_on_start: bool,
    /// Sends a Ping when nothing was sent for this long (15 s by default).
    pub keep_alive_interval: Duration,
    /// Closes the connection when nothing arrives for this long (30 s by default).
    pub server_timeout: Duration,
    /// How long the server has to answer the handshake (15 s by default).
    pub handshake_timeout: Duration,
    /// The timeout of negotiate and send requests (100 s by default).
    pub http_timeout: Duration,
    /// The largest message accepted from the server, in bytes (1 MiB by default).
    pub max_message_size: usize,
    /// How many received items each server-to-client stream buffers (1024 by default, at
    /// least 1). When a stream's buffer is full the connection stops reading from the server
    /// until the stream is read (the server feels TCP backpressure): nothing is dropped and
    /// memory stays bounded, but every other message of the connection waits meanwhile.
    pub stream_buffer_capacity: usize,
    /// Lets trace-level logs show message contents (off by default). Tokens are never logged.
    pub log_message_content: bool,
    /// Extra trusted root certificates (PEM), next to the operating system's; used by every
    /// transport, the WebSocket included (not in the browser: there the browser does TLS).
    #[cfg(not(target_arch = "wasm32"))]
    pub tls_root_certificates_pem: Vec<String>,
    /// A client certificate for TLS: its chain and its private key, both PEM.
    #[cfg(not(target_arch = "wasm32"))]
    pub tls_client_certificate_pem: Option<(String, String)>,
    /// DANGEROUS: accepts any server certificate, so anyone on the path can read and change
    /// the traffic. Off by default; for tests against self-signed servers only.
    #[cfg(not(target_arch = "wasm32"))]
    pub danger_accept_invalid_certs: bool,
    /// The HTTP proxy of negotiate and every transport, the WebSocket included (tunnelled with
    /// `CONNECT`): by default the environment's (`HTTP_PROXY`, `HTTPS_PROXY`, `NO_PROXY`), as
    /// curl and the .NET client. Not in the browser, which uses its own settings.
    #[cfg(not(target_arch = "wasm32"))]
    pub proxy: crate::Proxy,
}

impl ConnectionOptions {
    /// The defaults, for `url`.
    pub fn new(url: impl Into<String>) -> Self {
        ConnectionOptions {
            url: url.into(),
            ..Self::default()
        }
    }
}

impl Default for ConnectionOptions {
    fn default() -> Self {
        ConnectionOptions {
            url: String::new(),
            transports: Vec::new(),
            protocol: HubProtocol::Json,
            skip_negotiation: false,
            headers: Vec::new(),
            cookies: Vec::new(),
            with_credentials: true,
            access_token_factory: None,
            stateful_reconnect: false,
            stateful_reconnect_buffer_size: DEFAULT_BUFFER_SIZE,
            retry_policy: None,
            retry_on_start: false,
            keep_alive_interval: Duration::from_millis(DEFAULT_KEEP_ALIVE_INTERVAL_MS),
            server_timeout: Duration::from_millis(DEFAULT_SERVER_TIMEOUT_MS),
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            http_timeout: DEFAULT_HTTP_TIMEOUT,
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            stream_buffer_capacity: DEFAULT_STREAM_BUFFER_CAPACITY,
            log_message_content: false,
            #[cfg(not(target_arch = "wasm32"))]
            tls_root_certificates_pem: Vec::new(),
            #[cfg(not(target_arch = "wasm32"))]
            tls_client_certificate_pem: None,
            #[cfg(not(target_arch = "wasm32"))]
            danger_accept_invalid_certs: false,
            #[cfg(not(target_arch = "wasm32"))]
            proxy: crate::Proxy::FromEnvironment,
        }
    }
}

impl fmt::Debug for ConnectionOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let header_names: Vec<&str> = self.headers.iter().map(|(n, _)| n.as_str()).collect();
        let mut debug = f.debug_struct("ConnectionOptions");
        debug
            .field("url", &self.url)
            .field("transports", &self.transports)
            .field("protocol", &self.protocol)
            .field("skip_negotiation", &self.skip_negotiation)
            .field("headers", &header_names)
            .field("cookies", &self.cookies.len())
            .field("with_credentials", &self.with_credentials)
            .field("access_token_factory", &self.access_token_factory.is_some())
            .field("stateful_reconnect", &self.stateful_reconnect)
            .field(
                "stateful_reconnect_buffer_size",
                &self.stateful_reconnect_buffer_size,
            )
            .field("automatic_reconnect", &self.retry_policy.is_some())
            .field("retry_on_start", &self.retry_on_start)
            .field("keep_alive_interval", &self.keep_alive_interval)
            .field("server_timeout", &self.server_timeout)
            .field("handshake_timeout", &self.handshake_timeout)
            .field("http_timeout", &self.http_timeout)
            .field("max_message_size", &self.max_message_size)
            .field("stream_buffer_capacity", &self.stream_buffer_capacity)
            .field("log_message_content", &self.log_message_content);
        #[cfg(not(target_arch = "wasm32"))]
        debug
            .field(
                "tls_root_certificates_pem",
                &self.tls_root_certificates_pem.len(),
            )
            .field(
                "tls_client_certificate_pem",
                &self.tls_client_certificate_pem.is_some(),
            )
            .field(
                "danger_accept_invalid_certs",
                &self.danger_accept_invalid_certs,
            )
            .field("proxy", &self.proxy);
        debug.finish()
    }
}

const VALID_TRANSPORTS: &str = "WebSockets, ServerSentEvents or LongPolling (any case), \
     or an HttpTransportType mask from 1 to 7 (WebSockets = 1, ServerSentEvents = 2, \
     LongPolling = 4)";

/// Reads one transport the way users of the official clients write it: its name in any case
/// (`WebSockets`, `webSockets`, `websockets`, `ServerSentEvents`, `LongPolling`; `-`, `_` and
/// spaces ignored), or the TypeScript client's numeric `HttpTransportType` flags (`1`, `2`, `4`,
/// or a sum of them such as `5`), which may name several.
///
/// ```
/// use hublink::{parse_transport, TransportKind};
/// assert_eq!(parse_transport("webSockets").unwrap(), [TransportKind::WebSockets]);
/// assert_eq!(parse_transport("5").unwrap(), [TransportKind::WebSockets, TransportKind::LongPolling]);
/// assert!(parse_transport("carrier pigeon").unwrap_err().to_string().contains("LongPolling"));
/// ```
pub fn parse_transport(name: &str) -> Result<Vec<TransportKind>> {
    let unknown = || {
        Error::invalid_argument(format!(
            "Unknown transport '{name}': use {VALID_TRANSPORTS}."
        ))
    };
    let key: String = name
        .chars()
        .filter(|c| !matches!(c, '-' | '_' | ' '))
        .collect::<String>()
        .to_ascii_lowercase();
    if let Ok(mask) = key.parse::<u32>() {
        if !(1..=7).contains(&mask) {
            return Err(unknown());
        }
        return Ok(TransportKind::ALL
            .into_iter()
            .filter(|kind| mask & u32::from(kind.bit()) != 0)
            .collect());
    }
    TransportKind::ALL
        .into_iter()
        .find(|kind| kind.name().eq_ignore_ascii_case(&key))
        .map(|kind| vec![kind])
        .ok_or_else(unknown)
}

/// Reads a list of transports with [`parse_transport`], in order, without repeats.
pub fn parse_transports<S: AsRef<str>>(
    names: impl IntoIterator<Item = S>,
) -> Result<Vec<TransportKind>> {
    let mut kinds = Vec::new();
    for name in names {
        for kind in parse_transport(name.as_ref())? {
            if !kinds.contains(&kind) {
                kinds.push(kind);
            }
        }
    }
    Ok(kinds)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    #[test]
    fn transport_names_as_users_of_the_official_clients_write_them() {
        use TransportKind::*;
        for name in [
            "WebSockets",
            "webSockets",
            "websockets",
            "WEBSOCKETS",
            "web-sockets",
        ] {
            assert_eq!(parse_transport(name).unwrap(), [WebSockets], "{name}");
        }
        assert_eq!(
            parse_transport("ServerSentEvents").unwrap(),
            [ServerSentEvents]
        );
        assert_eq!(parse_transport("long_polling").unwrap(), [LongPolling]);
        assert_eq!(parse_transport("2").unwrap(), [ServerSentEvents]);
        assert_eq!(
            parse_transport("7").unwrap(),
            [WebSockets, ServerSentEvents, LongPolling]
        );
        assert_eq!(
            parse_transports(["LongPolling", "1", "longPolling"]).unwrap(),
            [LongPolling, WebSockets]
        );
        for bad in ["", "0", "8", "sse", "websocket", "http"] {
            let error = parse_transport(bad).unwrap_err();
            assert_eq!(error.kind(), ErrorKind::InvalidArgument, "{bad}");
            assert_eq!(
                error.to_string(),
                format!("Unknown transport '{bad}': use {VALID_TRANSPORTS}.")
            );
        }
    }

    #[test]
    fn the_defaults_are_the_official_ones() {
        let options = ConnectionOptions::new("http://h/hub");
        assert_eq!(options.keep_alive_interval, Duration::from_secs(15));
        assert_eq!(options.server_timeout, Duration::from_secs(30));
        assert_eq!(options.handshake_timeout, Duration::from_secs(15));
        assert_eq!(options.http_timeout, Duration::from_secs(100));
        assert_eq!(options.stateful_reconnect_buffer_size, 100_000);
        assert_eq!(options.max_message_size, 1024 * 1024);
        assert_eq!(options.stream_buffer_capacity, 1024);
        assert!(options.transports.is_empty() && options.retry_policy.is_none());
    }
}
