//! `HubConnection`: the handle users hold, and the one surface every binding wraps.

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt;
use serde::de::DeserializeOwned;
use tokio::sync::{mpsc, oneshot};
use tracing::Span;
use url::Url;

use super::arguments::{IntoArguments, UploadStream};
use super::call_trace::{self, CallTraceTarget};
use super::driver::{send_message, Command, NOT_CONNECTED};
use super::events::{ConnectionEvent, ConnectionEvents};
use super::handlers::{erase, Handler, HandlerId, HandlerOutput};
use super::lifecycle::{self, Behaviour, HubConnectionState, Shared};
use super::stream::{self, HubStream};
use crate::connect::{without_query, ConnectOptions};
use crate::error::{Error, Result};
use crate::http::HttpOptions;
use crate::maybe_send::{MaybeSend, MaybeSync};
use crate::options::ConnectionOptions;
use crate::protocol::hub_protocol::CallWriter;
use crate::protocol::invocations::CONNECTION_CLOSED;
use crate::protocol::transports::TransportKind;
use crate::protocol::{
    Completion, CompletionOutcome, HubMessage, HubProtocol, Payload, StreamItem, Value,
};
use crate::reply::{Reply, ReplyFn};
use crate::runtime;

/// An upload stream with the stream id it was given.
type Upload = (String, UploadStream);

/// A connection to a SignalR hub. Cheap to clone; all clones drive the same connection.
///
/// ```no_run
/// # async fn demo() -> hublink::Result<()> {
/// use hublink::HubConnectionBuilder;
/// let connection = HubConnectionBuilder::new()
///     .with_url("http://localhost:5000/chat")
///     .build()?;
/// connection.on("ReceiveMessage", |(user, text): (String, String)| async move {
///     println!("{user}: {text}");
/// });
/// connection.start().await?;
/// connection.send("SendMessage", ("me", "hello")).await?;
/// let echoed: String = connection.invoke("Echo", ("hi",)).await?;
/// connection.stop().await?;
/// # Ok(()) }
/// ```
///
/// # Calls are submitted when they are made
///
/// [`invoke`](Self::invoke), [`send`](Self::send) and [`stream`](Self::stream) hand their
/// call to the connection before they return, as the official JavaScript client does: calls
/// made one after another reach the server in that order, whether or not (and in whatever
/// order) their futures are awaited. The returned future only waits for the outcome;
/// dropping it does not take the call back.
///
/// # Dynamic calls (bindings, and Rust callers who learn names and types at run time)
///
/// Arguments may be a `Vec<Value>` (or `Vec<Argument>` with upload streams), results and
/// stream items exact [`Value`]s, handlers [`Handler`] objects:
///
/// ```no_run
/// # async fn demo(connection: hublink::HubConnection) -> hublink::Result<()> {
/// use hublink::{ConnectionEvent, Value};
///
/// let sum = connection.invoke_value("Add", vec![Value::Int(1), Value::Int(2)]).await?;
/// let mut counter = connection.stream_value("Counter", vec![Value::Int(100)])?;
/// loop {
///     let batch = counter.next_batch(64).await?;
///     if batch.is_empty() {
///         break; // the stream ended
///     }
///     println!("{} items", batch.len());
/// }
/// let mut events = connection.events();
/// if let Some(ConnectionEvent::Closed { error }) = events.next().await {
///     println!("closed: {error:?}");
/// }
/// # Ok(()) }
/// ```
///
/// Every future of a connection may be awaited from any executor: outside a tokio runtime,
/// the connection runs on the [`SharedRuntime`](crate::SharedRuntime).
#[derive(Clone)]
pub struct HubConnection {
    shared: Arc<Shared>,
    /// Shared by the handles (clones) only, not by the connection's tasks: when the last
    /// handle is dropped, a running connection is stopped in the background.
    _handles: Arc<LastHandle>,
}

/// Stops the connection when the last [`HubConnection`] handle is dropped without `stop()`.
struct LastHandle(Arc<Shared>);

impl Drop for LastHandle {
    fn drop(&mut self) {
        lifecycle::stop_in_background(&self.0);
    }
}

