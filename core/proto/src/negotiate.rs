//! The negotiate step: URLs, the answer's parsing, the redirect loop and the status texts.
//!
//! Sans-IO: the connection layer sends `POST` (empty body) to [`negotiate_url`], checks the
//! status with [`check_negotiate_status`], parses the body with [`parse_negotiate_response`] and
//! feeds the answer to [`NegotiateRedirects`], which says whether to negotiate again (a
//! redirect) or which connection to open. Transport URLs come from [`connect_url`],
//! [`websocket_url`] and [`with_access_token_query`]. (PROTOCOL.md §1.)
//!
//! ```
//! use hublink_proto::negotiate::{
//!     parse_negotiate_response, NegotiateRedirects, NegotiateStep,
//! };
//! use url::Url;
//!
//! let hub = Url::parse("https://example.com/chat?room=1").unwrap();
//! let mut negotiation = NegotiateRedirects::new(hub, false);
//! assert_eq!(
//!     negotiation.negotiate_url().as_str(),
//!     "https://example.com/chat/negotiate?room=1&negotiateVersion=1"
//! );
//!
//! let body = br#"{"connectionId":"pub","connectionToken":"secret","negotiateVersion":1,
//!     "availableTransports":[{"transport":"WebSockets","transferFormats":["Text","Binary"]}]}"#;
//! let answer = parse_negotiate_response(body).unwrap();
//! match negotiation.on_answer(answer).unwrap() {
//!     NegotiateStep::Connect { response, base_url, .. } => {
//!         assert_eq!(response.connection_id, "pub");
//!         assert_eq!(
//!             response.connect_url(&base_url).as_str(),
//!             "https://example.com/chat?room=1&id=secret"
//!         );
//!     }
//!     NegotiateStep::Negotiate { .. } => unreachable!(),
//! }
//! ```

use serde_json::{Map, Value};
use url::Url;

use super::error::ProtocolError;
use super::transports::{AvailableTransport, TransferFormat};

/// The negotiate protocol version this client asks for (`negotiateVersion=1`).
pub const NEGOTIATE_VERSION: u32 = 1;

/// At most this many negotiate requests per start; the answer to the last may not redirect.
pub const MAX_NEGOTIATE_REQUESTS: u32 = 100;

/// The TS error text for an answer from a legacy ASP.NET (non-Core) SignalR server.
pub const LEGACY_SERVER_ERROR: &str = "Detected a connection attempt to an ASP.NET SignalR Server. This client only supports connecting to an ASP.NET Core SignalR Server. See https://aka.ms/signalr-core-differences for details.";

/// The TS error text when the 100th negotiate answer still redirects.
pub const REDIRECT_LIMIT_ERROR: &str = "Negotiate redirection limit exceeded.";

/// The TS error text when the server turned stateful reconnect on without being asked.
pub const STATEFUL_RECONNECT_MISMATCH_ERROR: &str =
    "Client didn't negotiate Stateful Reconnect but the server did.";

/// The TS hint added to the negotiate failure text on a 404.
pub const NOT_FOUND_HINT: &str =
    "Either this is not a SignalR endpoint or there is a proxy blocking the connection.";

/// The TS prefix of every negotiate failure (HTTP error, unreadable answer).
pub const NEGOTIATE_FAILED_PREFIX: &str = "Failed to complete negotiation with the server: ";

// ---------------------------------------------------------------------------------------------
// URLs
// ---------------------------------------------------------------------------------------------

/// The URL of the negotiate request for this hub URL (PROTOCOL.md §1.1).
///
/// `negotiate` is appended to the path (after a `/` unless the path already ends in one), the
/// user's query string is kept byte for byte, then `negotiateVersion=1` is appended unless the
/// query already has a `negotiateVersion` parameter, and `useStatefulReconnect=true` is appended
/// when `use_stateful_reconnect` is on and the query has no `useStatefulReconnect` parameter.
/// The fragment, never sent to a server, is dropped.
///
/// The `url` crate normalises an empty path to `/`, so `http://tempuri.org` becomes
/// `http://tempuri.org/negotiate?...`, as in the TS client.
///
/// ```
/// use hublink_proto::negotiate::negotiate_url;
/// use url::Url;
///
/// let hub = Url::parse("http://tempuri.org/endpoint/?q=my/Data").unwrap();
/// assert_eq!(
///     negotiate_url(&hub, false).as_str(),
///     "http://tempuri.org/endpoint/negotiate?q=my/Data&negotiateVersion=1"
/// );
/// ```
///
/// Note: the TS client since 8.0 rebuilds the query with `URLSearchParams`, which re-encodes the
/// user's values (`q=my%2FData`); this keeps them as given, like the older TS client and the
/// table of PROTOCOL.md. Servers decode both to the same value.
pub fn negotiate_url(hub_url: &Url, use_stateful_reconnect: bool) -> Url {
    let mut url = hub_url.clone();
    url.set_fragment(None);
    let path = if url.path().ends_with('/') {
        format!("{}negotiate", url.path())
    } else {
        format!("{}/negotiate", url.path())
    };
    url.set_path(&path);

    let mut additions = Vec::new();
    if !has_query_param(hub_url, "negotiateVersion") {
        additions.push(format!("negotiateVersion={NEGOTIATE_VERSION}"));
    }
    if use_stateful_reconnect && !has_query_param(hub_url, "useStatefulReconnect") {
        additions.push("useStatefulReconnect=true".to_owned());
    }
    for addition in additions {
        append_query(&mut url, &addition);
    }
    url
}

/// Whether the URL itself asks for stateful reconnect (`useStatefulReconnect=true` in its query).
///
/// The TS client turns the stateful-reconnect option on when the hub URL (or a redirect URL)
/// carries this parameter with the value `true`; any other value leaves the option as it is.
///
/// ```
/// use hublink_proto::negotiate::url_requests_stateful_reconnect;
/// use url::Url;
///
/// let yes = Url::parse("http://tempuri.org?useStatefulReconnect=true").unwrap();
/// let no = Url::parse("http://tempuri.org?useStatefulReconnect=false").unwrap();
/// assert!(url_requests_stateful_reconnect(&yes));
/// assert!(!url_requests_stateful_reconnect(&no));
/// ```
pub fn url_requests_stateful_reconnect(url: &Url) -> bool {
    // URLSearchParams.get returns the first value.
    url.query_pairs()
        .find(|(key, _)| key == "useStatefulReconnect")
        .is_some_and(|(_, value)| value == "true")
}

