//! `hublink-ffi`: the core's binding contract over uniffi, for Kotlin and Swift.
//!
//! Everything here is conversion: options as a record, values as [`HubValue`] (uniffi carries
//! no tuple maps), errors as [`HubError`] (one variant per [`ErrorKind`]), handlers and the
//! access-token factory as foreign traits. The protocol, the calls' order, the runtime and the
//! reconnect logic are the core's. Calls are submitted when `invoke`/`send` is called (so they
//! reach the server in the caller's order); their outcome is awaited on the returned
//! [`PendingCall`]. Foreign callbacks return `Result`, so a foreign exception is an error
//! here, never a panic, and a value the protocol cannot carry is a `HubError`.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hublink::{
    Argument, Arguments, BoxFuture, DefaultRetryPolicy, ErrorKind, Handler, HandlerId,
    HandlerOutcome, HubProtocol, Payload, Timestamp, UploadStream, Value,
};

uniffi::setup_scaffolding!();

mod raw;

// ---------------------------------------------------------------------------------------------
// Errors

/// A failure, by the core's [`ErrorKind`]: the core's text and, when an HTTP answer caused
/// it, the HTTP status.
#[derive(Debug, thiserror::Error, uniffi::Error)]
pub enum HubError {
    #[error("{reason}")]
    Negotiation { reason: String, status: Option<u16> },
    #[error("{reason}")]
    Transport { reason: String, status: Option<u16> },
    #[error("{reason}")]
    Handshake { reason: String, status: Option<u16> },
    #[error("{reason}")]
    Timeout { reason: String, status: Option<u16> },
    #[error("{reason}")]
    Hub { reason: String, status: Option<u16> },
    #[error("{reason}")]
    ConnectionClosed { reason: String, status: Option<u16> },
    #[error("{reason}")]
    InvalidState { reason: String, status: Option<u16> },
    #[error("{reason}")]
    InvalidArgument { reason: String, status: Option<u16> },
    #[error("{reason}")]
    Protocol { reason: String, status: Option<u16> },
    #[error("{reason}")]
    Cancelled { reason: String, status: Option<u16> },
    /// A kind this binding does not know yet (the core may add kinds).
    #[error("{reason}")]
    Other { reason: String, status: Option<u16> },
}

impl From<hublink::Error> for HubError {
    fn from(e: hublink::Error) -> Self {
        let (reason, status) = (e.to_string(), e.status());
        match e.kind() {
            ErrorKind::Negotiation => HubError::Negotiation { reason, status },
            ErrorKind::Transport => HubError::Transport { reason, status },
            ErrorKind::Handshake => HubError::Handshake { reason, status },
            ErrorKind::Timeout => HubError::Timeout { reason, status },
            ErrorKind::Hub => HubError::Hub { reason, status },
            ErrorKind::ConnectionClosed => HubError::ConnectionClosed { reason, status },
            ErrorKind::InvalidState => HubError::InvalidState { reason, status },
            ErrorKind::InvalidArgument => HubError::InvalidArgument { reason, status },
            ErrorKind::Protocol => HubError::Protocol { reason, status },
            ErrorKind::Cancelled => HubError::Cancelled { reason, status },
            _ => HubError::Other { reason, status },
        }
    }
}

fn invalid_argument(reason: impl Into<String>) -> HubError {
    HubError::InvalidArgument {
        reason: reason.into(),
        status: None,
    }
}

fn invalid_state(reason: impl Into<String>) -> HubError {
    HubError::InvalidState {
        reason: reason.into(),
        status: None,
    }
}

/// What a foreign callback (a handler, the access-token provider) throws.
#[derive(Debug, thiserror::Error, uniffi::Error)]
pub enum CallbackError {
    /// The callback failed; the text goes to the server (a client result) or fails the
    /// connection attempt (the access token).
    #[error("{reason}")]
    Failed { reason: String },
}

impl From<uniffi::UnexpectedUniFFICallbackError> for CallbackError {
    fn from(e: uniffi::UnexpectedUniFFICallbackError) -> Self {
        CallbackError::Failed { reason: e.reason }
    }
}

// ---------------------------------------------------------------------------------------------
// Values

/// One entry of a [`HubValue::Map`], in the order received or built.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct MapEntry {
    pub key: HubValue,
    pub value: HubValue,
}