impl fmt::Debug for HubConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HubConnection")
            .field("url", &without_query(&self.shared.options.url))
            .field("state", &self.state())
            .finish()
    }
}

impl HubConnection {
    /// A connection (not started) with these options.
    pub fn new(options: ConnectionOptions) -> Result<Self> {
        if options.url.is_empty() {
            return Err(Error::invalid_argument("The 'url' argument is required."));
        }
        let url = Url::parse(&options.url).map_err(|e| {
            Error::invalid_argument(format!("Cannot resolve '{}': {e}.", options.url))
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Error::invalid_argument(format!(
                "The URL '{url}' must use http or https."
            )));
        }
        #[cfg(not(feature = "messagepack"))]
        if options.protocol == crate::HubProtocol::MessagePack {
            return Err(Error::invalid_argument(
                crate::protocol::msgpack::UNAVAILABLE,
            ));
        }
        if options.retry_on_start && options.retry_policy.is_none() {
            return Err(Error::invalid_argument(
                "with_retry_on_start needs a retry policy (with_automatic_reconnect).",
            ));
        }
        if options.stateful_reconnect && options.stateful_reconnect_buffer_size == 0 {
            // Nothing could ever be sent: every call would wait for room that never comes.
            return Err(Error::invalid_argument(
                "The stateful reconnect buffer size must be at least 1 byte; it is 0.",
            ));
        }
        if !(1..=tokio::sync::Semaphore::MAX_PERMITS).contains(&options.stream_buffer_capacity) {
            return Err(Error::invalid_argument(format!(
                "The stream buffer capacity must be from 1 to {}; it is {}.",
                tokio::sync::Semaphore::MAX_PERMITS,
                options.stream_buffer_capacity
            )));
        }
        let millis = |d: std::time::Duration| d.as_millis().min(u128::from(u64::MAX)) as u64;
        #[cfg_attr(target_arch = "wasm32", allow(unused_mut))]
        let mut http = HttpOptions::new(options.headers, options.cookies, options.http_timeout)?
            .with_credentials(options.with_credentials);
        #[cfg(not(target_arch = "wasm32"))]
        {
            http.tls = crate::tls::TlsOptions {
                root_certificates_pem: options.tls_root_certificates_pem,
                client_certificate_pem: options.tls_client_certificate_pem,
                danger_accept_invalid_certs: options.danger_accept_invalid_certs,
            };
            // Bad PEM and proxy URLs are refused here, before any connection.
            http.tls.client_config()?;
            options.proxy.check()?;
            http.proxy = options.proxy;
        }
        let call_trace = CallTraceTarget::new(&url);
        let connect = ConnectOptions {
            url,
            protocol: options.protocol,
            transports: options.transports.iter().copied().collect(),
            skip_negotiation: options.skip_negotiation,
            access_token_factory: options.access_token_factory,
            http,
            handshake_timeout: options.handshake_timeout,
            max_message_size: options.max_message_size,
            log_message_content: options.log_message_content,
        };
        let behaviour = Behaviour {
            keep_alive_interval_ms: millis(options.keep_alive_interval),
            server_timeout_ms: millis(options.server_timeout),
            retry_policy: options.retry_policy,
            retry_on_start: options.retry_on_start,
            stateful_reconnect_buffer: options
                .stateful_reconnect
                .then_some(options.stateful_reconnect_buffer_size),
            stream_buffer_capacity: options.stream_buffer_capacity,
            call_trace,
        };
        let shared = Arc::new(Shared::new(connect, behaviour));
        Ok(HubConnection {
            _handles: Arc::new(LastHandle(shared.clone())),
            shared,
        })
    }