/// The URL of every transport request of a connection: the (final) hub URL with
/// `id=<percent-encoded id>` appended to its query, the user's query kept (PROTOCOL.md §1.4).
/// With no id (skipped negotiation), the hub URL itself. The fragment is dropped.
///
/// Pass [`NegotiateResponse::connection_token`] (which is the connection id for negotiate
/// version 0). The `url` crate normalises an empty path to `/`, so where the TS client gives
/// `http://tempuri.org?q=myData&id=42`, this gives `http://tempuri.org/?q=myData&id=42`, which
/// is the same request.
///
/// ```
/// use hublink_proto::negotiate::connect_url;
/// use url::Url;
///
/// let base = Url::parse("http://tempuri.org?q=myData").unwrap();
/// assert_eq!(connect_url(&base, Some("42")).as_str(), "http://tempuri.org/?q=myData&id=42");
/// assert_eq!(connect_url(&base, Some("a+b/c=")).as_str(), "http://tempuri.org/?q=myData&id=a%2Bb%2Fc%3D");
/// assert_eq!(connect_url(&base, None).as_str(), "http://tempuri.org/?q=myData");
/// ```
pub fn connect_url(base: &Url, id: Option<&str>) -> Url {
    let mut url = base.clone();
    url.set_fragment(None);
    if let Some(id) = id {
        append_query(&mut url, &format!("id={}", encode_component(id)));
    }
    url
}

/// The WebSocket URL for an HTTP URL: `http` becomes `ws`, `https` becomes `wss`; the rest of the
/// URL is kept. URLs already `ws`/`wss` (or of any other scheme) are returned unchanged.
///
/// ```
/// use hublink_proto::negotiate::websocket_url;
/// use url::Url;
///
/// let url = Url::parse("https://example.com/chat?id=abc").unwrap();
/// assert_eq!(websocket_url(&url).as_str(), "wss://example.com/chat?id=abc");
/// ```
pub fn websocket_url(url: &Url) -> Url {
    let mut ws = url.clone();
    let scheme = match url.scheme() {
        "http" => "ws",
        "https" => "wss",
        _ => return ws,
    };
    // Switching between these special schemes cannot fail.
    let _ = ws.set_scheme(scheme);
    ws
}

/// The URL with `access_token=<percent-encoded token>` appended to its query: how the token
/// travels where headers cannot be set (the Server-Sent Events GET, browser WebSockets).
///
/// The token is encoded like JavaScript's `encodeURIComponent` (and `'` is encoded as well).
///
/// ```
/// use hublink_proto::negotiate::with_access_token_query;
/// use url::Url;
///
/// let url = Url::parse("ws://example.com?value=null").unwrap();
/// assert_eq!(
///     with_access_token_query(&url, "secretToken").as_str(),
///     "ws://example.com/?value=null&access_token=secretToken"
/// );
/// ```
pub fn with_access_token_query(url: &Url, token: &str) -> Url {
    let mut url = url.clone();
    append_query(
        &mut url,
        &format!("access_token={}", encode_component(token)),
    );
    url
}

/// Whether the query has a parameter with exactly this (decoded) name.
fn has_query_param(url: &Url, name: &str) -> bool {
    url.query_pairs().any(|(key, _)| key == name)
}

/// Appends `pair` (already encoded) to the raw query, so the user's query is not re-encoded.
fn append_query(url: &mut Url, pair: &str) {
    let query = match url.query() {
        Some(existing) if !existing.is_empty() => format!("{existing}&{pair}"),
        _ => pair.to_owned(),
    };
    url.set_query(Some(&query));
}

/// Percent-encodes everything but `A-Z a-z 0-9 - _ . ! ~ * ( )` (JavaScript's
/// `encodeURIComponent`, plus `'`, which the `url` crate would encode in a query anyway).
fn encode_component(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for &byte in value.as_bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.!~*()".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Status
// ---------------------------------------------------------------------------------------------

/// `Ok` for a 200 answer, otherwise the TS start-failure text ([`negotiate_status_error`]).
///
/// ```
/// use hublink_proto::negotiate::check_negotiate_status;
///
/// assert!(check_negotiate_status(200, "").is_ok());
/// assert_eq!(
///     check_negotiate_status(204, "").unwrap_err(),
///     "Unexpected status code returned from negotiate '204'"
/// );
/// ```
pub fn check_negotiate_status(status: u16, body: &str) -> Result<(), String> {
    if status == 200 {
        Ok(())
    } else {
        Err(negotiate_status_error(status, body))
    }
}

/// The TS start-failure text for a negotiate answer whose status is not 200 (PROTOCOL.md §1.2).
///
/// * a 2xx other than 200: `Unexpected status code returned from negotiate '<n>'`;
/// * any other status: `Failed to complete negotiation with the server: Error: <body>: Status
///   code '<n>'`, where `<body>` is the response body, or the standard reason phrase when the
///   body is empty (the TS HTTP clients use `body || statusText`); a 404 adds
///   ` Either this is not a SignalR endpoint or there is a proxy blocking the connection.`
///
/// Meant for statuses other than 200 (for 200 it gives the "Unexpected status code" text).
///
/// ```
/// use hublink_proto::negotiate::negotiate_status_error;
///
/// assert_eq!(
///     negotiate_status_error(404, ""),
///     "Failed to complete negotiation with the server: Error: Not Found: Status code '404' \
///      Either this is not a SignalR endpoint or there is a proxy blocking the connection."
/// );
/// ```
pub fn negotiate_status_error(status: u16, body: &str) -> String {
    if (200..300).contains(&status) {
        return format!("Unexpected status code returned from negotiate '{status}'");
    }
    let detail = if body.is_empty() {
        reason_phrase(status)
    } else {
        body
    };
    let mut text = negotiate_failure_text(&format!("{detail}: Status code '{status}'"));
    if status == 404 {
        text.push(' ');
        text.push_str(NOT_FOUND_HINT);
    }
    text
}

/// The TS text of any other negotiate failure (network error, unreadable answer):
/// `Failed to complete negotiation with the server: Error: <cause>`.
///
/// ```
/// use hublink_proto::negotiate::negotiate_failure_text;
///
/// assert_eq!(
///     negotiate_failure_text("negotiate failed"),
///     "Failed to complete negotiation with the server: Error: negotiate failed"
/// );
/// ```
pub fn negotiate_failure_text(cause: &str) -> String {
    format!("{NEGOTIATE_FAILED_PREFIX}Error: {cause}")
}

/// The standard reason phrase of a status code (what `statusText` holds over HTTP/1.1), or ""
/// for a code without one.
fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        102 => "Processing",
        103 => "Early Hints",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        305 => "Use Proxy",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Payload Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Range Not Satisfiable",
        417 => "Expectation Failed",
        418 => "I'm a Teapot",
        421 => "Misdirected Request",
        422 => "Unprocessable Entity",
        423 => "Locked",
        424 => "Failed Dependency",
        425 => "Too Early",
        426 => "Upgrade Required",
        428 => "Precondition Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        451 => "Unavailable For Legal Reasons",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        506 => "Variant Also Negotiates",
        507 => "Insufficient Storage",
        508 => "Loop Detected",
        510 => "Not Extended",
        511 => "Network Authentication Required",
        _ => "",
    }
}