/// A hub value: the core's `Value`, with maps as entry lists.
#[derive(Debug, Clone, PartialEq, uniffi::Enum)]
pub enum HubValue {
    Null,
    Bool {
        value: bool,
    },
    /// A signed integer (negative numbers, and what fits in 64 signed bits).
    Int64 {
        value: i64,
    },
    /// An unsigned integer above `i64::MAX`.
    UInt64 {
        value: u64,
    },
    Float32 {
        value: f32,
    },
    Float64 {
        value: f64,
    },
    Text {
        value: String,
    },
    /// MessagePack `bin`; base64 text in JSON.
    Bytes {
        value: Vec<u8>,
    },
    Array {
        items: Vec<HubValue>,
    },
    Map {
        entries: Vec<MapEntry>,
    },
    /// Seconds since the Unix epoch and nanoseconds (below 10⁹) within that second.
    Timestamp {
        seconds: i64,
        nanoseconds: u32,
    },
    /// Any other MessagePack extension type.
    Extension {
        type_code: i8,
        data: Vec<u8>,
    },
}

impl From<Value> for HubValue {
    fn from(v: Value) -> Self {
        match v {
            Value::Null => HubValue::Null,
            Value::Bool(value) => HubValue::Bool { value },
            Value::Int(value) => HubValue::Int64 { value },
            Value::UInt(value) => HubValue::UInt64 { value },
            Value::F32(value) => HubValue::Float32 { value },
            Value::F64(value) => HubValue::Float64 { value },
            Value::String(value) => HubValue::Text { value },
            Value::Binary(value) => HubValue::Bytes { value },
            Value::Array(items) => HubValue::Array {
                items: items.into_iter().map(HubValue::from).collect(),
            },
            Value::Map(entries) => HubValue::Map {
                entries: entries
                    .into_iter()
                    .map(|(k, v)| MapEntry {
                        key: k.into(),
                        value: v.into(),
                    })
                    .collect(),
            },
            Value::Timestamp(t) => HubValue::Timestamp {
                seconds: t.seconds(),
                nanoseconds: t.nanoseconds(),
            },
            Value::Extension(type_code, data) => HubValue::Extension { type_code, data },
        }
    }
}

impl TryFrom<HubValue> for Value {
    type Error = HubError;

    fn try_from(v: HubValue) -> Result<Self, HubError> {
        Ok(match v {
            HubValue::Null => Value::Null,
            HubValue::Bool { value } => Value::Bool(value),
            HubValue::Int64 { value } => Value::Int(value),
            HubValue::UInt64 { value } => Value::from_u64(value),
            HubValue::Float32 { value } => Value::F32(value),
            HubValue::Float64 { value } => Value::F64(value),
            HubValue::Text { value } => Value::String(value),
            HubValue::Bytes { value } => Value::Binary(value),
            HubValue::Array { items } => Value::Array(
                items
                    .into_iter()
                    .map(Value::try_from)
                    .collect::<Result<_, _>>()?,
            ),
            HubValue::Map { entries } => Value::Map(
                entries
                    .into_iter()
                    .map(|e| Ok((Value::try_from(e.key)?, Value::try_from(e.value)?)))
                    .collect::<Result<_, HubError>>()?,
            ),
            HubValue::Timestamp {
                seconds,
                nanoseconds,
            } => Value::Timestamp(Timestamp::new(seconds, nanoseconds).ok_or_else(|| {
                invalid_argument(format!(
                    "a timestamp's nanoseconds must be below 1000000000, not {nanoseconds}"
                ))
            })?),
            HubValue::Extension { type_code, data } => Value::Extension(type_code, data),
        })
    }
}

fn to_values(values: Vec<HubValue>) -> Result<Vec<Value>, HubError> {
    values.into_iter().map(Value::try_from).collect()
}

fn from_values(values: Vec<Value>) -> Vec<HubValue> {
    values.into_iter().map(HubValue::from).collect()
}

// ---------------------------------------------------------------------------------------------
// Options