    fn run(&self) -> std::sync::MutexGuard<'_, super::lifecycle::Run> {
        self.shared.run()
    }

    /// The current state.
    pub fn state(&self) -> HubConnectionState {
        self.run().state
    }

    /// The connection id the server gave, while connected (`None` when negotiation was
    /// skipped).
    pub fn connection_id(&self) -> Option<String> {
        self.run().connection_id.clone()
    }

    /// The transport in use, while connected.
    pub fn transport(&self) -> Option<TransportKind> {
        self.run().transport
    }

    /// The hub protocol of this connection.
    pub fn protocol(&self) -> HubProtocol {
        self.shared.options.protocol
    }

    /// Connects: negotiates, starts a transport (falling back as needed) and handshakes.
    ///
    /// A failed start fires no close event and does not reconnect, as in the official clients,
    /// unless the builder asked to retry the first connect under the retry policy.
    pub async fn start(&self) -> Result<()> {
        let shared = self.shared.clone();
        runtime::in_runtime(async move { lifecycle::start(&shared).await }).await
    }

    /// Closes the connection: sends Close, stops the transport, fails pending calls, and
    /// fires the close event. Also ends a reconnect in progress. Does nothing when already
    /// disconnected.
    pub async fn stop(&self) -> Result<()> {
        let shared = self.shared.clone();
        runtime::in_runtime(async move { lifecycle::stop(&shared).await }).await;
        Ok(())
    }

    /// Writes the frame of an invocation (`ty` 1, with an id when `blocking`) or a stream
    /// invocation (`ty` 4), taking ids for its upload streams before its own, as the official
    /// clients do.
    fn write_call(
        &self,
        ty: u8,
        blocking: bool,
        method: &str,
        arguments: impl IntoArguments,
        span: &Span,
    ) -> Result<(Option<u64>, Bytes, Vec<Upload>)> {
        let mut call = CallWriter::new(self.protocol());
        let streams = arguments.write_arguments(&mut call)?;
        let uploads: Vec<Upload> = streams
            .into_iter()
            .map(|s| (self.shared.ids.next_id(), s))
            .collect();
        let id = blocking.then(|| self.shared.ids.next_number());
        let mut id_text = itoa::Buffer::new();
        let id_text = id.map(|id| id_text.format(id));
        let stream_ids = (!uploads.is_empty())
            .then(|| uploads.iter().map(|(id, _)| id.clone()).collect::<Vec<_>>());
        let headers = call_trace::trace_headers(span);
        let frame = call.finish(ty, id_text, method, stream_ids.as_deref(), &headers);
        Ok((id, frame, uploads))
    }

    fn start_uploads(&self, commands: mpsc::UnboundedSender<Command>, uploads: Vec<Upload>) {
        let protocol = self.protocol();
        for (id, stream) in uploads {
            let commands = commands.clone();
            runtime::spawn(async move {
                let mut items = stream.into_payloads(protocol);
                let mut outcome = CompletionOutcome::Void;
                while let Some(item) = items.next().await {
                    let message = match item {
                        Ok(item) => HubMessage::StreamItem(StreamItem {
                            invocation_id: id.clone(),
                            item,
                            headers: vec![],
                        }),
                        Err(error) => {
                            outcome = CompletionOutcome::Error(error);
                            break;
                        }
                    };
                    if send_message(&commands, protocol, &message).await.is_err() {
                        return;
                    }
                }
                let completion = HubMessage::Completion(Completion {
                    invocation_id: id,
                    outcome,
                    headers: vec![],
                });
                let _ = send_message(&commands, protocol, &completion).await;
            });
        }
    }

    /// Submits an invocation whose Completion goes to `reply` (answered at once, here, when
    /// the call cannot be submitted).
    fn submit_invoke(
        &self,
        method: &str,
        arguments: impl IntoArguments,
        span: &Span,
        reply: Reply<Option<Payload>>,
    ) {
        match self.write_call(1, true, method, arguments, span) {
            Ok((id, frame, uploads)) => {
                let id = id.expect("a blocking invocation has an id");
                let command = Command::Invoke { id, frame, reply };
                if let Err(unsubmitted) = self.submit(command, uploads) {
                    unsubmitted.answer();
                }
            }
            Err(error) => reply.send(Err(error)),
        }
    }

    /// Hands `command` to the connection's driver, then starts the call's upload streams
    /// behind it (so their items follow the call on the same connection). When it cannot be
    /// handed over, gives it back with the error, for its caller to be answered.
    fn submit(
        &self,
        command: Command,
        uploads: Vec<Upload>,
    ) -> std::result::Result<(), Unsubmitted> {
        let run = self.run();
        let Some(commands) = run.commands.as_ref() else {
            return Err(Unsubmitted(command, refused(run.state)));
        };
        if let Err(mpsc::error::SendError(command)) = commands.send(command) {
            return Err(Unsubmitted(command, refused(run.state)));
        }
        if !uploads.is_empty() {
            let commands = commands.clone();
            drop(run);
            self.start_uploads(commands, uploads);
        }
        Ok(())
    }

    /// Invokes a hub method and waits for its result. Use `()` as `T` for a void method.
    ///
    /// The call is submitted before this returns (see the [type's documentation](Self)).
    ///
    /// ```no_run
    /// # async fn demo(connection: hublink::HubConnection) -> hublink::Result<()> {
    /// let sum: i32 = connection.invoke("Add", (1, 2)).await?;
    /// # Ok(()) }
    /// ```
    pub fn invoke<T: DeserializeOwned>(
        &self,
        method: &str,
        arguments: impl IntoArguments,
    ) -> impl Future<Output = Result<T>> + MaybeSend + 'static {
        let outcome = self.invoke_payload(method, arguments);
        let method = method.to_owned();
        async move {
            match outcome.await? {
                Some(payload) => payload.deserialize(),
                None => Payload::Value(Value::Null).deserialize(),
            }
            .map_err(|e| Error::invalid_argument(format!("the result of '{method}': {e}")))
        }
    }

    /// Invokes a hub method and waits for its result as a dynamic value, exactly (binary,
    /// timestamps, 64-bit integers, extensions); [`Value::Null`] for a void method.
    pub fn invoke_value(
        &self,
        method: &str,
        arguments: impl IntoArguments,
    ) -> impl Future<Output = Result<Value>> + MaybeSend + 'static {
        let outcome = self.invoke_payload(method, arguments);
        async move { payload_value(outcome.await?) }
    }

    /// Invokes a hub method and returns its raw result (`None` for a void method).
    pub fn invoke_payload(
        &self,
        method: &str,
        arguments: impl IntoArguments,
    ) -> impl Future<Output = Result<Option<Payload>>> + MaybeSend + 'static {
        let span = self.call_span(method);
        let (reply, outcome) = oneshot::channel();
        self.submit_invoke(method, arguments, &span, reply.into());
        async move {
            let outcome = outcome.await.map_err(|_| connection_closed())?;
            if let Err(error) = &outcome {
                call_trace::record_failure(&span, error);
            }
            outcome
        }
    }

    /// Invokes a hub method and calls `then` with its result as a dynamic value, instead of
    /// returning a future: for bindings that complete futures of their own. `then` runs once:
    /// on the calling thread when the call cannot be submitted, otherwise on the
    /// connection's task (so it must be quick and must not block).
    pub fn invoke_then(
        &self,
        method: &str,
        arguments: impl IntoArguments,
        then: impl FnOnce(Result<Value>) + MaybeSend + MaybeSync + 'static,
    ) {
        let span = self.call_span(method);
        let call_span = span.clone();
        let reply: ReplyFn<Option<Payload>> = Box::new(move |outcome| {
            if let Err(error) = &outcome {
                call_trace::record_failure(&call_span, error);
            }
            drop(call_span);
            then(outcome.and_then(payload_value))
        });
        self.submit_invoke(method, arguments, &span, Reply::callback(reply));
    }

    /// Invokes a hub method without waiting for it to run (fire-and-forget). The call is
    /// submitted before this returns; the future resolves once the invocation is written to
    /// the transport (with stateful reconnect: once it is kept for replay).
    ///
    /// SignalR acknowledges nothing for a send: without stateful reconnect, a send written
    /// just before the connection drops can be lost with no error for it (the connection's
    /// close or reconnecting event reports the drop). Use [`invoke`](Self::invoke), whose
    /// completion confirms the call, or
    /// [`with_stateful_reconnect`](crate::HubConnectionBuilder::with_stateful_reconnect), which
    /// replays what the server has not acknowledged, when every message must arrive.
    pub fn send(
        &self,
        method: &str,
        arguments: impl IntoArguments,
    ) -> impl Future<Output = Result<()>> + MaybeSend + 'static {
        let span = self.call_span(method);
        let (written, done) = oneshot::channel();
        self.submit_send(method, arguments, &span, written.into());
        async move {
            let written = done.await.map_err(|_| connection_closed())?;
            if let Err(error) = &written {
                call_trace::record_failure(&span, error);
            }
            written
        }
    }

    /// [`send`](Self::send), calling `then` once the invocation is written (or failed)
    /// instead of returning a future; `then` runs as in [`invoke_then`](Self::invoke_then).
    pub fn send_then(
        &self,
        method: &str,
        arguments: impl IntoArguments,
        then: impl FnOnce(Result<()>) + MaybeSend + MaybeSync + 'static,
    ) {
        let span = self.call_span(method);
        let call_span = span.clone();
        let written: ReplyFn<()> = Box::new(move |written| {
            if let Err(error) = &written {
                call_trace::record_failure(&call_span, error);
            }
            drop(call_span);
            then(written)
        });
        self.submit_send(method, arguments, &span, Reply::callback(written));
    }

    /// A tracing span for a call of `method` (see [`call_trace`]).
    fn call_span(&self, method: &str) -> Span {
        self.shared.behaviour.call_trace.span(method)
    }

    fn submit_send(
        &self,
        method: &str,
        arguments: impl IntoArguments,
        span: &Span,
        written: Reply<()>,
    ) {
        let (frame, uploads) = match self.write_call(1, false, method, arguments, span) {
            Ok((_, frame, uploads)) => (frame, uploads),
            Err(error) => return written.send(Err(error)),
        };
        let command = Command::Send {
            frame,
            written: Some(written),
        };
        if let Err(unsubmitted) = self.submit(command, uploads) {
            unsubmitted.answer();
        }
    }

    /// Starts a server-to-client stream (submitted before this returns). Dropping the
    /// returned stream cancels it.
    ///
    /// ```no_run
    /// # async fn demo(connection: hublink::HubConnection) -> hublink::Result<()> {
    /// use futures_util::StreamExt;
    /// let mut counter = connection.stream::<i32>("Counter", (10,))?;
    /// while let Some(n) = counter.next().await {
    ///     println!("{}", n?);
    /// }
    /// # Ok(()) }
    /// ```
    pub fn stream<T: DeserializeOwned>(
        &self,
        method: &str,
        arguments: impl IntoArguments,
    ) -> Result<HubStream<T>> {
        self.start_stream(method, arguments, stream::deserialize::<T>)
    }

    /// Starts a server-to-client stream of dynamic values, received exactly.
    pub fn stream_value(
        &self,
        method: &str,
        arguments: impl IntoArguments,
    ) -> Result<HubStream<Value>> {
        self.start_stream(method, arguments, stream::to_value)
    }

    fn start_stream<T>(
        &self,
        method: &str,
        arguments: impl IntoArguments,
        decode: stream::Decode<T>,
    ) -> Result<HubStream<T>> {
        let span = self.call_span(method);
        let (id, frame, uploads) = self.write_call(4, true, method, arguments, &span)?;
        let id = id.expect("a stream invocation has an id").to_string();
        let (feed, receiver) = stream::stream_buffer(self.shared.behaviour.stream_buffer_capacity);
        let commands = {
            let run = self.run();
            run.commands.clone().ok_or_else(|| refused(run.state))?
        };
        let command = Command::Stream {
            id: id.clone(),
            frame,
            items: feed,
        };
        self.submit(command, uploads)
            .map_err(|Unsubmitted(_, error)| error)?;
        Ok(HubStream::new(id, receiver, commands, decode).with_span(span))
    }

    /// Registers a handler for a method the server calls. Method names match
    /// case-insensitively. A handler returning `Result<T, E>` answers the server's client
    /// result request; one returning `()` answers nothing.
    ///
    /// ```no_run
    /// # fn demo(connection: hublink::HubConnection) {
    /// connection.on("Message", |(text,): (String,)| async move { println!("{text}") });
    /// connection.on("GetNumber", |(): ()| async { Ok::<_, String>(42) });
    /// # }
    /// ```
    pub fn on<A, F, Fut, O>(&self, method: &str, handler: F) -> HandlerId
    where
        A: super::arguments::FromArguments + 'static,
        F: Fn(A) -> Fut + MaybeSend + MaybeSync + 'static,
        Fut: Future<Output = O> + MaybeSend + 'static,
        O: HandlerOutput + 'static,
    {
        self.shared.handlers.add(method, erase(handler))
    }

    /// Registers a handler object for a method the server calls (names match
    /// case-insensitively); several may serve one method.
    pub fn add_handler(&self, method: &str, handler: Arc<dyn Handler>) -> HandlerId {
        self.shared.handlers.add(method, handler)
    }

    /// The handlers of `method`, in registration order (for bindings that find theirs by
    /// identity, through [`std::any::Any`]).
    pub fn handlers(&self, method: &str) -> Vec<(HandlerId, Arc<dyn Handler>)> {
        self.shared.handlers.of(method)
    }

    /// Removes every handler of `method`.
    pub fn off(&self, method: &str) {
        self.shared.handlers.remove_all(method);
    }

    /// Removes one handler; whether it was registered.
    pub fn remove_handler(&self, id: HandlerId) -> bool {
        self.shared.handlers.remove(id)
    }

    /// Registers a listener for every event of the connection ([`ConnectionEvent`]). It runs
    /// on the connection's task: it must be quick and must not block.
    pub fn on_event(&self, listener: impl Fn(&ConnectionEvent) + MaybeSend + MaybeSync + 'static) {
        self.shared.events.listen(Arc::new(listener));
    }

    /// The connection's events from now on, as a stream to pull from.
    pub fn events(&self) -> ConnectionEvents {
        self.shared.events.stream()
    }

    /// Registers a callback for the end of the connection, with the error that ended it
    /// (`None` after `stop()` or a clean server close).
    pub fn on_close(&self, callback: impl Fn(Option<Error>) + MaybeSend + MaybeSync + 'static) {
        self.on_event(move |event| {
            if let ConnectionEvent::Closed { error } = event {
                callback(error.clone());
            }
        });
    }

    /// Registers a callback for the start of an automatic reconnect, with the error that
    /// broke the connection.
    pub fn on_reconnecting(
        &self,
        callback: impl Fn(Option<Error>) + MaybeSend + MaybeSync + 'static,
    ) {
        self.on_event(move |event| {
            if let ConnectionEvent::Reconnecting { error } = event {
                callback(error.clone());
            }
        });
    }

    /// Registers a callback for a successful automatic reconnect, with the new connection id
    /// (`None` when negotiation is skipped).
    pub fn on_reconnected(
        &self,
        callback: impl Fn(Option<String>) + MaybeSend + MaybeSync + 'static,
    ) {
        self.on_event(move |event| {
            if let ConnectionEvent::Reconnected { connection_id } = event {
                callback(connection_id.clone());
            }
        });
    }
}

/// A command that could not be handed to the driver, with why.
struct Unsubmitted(Command, Error);

impl Unsubmitted {
    /// Answers the command's caller with the error.
    fn answer(self) {
        let Unsubmitted(command, error) = self;
        match command {
            Command::Invoke { reply, .. } => reply.send(Err(error)),
            Command::Send {
                written: Some(written),
                ..
            } => written.send(Err(error)),
            _ => {}
        }
    }
}

fn payload_value(payload: Option<Payload>) -> Result<Value> {
    match payload {
        Some(payload) => payload.to_value().map_err(Error::from),
        None => Ok(Value::Null),
    }
}

/// A command the driver no longer takes: the connection is not running.
fn not_connected() -> Error {
    Error::invalid_state(NOT_CONNECTED)
}

/// A command the driver did not take. While the state still says Connected the driver has
/// just ended (the connection was lost and the state is about to change): the call is
/// answered as the calls the driver drained were, not with a state the caller did not see.
fn refused(state: HubConnectionState) -> Error {
    match state {
        HubConnectionState::Connected => connection_closed(),
        _ => not_connected(),
    }
}

/// A reply the driver dropped: the connection ended before answering.
fn connection_closed() -> Error {
    Error::connection_closed(CONNECTION_CLOSED)
}