// ---------------------------------------------------------------------------------------------
// The answer
// ---------------------------------------------------------------------------------------------

/// A negotiate answer that names the connection to open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NegotiateResponse {
    /// The public connection id (what server code and other clients see).
    pub connection_id: String,
    /// The value of the `id` query parameter of every transport request. For negotiate version
    /// 0 (or no `negotiateVersion`) this is the connection id, and any `connectionToken` the
    /// server sent is ignored, as in the TS client.
    pub connection_token: String,
    /// The version the server chose; 0 when absent or below 1.
    pub negotiate_version: u32,
    /// The `availableTransports` entries, in the server's order, unknown transport names kept.
    pub available_transports: Vec<AvailableTransport>,
    /// Whether the server agreed to stateful reconnect.
    pub use_stateful_reconnect: bool,
    /// A bearer token sent with the answer (`accessToken`), to use for the following requests.
    pub access_token: Option<String>,
}

impl NegotiateResponse {
    /// Fails with the TS text `Client didn't negotiate Stateful Reconnect but the server did.`
    /// ([`ProtocolError::InvalidNegotiate`]) when the server turned stateful reconnect on
    /// although the client did not ask for it.
    pub fn check_stateful_reconnect(&self, requested: bool) -> Result<(), ProtocolError> {
        if self.use_stateful_reconnect && !requested {
            Err(ProtocolError::InvalidNegotiate(
                STATEFUL_RECONNECT_MISMATCH_ERROR.to_owned(),
            ))
        } else {
            Ok(())
        }
    }

    /// The transport URL of this connection on `base` (see [`connect_url`]).
    pub fn connect_url(&self, base: &Url) -> Url {
        connect_url(base, Some(&self.connection_token))
    }
}

/// What a negotiate answer says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NegotiateAnswer {
    /// Open this connection.
    Connect(NegotiateResponse),
    /// Negotiate again with `url` as the hub URL, using `access_token` (if any) as the bearer
    /// token from now on.
    Redirect {
        /// The new hub URL, as the server sent it.
        url: String,
        /// The bearer token for the following requests.
        access_token: Option<String>,
    },
    /// The server refused the connection with this text (its `error` field).
    Error(String),
}

/// Parses the body of a 200 negotiate answer (PROTOCOL.md §1.2).
///
/// Precedence as in the TS client: a non-empty `error` gives [`NegotiateAnswer::Error`]; a
/// `ProtocolVersion` field (legacy ASP.NET SignalR) is an error with [`LEGACY_SERVER_ERROR`]; a
/// non-empty `url` gives [`NegotiateAnswer::Redirect`]; anything else must name a connection:
/// `connectionId` and `availableTransports` are required, and `connectionToken` too when
/// `negotiateVersion` is 1 or more. Unknown fields are ignored; `null` counts as absent. Bodies
/// that are not a JSON object, known fields of the wrong type, and nesting deeper than 128
/// levels are [`ProtocolError::InvalidNegotiate`] errors (`Invalid negotiation response
/// received: …`), never a panic. The stateful-reconnect check needs the client's request and is
/// done by [`NegotiateResponse::check_stateful_reconnect`] (or [`NegotiateRedirects`]).
///
/// ```
/// use hublink_proto::negotiate::{parse_negotiate_response, NegotiateAnswer};
///
/// let answer = parse_negotiate_response(br#"{"url":"https://x.example/chat","accessToken":"t"}"#);
/// assert_eq!(
///     answer,
///     Ok(NegotiateAnswer::Redirect {
///         url: "https://x.example/chat".to_owned(),
///         access_token: Some("t".to_owned()),
///     })
/// );
/// let err = parse_negotiate_response(br#"{"availableTransports":[]}"#).unwrap_err();
/// assert_eq!(
///     err.to_string(),
///     "Invalid negotiation response received: Missing required property 'connectionId'."
/// );
/// ```
pub fn parse_negotiate_response(body: &[u8]) -> Result<NegotiateAnswer, ProtocolError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| invalid(&format!("the body is not valid JSON ({e}).")))?;
    let Value::Object(object) = value else {
        return Err(invalid("expected a JSON object."));
    };

    // Read and type-check every known field first, like the .NET parser.
    let error = string_field(&object, "error")?;
    let legacy = object
        .get("ProtocolVersion")
        .is_some_and(|value| !value.is_null());
    let url = string_field(&object, "url")?;
    let access_token = string_field(&object, "accessToken")?.filter(|t| !t.is_empty());
    let connection_id = string_field(&object, "connectionId")?;
    let connection_token = string_field(&object, "connectionToken")?;
    let negotiate_version = version_field(&object)?;
    let use_stateful_reconnect = bool_field(&object, "useStatefulReconnect")?.unwrap_or(false);
    let available_transports = transports_field(&object)?;

    if let Some(error) = error.filter(|e| !e.is_empty()) {
        return Ok(NegotiateAnswer::Error(error));
    }
    if legacy {
        return Err(ProtocolError::InvalidNegotiate(
            LEGACY_SERVER_ERROR.to_owned(),
        ));
    }
    if let Some(url) = url.filter(|u| !u.is_empty()) {
        return Ok(NegotiateAnswer::Redirect { url, access_token });
    }

    let connection_id = connection_id
        .filter(|id| !id.is_empty())
        .ok_or_else(|| invalid("Missing required property 'connectionId'."))?;
    let connection_token = if negotiate_version >= 1 {
        connection_token
            .filter(|token| !token.is_empty())
            .ok_or_else(|| invalid("Missing required property 'connectionToken'."))?
    } else {
        connection_id.clone()
    };
    let available_transports = available_transports
        .ok_or_else(|| invalid("Missing required property 'availableTransports'."))?;

    Ok(NegotiateAnswer::Connect(NegotiateResponse {
        connection_id,
        connection_token,
        negotiate_version,
        available_transports,
        use_stateful_reconnect,
        access_token,
    }))
}

fn invalid(detail: &str) -> ProtocolError {
    ProtocolError::InvalidNegotiate(format!("Invalid negotiation response received: {detail}"))
}

/// A field that is absent or null.
fn present<'a>(object: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    object.get(name).filter(|value| !value.is_null())
}

fn string_field(object: &Map<String, Value>, name: &str) -> Result<Option<String>, ProtocolError> {
    match present(object, name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(invalid(&format!("Expected '{name}' to be of type String."))),
    }
}

fn bool_field(object: &Map<String, Value>, name: &str) -> Result<Option<bool>, ProtocolError> {
    match present(object, name) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(invalid(&format!(
            "Expected '{name}' to be of type Boolean."
        ))),
    }
}