/// Every option of a connection; `None` keeps the official clients' default.
#[derive(Debug, Clone, uniffi::Record)]
pub struct ConnectionOptions {
    pub url: String,
    /// Transport names ("WebSockets", "ServerSentEvents", "LongPolling", any case, or a
    /// number as the official clients' flags); empty: all of them.
    #[uniffi(default)]
    pub transports: Vec<String>,
    /// "json" (the default) or "messagepack".
    #[uniffi(default = "json")]
    pub protocol: String,
    #[uniffi(default)]
    pub headers: HashMap<String, String>,
    #[uniffi(default = false)]
    pub skip_negotiation: bool,
    /// Automatic reconnect: `None` never reconnects; an empty list uses the official
    /// clients' delays (0, 2, 10, 30 s); otherwise these delays in milliseconds, one per
    /// attempt.
    #[uniffi(default = None)]
    pub reconnect_delays_ms: Option<Vec<u64>>,
    #[uniffi(default = false)]
    pub stateful_reconnect: bool,
    #[uniffi(default = None)]
    pub server_timeout_ms: Option<u64>,
    #[uniffi(default = None)]
    pub keep_alive_interval_ms: Option<u64>,
    #[uniffi(default = None)]
    pub handshake_timeout_ms: Option<u64>,
    #[uniffi(default = None)]
    pub http_timeout_ms: Option<u64>,
    #[uniffi(default = None)]
    pub max_message_size: Option<u64>,
    /// Extra trusted root certificates (PEM), next to the operating system's, for negotiate
    /// and every transport.
    #[uniffi(default)]
    pub root_certificates_pem: Vec<String>,
    /// A client certificate chain (PEM, leaf first), with `client_key_pem`.
    #[uniffi(default = None)]
    pub client_certificate_pem: Option<String>,
    /// The client certificate's private key (PEM).
    #[uniffi(default = None)]
    pub client_key_pem: Option<String>,
    /// DANGEROUS: accepts any server certificate. For tests only.
    #[uniffi(default = false)]
    pub danger_accept_invalid_certs: bool,
    /// An HTTP proxy (`http://[user:password@]host:port`) for negotiate and every transport
    /// (the WebSocket through `CONNECT`); `None`: the environment's (`HTTP_PROXY`,
    /// `HTTPS_PROXY`, `NO_PROXY`) unless `no_proxy_at_all`.
    #[uniffi(default = None)]
    pub proxy_url: Option<String>,
    /// With `proxy_url`: the hosts reached without it (`NO_PROXY` syntax).
    #[uniffi(default = "")]
    pub proxy_bypass: String,
    /// No proxy, whatever the environment says (ignored with `proxy_url`).
    #[uniffi(default = false)]
    pub no_proxy_at_all: bool,
}

/// Produces the bearer token for each connection attempt (each negotiate, so each
/// reconnect too); `None` sends no token, an error fails the attempt with its text.
#[uniffi::export(foreign)]
#[async_trait::async_trait]
pub trait AccessTokenProvider: Send + Sync {
    async fn token(&self) -> Result<Option<String>, CallbackError>;
}

fn core_options(
    o: ConnectionOptions,
    token: Option<Arc<dyn AccessTokenProvider>>,
) -> Result<hublink::ConnectionOptions, HubError> {
    let ms = Duration::from_millis;
    let mut c = hublink::ConnectionOptions::new(o.url);
    if !o.transports.is_empty() {
        c.transports = hublink::parse_transports(o.transports)?;
    }
    c.protocol = match o.protocol.to_ascii_lowercase().as_str() {
        "json" => HubProtocol::Json,
        "messagepack" => HubProtocol::MessagePack,
        other => return Err(invalid_argument(format!("unknown protocol '{other}'"))),
    };
    c.headers = o.headers.into_iter().collect();
    c.skip_negotiation = o.skip_negotiation;
    c.retry_policy = o.reconnect_delays_ms.map(|delays| {
        Arc::new(if delays.is_empty() {
            DefaultRetryPolicy::default()
        } else {
            DefaultRetryPolicy::with_delays(delays.into_iter().map(ms))
        }) as Arc<dyn hublink::RetryPolicy>
    });
    c.stateful_reconnect = o.stateful_reconnect;
    if let Some(v) = o.server_timeout_ms {
        c.server_timeout = ms(v);
    }
    if let Some(v) = o.keep_alive_interval_ms {
        c.keep_alive_interval = ms(v);
    }
    if let Some(v) = o.handshake_timeout_ms {
        c.handshake_timeout = ms(v);
    }
    if let Some(v) = o.http_timeout_ms {
        c.http_timeout = ms(v);
    }
    if let Some(v) = o.max_message_size {
        c.max_message_size = usize::try_from(v)
            .map_err(|_| invalid_argument("max_message_size does not fit this platform"))?;
    }
    c.tls_root_certificates_pem = o.root_certificates_pem;
    c.tls_client_certificate_pem = match (o.client_certificate_pem, o.client_key_pem) {
        (Some(chain), Some(key)) => Some((chain, key)),
        (None, None) => None,
        _ => {
            return Err(invalid_argument(
                "a client certificate needs both its chain and its key",
            ))
        }
    };
    c.danger_accept_invalid_certs = o.danger_accept_invalid_certs;
    c.proxy = match o.proxy_url {
        Some(url) => hublink::Proxy::Url {
            url,
            no_proxy: o.proxy_bypass,
        },
        None if o.no_proxy_at_all => hublink::Proxy::Disabled,
        None => hublink::Proxy::FromEnvironment,
    };
    if let Some(provider) = token {
        c.access_token_factory = Some(Arc::new(move || {
            let provider = provider.clone();
            Box::pin(async move { provider.token().await.map_err(|e| e.to_string()) })
        }));
    }
    Ok(c)
}