/// `negotiateVersion`: an integer; absent or below 1 means 0.
fn version_field(object: &Map<String, Value>) -> Result<u32, ProtocolError> {
    let Some(value) = present(object, "negotiateVersion") else {
        return Ok(0);
    };
    let wrong = || invalid("Expected 'negotiateVersion' to be an integer.");
    let version = value.as_i64().ok_or_else(wrong)?;
    if version < 1 {
        Ok(0)
    } else {
        u32::try_from(version).map_err(|_| wrong())
    }
}

fn transports_field(
    object: &Map<String, Value>,
) -> Result<Option<Vec<AvailableTransport>>, ProtocolError> {
    let Some(value) = present(object, "availableTransports") else {
        return Ok(None);
    };
    let Value::Array(entries) = value else {
        return Err(invalid(
            "Expected 'availableTransports' to be of type Array.",
        ));
    };
    entries
        .iter()
        .map(|entry| {
            let Value::Object(entry) = entry else {
                return Err(invalid(
                    "Expected each entry of 'availableTransports' to be an object.",
                ));
            };
            let transport = string_field(entry, "transport")?
                .ok_or_else(|| invalid("Missing required property 'transport'."))?;
            let Some(formats) = present(entry, "transferFormats") else {
                return Err(invalid("Missing required property 'transferFormats'."));
            };
            let Value::Array(formats) = formats else {
                return Err(invalid("Expected 'transferFormats' to be of type Array."));
            };
            let transfer_formats = formats
                .iter()
                .map(|format| match format {
                    // Unknown format names are dropped, like the TS lookup does.
                    Value::String(name) => Ok(TransferFormat::from_name(name)),
                    _ => Err(invalid(
                        "Expected each entry of 'transferFormats' to be of type String.",
                    )),
                })
                .filter_map(Result::transpose)
                .collect::<Result<Vec<_>, _>>()?;
            Ok(AvailableTransport {
                transport,
                transfer_formats,
            })
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

// ---------------------------------------------------------------------------------------------
// The redirect loop
// ---------------------------------------------------------------------------------------------

/// What to do after a negotiate answer, from [`NegotiateRedirects::on_answer`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NegotiateStep {
    /// Send another negotiate request to `url`, with `access_token` as the bearer token when
    /// there is one (otherwise the user's token factory, as before).
    Negotiate {
        /// The negotiate URL of the redirect target.
        url: Url,
        /// The token of the latest answer that carried one.
        access_token: Option<String>,
    },
    /// Negotiation is done: open the connection.
    Connect {
        /// The answer naming the connection.
        response: NegotiateResponse,
        /// The hub URL after all redirects; transport URLs are built on it
        /// ([`NegotiateResponse::connect_url`]).
        base_url: Url,
        /// The token of the latest answer that carried one; when `None`, keep using the user's
        /// token factory.
        access_token: Option<String>,
    },
}

/// The negotiate redirect loop of one start, without the IO (PROTOCOL.md §1.3).
///
/// Counts requests and, fed each answer, says whether to negotiate again (and where, with which
/// token) or which connection to open. A redirect URL becomes the new hub URL: its negotiate URL
/// is built with the same rules as the user's, and a `useStatefulReconnect=true` in it turns the
/// stateful-reconnect request on, as in the TS client. A token sent with an answer replaces the
/// user's token for the rest of this start.
///
/// ```
/// use hublink_proto::negotiate::{NegotiateAnswer, NegotiateRedirects, NegotiateStep};
/// use url::Url;
///
/// let mut negotiation = NegotiateRedirects::new(Url::parse("http://tempuri.org").unwrap(), false);
/// assert_eq!(negotiation.negotiate_url().as_str(), "http://tempuri.org/negotiate?negotiateVersion=1");
/// let step = negotiation
///     .on_answer(NegotiateAnswer::Redirect {
///         url: "https://another.domain.url/chat".to_owned(),
///         access_token: Some("secondToken".to_owned()),
///     })
///     .unwrap();
/// assert_eq!(
///     step,
///     NegotiateStep::Negotiate {
///         url: Url::parse("https://another.domain.url/chat/negotiate?negotiateVersion=1").unwrap(),
///         access_token: Some("secondToken".to_owned()),
///     }
/// );
/// ```
#[derive(Debug, Clone)]
pub struct NegotiateRedirects {
    base_url: Url,
    access_token: Option<String>,
    use_stateful_reconnect: bool,
    requests: u32,
}

impl NegotiateRedirects {
    /// A loop starting at `hub_url`. Stateful reconnect is requested when
    /// `use_stateful_reconnect` is on or the URL asks for it
    /// ([`url_requests_stateful_reconnect`]).
    pub fn new(hub_url: Url, use_stateful_reconnect: bool) -> Self {
        let use_stateful_reconnect =
            use_stateful_reconnect || url_requests_stateful_reconnect(&hub_url);
        NegotiateRedirects {
            base_url: hub_url,
            access_token: None,
            use_stateful_reconnect,
            requests: 0,
        }
    }

    /// Where to send the next negotiate request.
    pub fn negotiate_url(&self) -> Url {
        negotiate_url(&self.base_url, self.use_stateful_reconnect)
    }

    /// The current hub URL (the user's, or the latest redirect's).
    pub fn base_url(&self) -> &Url {
        &self.base_url
    }

    /// The token of the latest answer that carried one, if any.
    pub fn access_token(&self) -> Option<&str> {
        self.access_token.as_deref()
    }

    /// Whether stateful reconnect is requested (the option, or a URL that asked for it).
    pub fn use_stateful_reconnect(&self) -> bool {
        self.use_stateful_reconnect
    }

    /// How many answers were fed so far (one per negotiate request).
    pub fn requests(&self) -> u32 {
        self.requests
    }

    /// Feeds the answer to the latest request.
    ///
    /// Errors ([`ProtocolError::InvalidNegotiate`]): the server's `error` text as is; a redirect
    /// to a URL that is not an absolute `http`/`https` URL; [`REDIRECT_LIMIT_ERROR`] when the
    /// [`MAX_NEGOTIATE_REQUESTS`]th answer still redirects; [`STATEFUL_RECONNECT_MISMATCH_ERROR`]
    /// when the server enabled stateful reconnect although it was not requested.
    pub fn on_answer(&mut self, answer: NegotiateAnswer) -> Result<NegotiateStep, ProtocolError> {
        self.requests = self.requests.saturating_add(1);
        match answer {
            NegotiateAnswer::Error(text) => Err(ProtocolError::InvalidNegotiate(text)),
            NegotiateAnswer::Redirect { url, access_token } => {
                if let Some(token) = access_token {
                    self.access_token = Some(token);
                }
                let target = Url::parse(&url)
                    .ok()
                    .filter(|u| matches!(u.scheme(), "http" | "https"))
                    .ok_or_else(|| {
                        ProtocolError::InvalidNegotiate(format!(
                            "The negotiate response redirected to '{url}', which is not an absolute http or https URL."
                        ))
                    })?;
                if self.requests >= MAX_NEGOTIATE_REQUESTS {
                    return Err(ProtocolError::InvalidNegotiate(
                        REDIRECT_LIMIT_ERROR.to_owned(),
                    ));
                }
                self.use_stateful_reconnect |= url_requests_stateful_reconnect(&target);
                self.base_url = target;
                Ok(NegotiateStep::Negotiate {
                    url: self.negotiate_url(),
                    access_token: self.access_token.clone(),
                })
            }
            NegotiateAnswer::Connect(response) => {
                response.check_stateful_reconnect(self.use_stateful_reconnect)?;
                if let Some(token) = &response.access_token {
                    self.access_token = Some(token.clone());
                }
                Ok(NegotiateStep::Connect {
                    response,
                    base_url: self.base_url.clone(),
                    access_token: self.access_token.clone(),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use TransferFormat::{Binary, Text};

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    fn default_transports() -> Vec<AvailableTransport> {
        vec![
            AvailableTransport::new("WebSockets", vec![Text, Binary]),
            AvailableTransport::new("ServerSentEvents", vec![Text]),
            AvailableTransport::new("LongPolling", vec![Text, Binary]),
        ]
    }

    const DEFAULT_TRANSPORTS_JSON: &str = r#"[{"transport":"WebSockets","transferFormats":["Text","Binary"]},{"transport":"ServerSentEvents","transferFormats":["Text"]},{"transport":"LongPolling","transferFormats":["Text","Binary"]}]"#;

    /// PROTOCOL.md §1.1 (TS `eachEndpointUrl` and the stateful-reconnect tests), plus edge cases.
    #[test]
    fn negotiate_url_table() {
        let cases = [
            (
                "http://tempuri.org/endpoint/?q=my/Data",
                false,
                "http://tempuri.org/endpoint/negotiate?q=my/Data&negotiateVersion=1",
            ),
            (
                "http://tempuri.org/endpoint?q=my/Data",
                false,
                "http://tempuri.org/endpoint/negotiate?q=my/Data&negotiateVersion=1",
            ),
            (
                "http://tempuri.org/endpoint",
                false,
                "http://tempuri.org/endpoint/negotiate?negotiateVersion=1",
            ),
            (
                "http://tempuri.org/endpoint/",
                false,
                "http://tempuri.org/endpoint/negotiate?negotiateVersion=1",
            ),
            (
                "http://tempuri.org",
                true,
                "http://tempuri.org/negotiate?negotiateVersion=1&useStatefulReconnect=true",
            ),
            (
                "http://tempuri.org?useStatefulReconnect=true",
                false,
                "http://tempuri.org/negotiate?useStatefulReconnect=true&negotiateVersion=1",
            ),
            // Edge cases.
            (
                "http://tempuri.org",
                false,
                "http://tempuri.org/negotiate?negotiateVersion=1",
            ),
            (
                "http://tempuri.org?negotiateVersion=42",
                false,
                "http://tempuri.org/negotiate?negotiateVersion=42",
            ),
            (
                "http://tempuri.org?useStatefulReconnect=true",
                true,
                "http://tempuri.org/negotiate?useStatefulReconnect=true&negotiateVersion=1",
            ),
            (
                "http://tempuri.org?useStatefulReconnect=false",
                true,
                "http://tempuri.org/negotiate?useStatefulReconnect=false&negotiateVersion=1",
            ),
            (
                "https://h.example:8443/a/b?x=1&y=%20z#frag",
                false,
                "https://h.example:8443/a/b/negotiate?x=1&y=%20z&negotiateVersion=1",
            ),
            (
                "http://tempuri.org/hub?",
                false,
                "http://tempuri.org/hub/negotiate?negotiateVersion=1",
            ),
            (
                "http://tempuri.org/hub?myNegotiateVersionX=1",
                false,
                "http://tempuri.org/hub/negotiate?myNegotiateVersionX=1&negotiateVersion=1",
            ),
        ];
        for (hub, stateful, expected) in cases {
            assert_eq!(
                negotiate_url(&url(hub), stateful).as_str(),
                expected,
                "{hub} {stateful}"
            );
        }
    }

    #[test]
    fn url_stateful_request_table() {
        let cases = [
            ("http://tempuri.org", false),
            ("http://tempuri.org?useStatefulReconnect=true", true),
            ("http://tempuri.org?useStatefulReconnect=false", false),
            ("http://tempuri.org?useStatefulReconnect=TRUE", false),
            ("http://tempuri.org?a=1&useStatefulReconnect=true", true),
            ("http://tempuri.org?usestatefulreconnect=true", false),
        ];
        for (hub, expected) in cases {
            assert_eq!(
                url_requests_stateful_reconnect(&url(hub)),
                expected,
                "{hub}"
            );
        }
    }

    #[test]
    fn connect_url_table() {
        let cases = [
            (
                "http://tempuri.org?q=myData",
                Some("42"),
                "http://tempuri.org/?q=myData&id=42",
            ),
            (
                "http://tempuri.org",
                Some("42"),
                "http://tempuri.org/?id=42",
            ),
            (
                "https://another.domain.url/chat",
                Some("abc"),
                "https://another.domain.url/chat?id=abc",
            ),
            (
                "http://example.com/hub#x",
                Some("a b+c/d=é"),
                "http://example.com/hub?id=a%20b%2Bc%2Fd%3D%C3%A9",
            ),
            (
                "http://example.com/hub",
                Some("-_.!~*'()"),
                "http://example.com/hub?id=-_.!~*%27()",
            ),
            (
                "http://example.com/hub?q=1",
                None,
                "http://example.com/hub?q=1",
            ),
        ];
        for (base, id, expected) in cases {
            assert_eq!(
                connect_url(&url(base), id).as_str(),
                expected,
                "{base} {id:?}"
            );
        }
    }

    #[test]
    fn websocket_url_table() {
        let cases = [
            (
                "http://example.com?value=null",
                "ws://example.com/?value=null",
            ),
            (
                "https://example.com?value=null",
                "wss://example.com/?value=null",
            ),
            (
                "http://example.com:5000/chat?id=1",
                "ws://example.com:5000/chat?id=1",
            ),
            ("https://example.com:443/chat", "wss://example.com/chat"),
            ("ws://example.com/chat", "ws://example.com/chat"),
            ("wss://example.com/chat", "wss://example.com/chat"),
        ];
        for (input, expected) in cases {
            assert_eq!(websocket_url(&url(input)).as_str(), expected, "{input}");
        }
    }

    #[test]
    fn access_token_query_table() {
        let cases = [
            (
                "ws://example.com?value=null",
                "secretToken",
                "ws://example.com/?value=null&access_token=secretToken",
            ),
            (
                "http://example.com/sse?id=1",
                "a.b-c_d",
                "http://example.com/sse?id=1&access_token=a.b-c_d",
            ),
            (
                "http://example.com/sse",
                "x y&z=+/",
                "http://example.com/sse?access_token=x%20y%26z%3D%2B%2F",
            ),
        ];
        for (input, token, expected) in cases {
            assert_eq!(
                with_access_token_query(&url(input), token).as_str(),
                expected,
                "{input}"
            );
        }
    }

    #[test]
    fn status_texts() {
        let cases = [
            (204, "", "Unexpected status code returned from negotiate '204'"),
            (202, "ignored", "Unexpected status code returned from negotiate '202'"),
            (200, "", "Unexpected status code returned from negotiate '200'"),
            (500, "We don't care how this turns out", "Failed to complete negotiation with the server: Error: We don't care how this turns out: Status code '500'"),
            (404, "", "Failed to complete negotiation with the server: Error: Not Found: Status code '404' Either this is not a SignalR endpoint or there is a proxy blocking the connection."),
            (404, "nope", "Failed to complete negotiation with the server: Error: nope: Status code '404' Either this is not a SignalR endpoint or there is a proxy blocking the connection."),
            (401, "", "Failed to complete negotiation with the server: Error: Unauthorized: Status code '401'"),
            (999, "", "Failed to complete negotiation with the server: Error: : Status code '999'"),
            (302, "", "Failed to complete negotiation with the server: Error: Found: Status code '302'"),
        ];
        for (status, body, expected) in cases {
            assert_eq!(negotiate_status_error(status, body), expected, "{status}");
            if status != 200 {
                assert_eq!(
                    check_negotiate_status(status, body),
                    Err(expected.to_owned()),
                    "{status}"
                );
            }
        }
        assert_eq!(check_negotiate_status(200, "{}"), Ok(()));
    }

    fn connect(
        id: &str,
        token: &str,
        version: u32,
        transports: Vec<AvailableTransport>,
    ) -> NegotiateAnswer {
        NegotiateAnswer::Connect(NegotiateResponse {
            connection_id: id.to_owned(),
            connection_token: token.to_owned(),
            negotiate_version: version,
            available_transports: transports,
            use_stateful_reconnect: false,
            access_token: None,
        })
    }

    #[test]
    fn parse_valid_answers() {
        let v1 = format!(
            r#"{{"connectionId":"pub","connectionToken":"secret","negotiateVersion":1,"availableTransports":{DEFAULT_TRANSPORTS_JSON}}}"#
        );
        let v0_with_token = format!(
            r#"{{"connectionId":"42","connectionToken":"ignored","negotiateVersion":0,"availableTransports":{DEFAULT_TRANSPORTS_JSON}}}"#
        );
        let no_version =
            r#"{"connectionId":"42","connectionToken":"ignored","availableTransports":[]}"#;
        let stateful = r#"{"connectionId":"a","connectionToken":"b","negotiateVersion":1,"availableTransports":[],"useStatefulReconnect":true}"#;
        let with_token = r#"{"connectionId":"a","availableTransports":[],"accessToken":"tok"}"#;
        let unknowns = r#"{"connectionId":"a","availableTransports":[{"transport":"WebTransport","transferFormats":["Text","Quantum"],"extra":{"deep":[1,2]}}],"futureField":[{"x":null}],"url":null,"error":null}"#;
        let empty_error_and_url =
            r#"{"connectionId":"a","availableTransports":[],"error":"","url":""}"#;
        let negative_version = r#"{"connectionId":"a","connectionToken":"b","negotiateVersion":-3,"availableTransports":[]}"#;
        let high_version = r#"{"connectionId":"a","connectionToken":"b","negotiateVersion":7,"availableTransports":[]}"#;

        let stateful_answer = NegotiateResponse {
            connection_id: "a".to_owned(),
            connection_token: "b".to_owned(),
            negotiate_version: 1,
            available_transports: vec![],
            use_stateful_reconnect: true,
            access_token: None,
        };
        let cases: Vec<(&str, &str, NegotiateAnswer)> = vec![
            ("v1", &v1, connect("pub", "secret", 1, default_transports())),
            (
                "v0 ignores connectionToken",
                &v0_with_token,
                connect("42", "42", 0, default_transports()),
            ),
            (
                "missing version ignores connectionToken",
                no_version,
                connect("42", "42", 0, vec![]),
            ),
            (
                "stateful",
                stateful,
                NegotiateAnswer::Connect(stateful_answer),
            ),
            ("access token", with_token, {
                let NegotiateAnswer::Connect(mut r) = connect("a", "a", 0, vec![]) else {
                    unreachable!()
                };
                r.access_token = Some("tok".to_owned());
                NegotiateAnswer::Connect(r)
            }),
            (
                "unknowns ignored and kept",
                unknowns,
                connect(
                    "a",
                    "a",
                    0,
                    vec![AvailableTransport::new("WebTransport", vec![Text])],
                ),
            ),
            (
                "empty error and url are absent",
                empty_error_and_url,
                connect("a", "a", 0, vec![]),
            ),
            (
                "negative version is 0",
                negative_version,
                connect("a", "a", 0, vec![]),
            ),
            (
                "higher version kept",
                high_version,
                connect("a", "b", 7, vec![]),
            ),
            (
                "redirect",
                r#"{"url":"https://another.domain.url/chat"}"#,
                NegotiateAnswer::Redirect {
                    url: "https://another.domain.url/chat".to_owned(),
                    access_token: None,
                },
            ),
            (
                "redirect with token",
                r#"{"url":"https://x/chat","accessToken":"t2","connectionId":"ignored"}"#,
                NegotiateAnswer::Redirect {
                    url: "https://x/chat".to_owned(),
                    access_token: Some("t2".to_owned()),
                },
            ),
            (
                "redirect with empty token",
                r#"{"url":"https://x/chat","accessToken":""}"#,
                NegotiateAnswer::Redirect {
                    url: "https://x/chat".to_owned(),
                    access_token: None,
                },
            ),
            (
                "error",
                r#"{"error":"Negotiate failed: no room."}"#,
                NegotiateAnswer::Error("Negotiate failed: no room.".to_owned()),
            ),
            (
                "error wins over url and legacy",
                r#"{"error":"e","url":"https://x","ProtocolVersion":"1.5"}"#,
                NegotiateAnswer::Error("e".to_owned()),
            ),
        ];
        for (name, body, expected) in cases {
            assert_eq!(
                parse_negotiate_response(body.as_bytes()),
                Ok(expected),
                "{name}"
            );
        }
    }

    #[test]
    fn parse_invalid_answers() {
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        let deep_field = format!(
            r#"{{"connectionId":"a","availableTransports":[],"x":{}1{}}}"#,
            "[".repeat(5_000),
            "]".repeat(5_000)
        );
        let cases: Vec<(&str, Vec<u8>, &str)> = vec![
            ("legacy", br#"{"Url":"/signalr","ConnectionToken":"X","ConnectionId":"Y","ProtocolVersion":"1.5","TryWebSockets":true}"#.to_vec(), LEGACY_SERVER_ERROR),
            ("legacy beats url", br#"{"ProtocolVersion":"2.0","url":"https://x"}"#.to_vec(), LEGACY_SERVER_ERROR),
            ("no connectionId", br#"{"availableTransports":[]}"#.to_vec(), "Invalid negotiation response received: Missing required property 'connectionId'."),
            ("empty connectionId", br#"{"connectionId":"","availableTransports":[]}"#.to_vec(), "Invalid negotiation response received: Missing required property 'connectionId'."),
            ("no availableTransports", br#"{"connectionId":"42"}"#.to_vec(), "Invalid negotiation response received: Missing required property 'availableTransports'."),
            ("v1 without token", br#"{"connectionId":"42","negotiateVersion":1,"availableTransports":[]}"#.to_vec(), "Invalid negotiation response received: Missing required property 'connectionToken'."),
            ("empty object", b"{}".to_vec(), "Invalid negotiation response received: Missing required property 'connectionId'."),
            ("array", b"[]".to_vec(), "Invalid negotiation response received: expected a JSON object."),
            ("string", br#""hello""#.to_vec(), "Invalid negotiation response received: expected a JSON object."),
            ("null", b"null".to_vec(), "Invalid negotiation response received: expected a JSON object."),
            ("connectionId number", br#"{"connectionId":42,"availableTransports":[]}"#.to_vec(), "Invalid negotiation response received: Expected 'connectionId' to be of type String."),
            ("error number", br#"{"error":500}"#.to_vec(), "Invalid negotiation response received: Expected 'error' to be of type String."),
            ("url object", br#"{"url":{}}"#.to_vec(), "Invalid negotiation response received: Expected 'url' to be of type String."),
            ("version string", br#"{"connectionId":"a","negotiateVersion":"1","availableTransports":[]}"#.to_vec(), "Invalid negotiation response received: Expected 'negotiateVersion' to be an integer."),
            ("version float", br#"{"connectionId":"a","negotiateVersion":1.5,"availableTransports":[]}"#.to_vec(), "Invalid negotiation response received: Expected 'negotiateVersion' to be an integer."),
            ("version huge", br#"{"connectionId":"a","negotiateVersion":99999999999,"availableTransports":[]}"#.to_vec(), "Invalid negotiation response received: Expected 'negotiateVersion' to be an integer."),
            ("stateful string", br#"{"connectionId":"a","availableTransports":[],"useStatefulReconnect":"true"}"#.to_vec(), "Invalid negotiation response received: Expected 'useStatefulReconnect' to be of type Boolean."),
            ("transports object", br#"{"connectionId":"a","availableTransports":{}}"#.to_vec(), "Invalid negotiation response received: Expected 'availableTransports' to be of type Array."),
            ("transport entry string", br#"{"connectionId":"a","availableTransports":["WebSockets"]}"#.to_vec(), "Invalid negotiation response received: Expected each entry of 'availableTransports' to be an object."),
            ("transport name missing", br#"{"connectionId":"a","availableTransports":[{"transferFormats":[]}]}"#.to_vec(), "Invalid negotiation response received: Missing required property 'transport'."),
            ("transport name number", br#"{"connectionId":"a","availableTransports":[{"transport":1,"transferFormats":[]}]}"#.to_vec(), "Invalid negotiation response received: Expected 'transport' to be of type String."),
            ("formats missing", br#"{"connectionId":"a","availableTransports":[{"transport":"LongPolling"}]}"#.to_vec(), "Invalid negotiation response received: Missing required property 'transferFormats'."),
            ("formats string", br#"{"connectionId":"a","availableTransports":[{"transport":"LongPolling","transferFormats":"Text"}]}"#.to_vec(), "Invalid negotiation response received: Expected 'transferFormats' to be of type Array."),
            ("format number", br#"{"connectionId":"a","availableTransports":[{"transport":"LongPolling","transferFormats":[1]}]}"#.to_vec(), "Invalid negotiation response received: Expected each entry of 'transferFormats' to be of type String."),
        ];
        for (name, body, expected) in cases {
            let err = parse_negotiate_response(&body).unwrap_err();
            assert_eq!(
                err,
                ProtocolError::InvalidNegotiate(expected.to_owned()),
                "{name}"
            );
        }

        // Texts from serde_json: only the start is ours.
        let not_json: Vec<&[u8]> = vec![
            b"",
            b"<html>Not Found</html>",
            b"{\"a\":",
            b"\xff\xfe",
            deep.as_bytes(),
            deep_field.as_bytes(),
            b"{} {}",
        ];
        for body in not_json {
            let err = parse_negotiate_response(body).unwrap_err();
            let ProtocolError::InvalidNegotiate(text) = err else {
                panic!("{err:?}")
            };
            assert!(
                text.starts_with(
                    "Invalid negotiation response received: the body is not valid JSON ("
                ),
                "{text}"
            );
        }
    }

    #[test]
    fn stateful_reconnect_check() {
        let NegotiateAnswer::Connect(mut response) = connect("a", "b", 1, vec![]) else {
            unreachable!()
        };
        let cases = [
            // server agreed, client asked, ok
            (true, true, None),
            (
                true,
                false,
                Some("Client didn't negotiate Stateful Reconnect but the server did."),
            ),
            (false, true, None),
            (false, false, None),
        ];
        for (server, client, expected) in cases {
            response.use_stateful_reconnect = server;
            assert_eq!(
                response.check_stateful_reconnect(client),
                match expected {
                    None => Ok(()),
                    Some(text) => Err(ProtocolError::InvalidNegotiate(text.to_owned())),
                },
                "{server} {client}"
            );
        }
    }

    #[test]
    fn redirect_then_connect() {
        // TS test "redirects to url when negotiate returns it" (with accessToken).
        let mut loop_ = NegotiateRedirects::new(url("http://tempuri.org"), false);
        assert_eq!(
            loop_.negotiate_url().as_str(),
            "http://tempuri.org/negotiate?negotiateVersion=1"
        );
        assert_eq!(loop_.access_token(), None);

        let step = loop_
            .on_answer(
                parse_negotiate_response(
                    br#"{"url":"https://another.domain.url/chat","accessToken":"secondToken"}"#,
                )
                .unwrap(),
            )
            .unwrap();
        assert_eq!(
            step,
            NegotiateStep::Negotiate {
                url: url("https://another.domain.url/chat/negotiate?negotiateVersion=1"),
                access_token: Some("secondToken".to_owned()),
            }
        );
        assert_eq!(loop_.base_url().as_str(), "https://another.domain.url/chat");

        let body = format!(
            r#"{{"connectionId":"0rge0d00-0040-0030-0r00-000q00r00e00","availableTransports":{DEFAULT_TRANSPORTS_JSON}}}"#
        );
        let step = loop_
            .on_answer(parse_negotiate_response(body.as_bytes()).unwrap())
            .unwrap();
        let NegotiateStep::Connect {
            response,
            base_url,
            access_token,
        } = step
        else {
            panic!("{step:?}")
        };
        assert_eq!(
            response.connect_url(&base_url).as_str(),
            "https://another.domain.url/chat?id=0rge0d00-0040-0030-0r00-000q00r00e00"
        );
        assert_eq!(access_token.as_deref(), Some("secondToken"));
        assert_eq!(loop_.requests(), 2);
    }

    #[test]
    fn redirect_keeps_query_rules() {
        let mut loop_ =
            NegotiateRedirects::new(url("http://tempuri.org/hub?negotiateVersion=42"), true);
        assert_eq!(
            loop_.negotiate_url().as_str(),
            "http://tempuri.org/hub/negotiate?negotiateVersion=42&useStatefulReconnect=true"
        );
        let cases = [
            ("https://a.example/chat?x=1/2", "https://a.example/chat/negotiate?x=1/2&negotiateVersion=1&useStatefulReconnect=true"),
            ("https://b.example/?negotiateVersion=1", "https://b.example/negotiate?negotiateVersion=1&useStatefulReconnect=true"),
            ("https://c.example/chat?useStatefulReconnect=false", "https://c.example/chat/negotiate?useStatefulReconnect=false&negotiateVersion=1"),
        ];
        for (redirect, expected) in cases {
            let step = loop_
                .on_answer(NegotiateAnswer::Redirect {
                    url: redirect.to_owned(),
                    access_token: None,
                })
                .unwrap();
            assert_eq!(
                step,
                NegotiateStep::Negotiate {
                    url: url(expected),
                    access_token: None
                },
                "{redirect}"
            );
        }
    }

    #[test]
    fn redirect_url_can_turn_stateful_on() {
        let mut loop_ = NegotiateRedirects::new(url("http://tempuri.org"), false);
        assert!(!loop_.use_stateful_reconnect());
        loop_
            .on_answer(NegotiateAnswer::Redirect {
                url: "https://x.example/chat?useStatefulReconnect=true".to_owned(),
                access_token: None,
            })
            .unwrap();
        assert!(loop_.use_stateful_reconnect());
        let NegotiateAnswer::Connect(mut response) = connect("a", "b", 1, vec![]) else {
            unreachable!()
        };
        response.use_stateful_reconnect = true;
        assert!(matches!(
            loop_.on_answer(NegotiateAnswer::Connect(response)),
            Ok(NegotiateStep::Connect { .. })
        ));

        let from_user_url =
            NegotiateRedirects::new(url("http://tempuri.org?useStatefulReconnect=true"), false);
        assert!(from_user_url.use_stateful_reconnect());
    }

    #[test]
    fn loop_errors() {
        let NegotiateAnswer::Connect(mut stateful) = connect("a", "b", 1, vec![]) else {
            unreachable!()
        };
        stateful.use_stateful_reconnect = true;
        let cases = [
            (NegotiateAnswer::Error("Refused.".to_owned()), "Refused."),
            (NegotiateAnswer::Connect(stateful), "Client didn't negotiate Stateful Reconnect but the server did."),
            (
                NegotiateAnswer::Redirect { url: "/relative".to_owned(), access_token: None },
                "The negotiate response redirected to '/relative', which is not an absolute http or https URL.",
            ),
            (
                NegotiateAnswer::Redirect { url: "ftp://x.example/".to_owned(), access_token: None },
                "The negotiate response redirected to 'ftp://x.example/', which is not an absolute http or https URL.",
            ),
        ];
        for (answer, expected) in cases {
            let mut loop_ = NegotiateRedirects::new(url("http://tempuri.org"), false);
            assert_eq!(
                loop_.on_answer(answer),
                Err(ProtocolError::InvalidNegotiate(expected.to_owned()))
            );
        }
    }

    #[test]
    fn redirect_limit() {
        let redirect = || NegotiateAnswer::Redirect {
            url: "https://loop.example/chat".to_owned(),
            access_token: None,
        };
        // 99 redirects are fine, and the 100th request may still connect.
        let mut loop_ = NegotiateRedirects::new(url("http://tempuri.org"), false);
        for _ in 0..99 {
            assert!(matches!(
                loop_.on_answer(redirect()),
                Ok(NegotiateStep::Negotiate { .. })
            ));
        }
        assert_eq!(loop_.requests(), 99);
        assert!(matches!(
            loop_.on_answer(connect("a", "a", 0, vec![])),
            Ok(NegotiateStep::Connect { .. })
        ));

        // The 100th answer redirecting fails.
        let mut loop_ = NegotiateRedirects::new(url("http://tempuri.org"), false);
        for _ in 0..99 {
            loop_.on_answer(redirect()).unwrap();
        }
        assert_eq!(
            loop_.on_answer(redirect()),
            Err(ProtocolError::InvalidNegotiate(
                "Negotiate redirection limit exceeded.".to_owned()
            ))
        );
        assert_eq!(loop_.requests(), MAX_NEGOTIATE_REQUESTS);
    }

    #[test]
    fn token_sticks_until_replaced() {
        let mut loop_ = NegotiateRedirects::new(url("http://tempuri.org"), false);
        let steps = [
            (Some("first"), Some("first")),
            (None, Some("first")),
            (Some("second"), Some("second")),
        ];
        for (sent, expected) in steps {
            let step = loop_
                .on_answer(NegotiateAnswer::Redirect {
                    url: "https://x.example/chat".to_owned(),
                    access_token: sent.map(str::to_owned),
                })
                .unwrap();
            let NegotiateStep::Negotiate { access_token, .. } = step else {
                panic!()
            };
            assert_eq!(access_token.as_deref(), expected);
        }
        let NegotiateAnswer::Connect(mut response) = connect("a", "a", 0, vec![]) else {
            unreachable!()
        };
        response.access_token = Some("third".to_owned());
        let NegotiateStep::Connect { access_token, .. } =
            loop_.on_answer(NegotiateAnswer::Connect(response)).unwrap()
        else {
            panic!()
        };
        assert_eq!(access_token.as_deref(), Some("third"));
    }
}