// ---------------------------------------------------------------------------------------------
// Handlers

/// A client method: called with the invocation's arguments. What it returns answers the
/// server's client-result requests when it was registered with `returns_result`; what it
/// throws goes back to the server as the error.
#[uniffi::export(foreign)]
#[async_trait::async_trait]
pub trait HubHandler: Send + Sync {
    async fn call(&self, arguments: Vec<HubValue>) -> Result<HubValue, CallbackError>;
}

struct ForeignHandler {
    handler: Arc<dyn HubHandler>,
    returns_result: bool,
}

impl Handler for ForeignHandler {
    fn call(&self, arguments: Arguments) -> BoxFuture<'static, HandlerOutcome> {
        let handler = self.handler.clone();
        let returns_result = self.returns_result;
        Box::pin(async move {
            let values = match arguments.values() {
                Ok(values) => from_values(values),
                Err(e) => return HandlerOutcome::Failed(e.to_string()),
            };
            match handler.call(values).await {
                Err(e) => HandlerOutcome::Failed(e.to_string()),
                Ok(value) if returns_result => match Value::try_from(value) {
                    Ok(v) => HandlerOutcome::Result(Payload::Value(v)),
                    Err(e) => HandlerOutcome::Failed(e.to_string()),
                },
                Ok(_) => HandlerOutcome::NoResult,
            }
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Calls, streams, uploads, events

type CallFuture = Pin<Box<dyn Future<Output = Result<Value, hublink::Error>> + Send>>;

/// A submitted call; `result()` awaits its outcome (once).
#[derive(uniffi::Object)]
pub struct PendingCall {
    outcome: Mutex<Option<CallFuture>>,
}

#[uniffi::export(async_runtime = "tokio")]
impl PendingCall {
    /// The call's result (`Null` for `send`, once written). A second call fails.
    pub async fn result(&self) -> Result<HubValue, HubError> {
        let outcome = self.outcome.lock().expect("pending call").take();
        match outcome {
            Some(outcome) => Ok(outcome.await?.into()),
            None => Err(invalid_state("the call's result was already taken")),
        }
    }
}

/// Receives the outcomes of the calls submitted with [`HubConnection::invoke_with`] and
/// [`HubConnection::send_with`], by the id the caller gave them: one upcall per call, made on
/// the connection's task (or on the submitting thread when the call could not be submitted), so
/// it must be quick and must not block. What it returns or throws is ignored.
#[uniffi::export(foreign)]
pub trait CallSink: Send + Sync {
    /// Call `id` succeeded with `value` (`Null` for a void method, and for a written send).
    fn resolve(&self, id: u64, value: HubValue) -> Result<(), CallbackError>;
    /// Call `id` failed.
    fn reject(&self, id: u64, error: HubError) -> Result<(), CallbackError>;
}

fn complete(sink: &dyn CallSink, id: u64, outcome: Result<Value, hublink::Error>) {
    // A failing sink has nowhere to report to; the call is over either way.
    let _ = match outcome {
        Ok(value) => sink.resolve(id, value.into()),
        Err(error) => sink.reject(id, error.into()),
    };
}

/// A client-to-server stream: pass it to a call in `uploads`, then `send` items and
/// `complete()` (or `fail`). It can be passed to one call only.
#[derive(uniffi::Object)]
pub struct UploadSender {
    sender: hublink::UploadSender,
    stream: Mutex<Option<UploadStream>>,
}

#[uniffi::export(async_runtime = "tokio")]
impl UploadSender {
    #[uniffi::constructor]
    pub fn new() -> Arc<Self> {
        let (stream, sender) = UploadStream::channel();
        Arc::new(UploadSender {
            sender,
            stream: Mutex::new(Some(stream)),
        })
    }

    /// Sends one item; waits while the connection has not taken the ones before.
    pub async fn send(&self, item: HubValue) -> Result<(), HubError> {
        Ok(self.sender.send(Value::try_from(item)?).await?)
    }

    /// Ends the upload; the server receives its completion.
    pub fn complete(&self) {
        self.sender.complete();
    }

    /// Ends the upload with an error the server receives as the stream's error.
    pub fn fail(&self, reason: String) {
        self.sender.fail(reason);
    }
}

/// A server-to-client stream, read in batches; `cancel()` ends it (also a waiting read).
#[derive(uniffi::Object)]
pub struct HubStream {
    items: tokio::sync::Mutex<hublink::HubStream<Value>>,
    cancel: hublink::StreamCancel,
}

#[uniffi::export(async_runtime = "tokio")]
impl HubStream {
    /// Up to `max` items, waiting for at least one; empty once the stream has ended.
    pub async fn next_batch(&self, max: u32) -> Result<Vec<HubValue>, HubError> {
        let max = usize::try_from(max.max(1)).unwrap_or(usize::MAX);
        let mut items = self.items.lock().await;
        Ok(from_values(items.next_batch(max).await?))
    }

    /// Cancels the stream on the server; reads end.
    pub fn cancel(&self) {
        self.cancel.cancel();
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum HubEventKind {
    Closed,
    Reconnecting,
    Reconnected,
}

/// A lifecycle event; `error` for `Closed` (none after `stop()`) and `Reconnecting`, the new
/// connection id for `Reconnected`.
#[derive(Debug, uniffi::Record)]
pub struct HubEvent {
    pub kind: HubEventKind,
    pub error: Option<HubError>,
    pub connection_id: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// The connection

/// The core's connection with [`HubValue`]s.
#[derive(uniffi::Object)]
pub struct HubConnection {
    core: hublink::HubConnection,
    events: tokio::sync::Mutex<hublink::ConnectionEvents>,
    sink: std::sync::OnceLock<Arc<dyn CallSink>>,
    raw_calls: std::sync::OnceLock<u64>,
}

impl Drop for HubConnection {
    fn drop(&mut self) {
        if let Some(&channel) = self.raw_calls.get() {
            raw::close(channel);
        }
    }
}

fn arguments(
    args: Vec<HubValue>,
    uploads: Vec<Arc<UploadSender>>,
) -> Result<Vec<Argument>, HubError> {
    let mut out: Vec<Argument> = to_values(args)?
        .into_iter()
        .map(|v| Argument::Value(Payload::Value(v)))
        .collect();
    for upload in uploads {
        let stream = upload.stream.lock().expect("upload").take();
        out.push(Argument::Stream(stream.ok_or_else(|| {
            invalid_state("an upload stream can be passed to one call only")
        })?));
    }
    Ok(out)
}

#[uniffi::export(async_runtime = "tokio")]
impl HubConnection {
    #[uniffi::constructor]
    pub fn new(
        options: ConnectionOptions,
        access_token: Option<Arc<dyn AccessTokenProvider>>,
    ) -> Result<Arc<Self>, HubError> {
        let core = hublink::HubConnection::new(core_options(options, access_token)?)?;
        let events = tokio::sync::Mutex::new(core.events());
        Ok(Arc::new(HubConnection {
            core,
            events,
            sink: std::sync::OnceLock::new(),
            raw_calls: std::sync::OnceLock::new(),
        }))
    }

    pub async fn start(&self) -> Result<(), HubError> {
        Ok(self.core.start().await?)
    }

    pub async fn stop(&self) -> Result<(), HubError> {
        Ok(self.core.stop().await?)
    }

    /// Submits an invocation now; `result()` on the answer awaits the server's result.
    pub fn invoke(
        &self,
        method: String,
        args: Vec<HubValue>,
        uploads: Vec<Arc<UploadSender>>,
    ) -> Result<Arc<PendingCall>, HubError> {
        let outcome = self.core.invoke_value(&method, arguments(args, uploads)?);
        Ok(Arc::new(PendingCall {
            outcome: Mutex::new(Some(Box::pin(outcome))),
        }))
    }

    /// Submits a send now; `result()` on the answer awaits its writing (`Null`).
    pub fn send(
        &self,
        method: String,
        args: Vec<HubValue>,
        uploads: Vec<Arc<UploadSender>>,
    ) -> Result<Arc<PendingCall>, HubError> {
        let written = self.core.send(&method, arguments(args, uploads)?);
        Ok(Arc::new(PendingCall {
            outcome: Mutex::new(Some(Box::pin(async move {
                written.await.map(|()| Value::Null)
            }))),
        }))
    }

    /// Sets the sink that [`invoke_with`](Self::invoke_with) and [`send_with`](Self::send_with)
    /// report to (once; a second sink is an error).
    pub fn set_call_sink(&self, sink: Arc<dyn CallSink>) -> Result<(), HubError> {
        self.sink
            .set(sink)
            .map_err(|_| invalid_state("the connection's call sink is already set"))
    }

    fn call_sink(&self) -> Result<Arc<dyn CallSink>, HubError> {
        self.sink
            .get()
            .cloned()
            .ok_or_else(|| invalid_state("the connection has no call sink (set_call_sink)"))
    }

    /// Submits an invocation now; its outcome goes to the call sink as call `id` (one upcall,
    /// no object or future per call). An error here means it was not submitted and the sink
    /// hears nothing of it.
    pub fn invoke_with(
        &self,
        id: u64,
        method: String,
        args: Vec<HubValue>,
        uploads: Vec<Arc<UploadSender>>,
    ) -> Result<(), HubError> {
        let sink = self.call_sink()?;
        let arguments = arguments(args, uploads)?;
        self.core.invoke_then(&method, arguments, move |outcome| {
            complete(&*sink, id, outcome)
        });
        Ok(())
    }

    /// Submits a send now; the call sink hears of call `id` (`Null`) once it is written, as
    /// for [`invoke_with`](Self::invoke_with).
    pub fn send_with(
        &self,
        id: u64,
        method: String,
        args: Vec<HubValue>,
        uploads: Vec<Arc<UploadSender>>,
    ) -> Result<(), HubError> {
        let sink = self.call_sink()?;
        let arguments = arguments(args, uploads)?;
        self.core.send_then(&method, arguments, move |outcome| {
            complete(&*sink, id, outcome.map(|()| Value::Null))
        });
        Ok(())
    }

    /// The id of this connection's channel for the plain C functions `hublink_raw_call` and
    /// `hublink_raw_next_outcomes` (see `raw.rs`): calls without uniffi's per-call structures,
    /// for the Kotlin layer's hot path. The same id every time; the channel closes with this
    /// object (or with `hublink_raw_close`).
    pub fn open_raw_calls(&self) -> u64 {
        *self.raw_calls.get_or_init(|| raw::open(self.core.clone()))
    }

    /// Submits a streaming invocation now.
    pub fn stream(
        &self,
        method: String,
        args: Vec<HubValue>,
        uploads: Vec<Arc<UploadSender>>,
    ) -> Result<Arc<HubStream>, HubError> {
        let items = self.core.stream_value(&method, arguments(args, uploads)?)?;
        let cancel = items.cancel_handle();
        Ok(Arc::new(HubStream {
            items: tokio::sync::Mutex::new(items),
            cancel,
        }))
    }

    /// Registers `handler` for `method` (any case); the id removes it again.
    pub fn on(&self, method: String, handler: Arc<dyn HubHandler>, returns_result: bool) -> u64 {
        let handler = ForeignHandler {
            handler,
            returns_result,
        };
        self.core.add_handler(&method, Arc::new(handler)).as_u64()
    }

    pub fn remove_handler(&self, id: u64) -> bool {
        self.core.remove_handler(HandlerId::from_u64(id))
    }

    /// Removes every handler of `method`.
    pub fn off(&self, method: String) {
        self.core.off(&method);
    }

    /// The next lifecycle event, waiting for it; `None` once the connection is gone.
    pub async fn next_event(&self) -> Option<HubEvent> {
        let event = self.events.lock().await.next().await?;
        let kind = match event.name() {
            "close" => HubEventKind::Closed,
            "reconnecting" => HubEventKind::Reconnecting,
            _ => HubEventKind::Reconnected,
        };
        Some(HubEvent {
            kind,
            error: event.error().cloned().map(HubError::from),
            connection_id: event.connection_id().map(str::to_owned),
        })
    }

    /// "Disconnected", "Connecting", "Connected", "Disconnecting" or "Reconnecting".
    pub fn state(&self) -> String {
        self.core.state().to_string()
    }

    pub fn connection_id(&self) -> Option<String> {
        self.core.connection_id()
    }

    /// "WebSockets", "ServerSentEvents" or "LongPolling" while connected.
    pub fn transport(&self) -> Option<String> {
        self.core.transport().map(|t| t.to_string())
    }

    /// "json" or "messagepack".
    pub fn protocol(&self) -> String {
        self.core.protocol().name().to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip() {
        let value = Value::Map(vec![
            (
                Value::String("a".into()),
                Value::Array(vec![Value::Int(-1), Value::UInt(u64::MAX)]),
            ),
            (Value::Int(2), Value::Binary(vec![1, 2])),
            (Value::Bool(true), Value::F32(0.5)),
            (Value::Null, Value::Timestamp(Timestamp::new(1, 2).unwrap())),
            (Value::F64(1.5), Value::Extension(-3, vec![9])),
        ]);
        assert_eq!(
            Value::try_from(HubValue::from(value.clone())).unwrap(),
            value
        );
        // A small unsigned number is an Int, as the core builds it.
        assert_eq!(
            Value::try_from(HubValue::UInt64 { value: 7 }).unwrap(),
            Value::Int(7)
        );
    }

    #[test]
    fn a_bad_value_is_an_error() {
        let bad = HubValue::Array {
            items: vec![HubValue::Timestamp {
                seconds: 0,
                nanoseconds: 1_000_000_000,
            }],
        };
        assert!(matches!(
            Value::try_from(bad),
            Err(HubError::InvalidArgument { .. })
        ));
    }

    #[test]
    fn options_are_checked_by_the_core() {
        let options = |transports: Vec<&str>, protocol: &str| ConnectionOptions {
            url: "http://localhost/hub".into(),
            transports: transports.into_iter().map(String::from).collect(),
            protocol: protocol.into(),
            headers: HashMap::new(),
            skip_negotiation: false,
            reconnect_delays_ms: Some(vec![0, 10]),
            stateful_reconnect: false,
            server_timeout_ms: Some(1000),
            keep_alive_interval_ms: None,
            handshake_timeout_ms: None,
            http_timeout_ms: None,
            max_message_size: None,
            root_certificates_pem: Vec::new(),
            client_certificate_pem: None,
            client_key_pem: None,
            danger_accept_invalid_certs: false,
            proxy_url: Some("http://proxy.example:3128".into()),
            proxy_bypass: "localhost".into(),
            no_proxy_at_all: false,
        };
        let core = core_options(options(vec!["websockets"], "MessagePack"), None).unwrap();
        assert_eq!(core.protocol, HubProtocol::MessagePack);
        assert_eq!(
            core.proxy,
            hublink::Proxy::Url {
                url: "http://proxy.example:3128".into(),
                no_proxy: "localhost".into()
            }
        );
        let mut key_alone = options(vec![], "json");
        key_alone.client_key_pem = Some("a key without its chain".into());
        let error = core_options(key_alone, None).unwrap_err();
        assert!(
            matches!(error, HubError::InvalidArgument { .. }),
            "{error:?}"
        );
        assert_eq!(core.server_timeout, Duration::from_secs(1));
        assert!(core.retry_policy.is_some());
        let error = core_options(options(vec!["carrier-pigeon"], "json"), None).unwrap_err();
        assert!(
            matches!(error, HubError::InvalidArgument { .. }),
            "{error:?}"
        );
        let error = core_options(options(vec![], "xml"), None).unwrap_err();
        assert!(
            matches!(error, HubError::InvalidArgument { .. }),
            "{error:?}"
        );
        let mut bad_url = options(vec![], "json");
        bad_url.url = "ftp://x/hub".into();
        let error = HubConnection::new(bad_url, None);
        assert!(matches!(error, Err(HubError::InvalidArgument { .. })));
    }
}
