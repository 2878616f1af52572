//! `HubConnection`: the handle users hold.

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt;
use serde::de::DeserializeOwned;
use tokio::sync::{mpsc, oneshot};

use super::arguments::{FromArguments, IntoArguments, UploadStream};
use super::driver::Command;
use super::handlers::{erase, HandlerId, HandlerOutput};
use super::lifecycle::{self, Behaviour, HubConnectionState, Shared};
use super::stream::HubStream;
use crate::connect::{without_query, ConnectOptions};
use crate::error::{Error, Result};
use crate::protocol::hub_protocol::CallWriter;
use crate::protocol::transports::TransportKind;
use crate::protocol::{
    Completion, CompletionOutcome, HubMessage, HubProtocol, Payload, StreamItem, Value,
};
use crate::runtime;
use crate::transport::BoxFuture;

/// An upload stream with the stream id it was given.
type Upload = (String, UploadStream);

const NOT_CONNECTED: &str = "Cannot send data if the connection is not in the 'Connected' State.";

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
#[derive(Clone)]
pub struct HubConnection {
    shared: Arc<Shared>,
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
    pub(crate) fn new(options: ConnectOptions, behaviour: Behaviour) -> Self {
        HubConnection {
            shared: Arc::new(Shared::new(options, behaviour)),
        }
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
        lifecycle::start(&self.shared).await
    }

    /// Closes the connection: sends Close, stops the transport, fails pending calls, and
    /// fires the close event. Also ends a reconnect in progress. Does nothing when already
    /// disconnected.
    pub async fn stop(&self) -> Result<()> {
        lifecycle::stop(&self.shared).await;
        Ok(())
    }

    fn commands(&self) -> Result<mpsc::Sender<Command>> {
        self.run()
            .commands
            .clone()
            .ok_or_else(|| Error::InvalidState(NOT_CONNECTED.into()))
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
        let stream_ids = Self::stream_ids(&uploads);
        let frame = call.finish(ty, id_text, method, stream_ids.as_deref());
        Ok((id, frame, uploads))
    }

    fn stream_ids(uploads: &[Upload]) -> Option<Vec<String>> {
        (!uploads.is_empty()).then(|| uploads.iter().map(|(id, _)| id.clone()).collect())
    }

    fn start_uploads(
        &self,
        commands: &mpsc::Sender<Command>,
        uploads: Vec<(String, UploadStream)>,
    ) {
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
                    if send_frame(&commands, protocol, &message).await.is_err() {
                        return;
                    }
                }
                let completion = HubMessage::Completion(Completion {
                    invocation_id: id,
                    outcome,
                    headers: vec![],
                });
                let _ = send_frame(&commands, protocol, &completion).await;
            });
        }
    }

    /// Invokes a hub method and waits for its result. Use `()` as `T` for a void method.
    ///
    /// ```no_run
    /// # async fn demo(connection: hublink::HubConnection) -> hublink::Result<()> {
    /// let sum: i32 = connection.invoke("Add", (1, 2)).await?;
    /// # Ok(()) }
    /// ```
    pub async fn invoke<T: DeserializeOwned>(
        &self,
        method: &str,
        arguments: impl IntoArguments,
    ) -> Result<T> {
        let payload = self.invoke_payload(method, arguments).await?;
        match payload {
            Some(payload) => payload.deserialize(),
            None => Payload::Value(Value::Null).deserialize(),
        }
        .map_err(|e| Error::InvalidArgument(format!("the result of '{method}': {e}")))
    }

    /// Invokes a hub method and returns its raw result (`None` for a void method).
    pub async fn invoke_payload(
        &self,
        method: &str,
        arguments: impl IntoArguments,
    ) -> Result<Option<Payload>> {
        let (id, frame, uploads) = self.write_call(1, true, method, arguments)?;
        let id = id.expect("a blocking invocation has an id");
        let (reply, result) = oneshot::channel();
        if let Some(wait) = self.submit_call(Command::Invoke { id, frame, reply }, uploads)? {
            wait.await?;
        }
        result.await.map_err(connection_closed)?
    }

    /// Hands a call's command to the driver, then starts its upload streams through the same
    /// channel (so they reach the same connection as the call). What has to wait comes back
    /// as a boxed future: it is rare, and inline it would make every call's future larger
    /// (and moving it, as `FuturesUnordered` or `join_all` do, slower).
    fn submit_call(
        &self,
        command: Command,
        uploads: Vec<Upload>,
    ) -> Result<Option<BoxFuture<'_, Result<()>>>> {
        if !uploads.is_empty() {
            let commands = self.commands()?;
            return Ok(Some(Box::pin(async move {
                commands.send(command).await.map_err(not_connected)?;
                self.start_uploads(&commands, uploads);
                Ok(())
            })));
        }
        Ok(self.try_submit(command)?.map(|(commands, command)| {
            let wait: BoxFuture<'_, Result<()>> =
                Box::pin(async move { commands.send(command).await.map_err(not_connected) });
            wait
        }))
    }

    /// Puts a command straight into the driver's channel when it has room (the usual case,
    /// without cloning the sender from behind the lock); otherwise gives it back with a sender
    /// to wait on.
    fn try_submit(&self, command: Command) -> Result<Option<(mpsc::Sender<Command>, Command)>> {
        let run = self.run();
        let commands = run.commands.as_ref().ok_or_else(|| not_connected(()))?;
        match commands.try_send(command) {
            Ok(()) => Ok(None),
            Err(mpsc::error::TrySendError::Closed(_)) => Err(not_connected(())),
            Err(mpsc::error::TrySendError::Full(command)) => Ok(Some((commands.clone(), command))),
        }
    }

    /// Invokes a hub method without waiting for it to run (fire-and-forget). Resolves once
    /// the invocation is written to the transport (with stateful reconnect: once it is kept
    /// for replay).
    ///
    /// SignalR acknowledges nothing for a send: without stateful reconnect, a send written
    /// just before the connection drops can be lost with no error for it (the connection's
    /// close or reconnecting event reports the drop). Use [`invoke`](Self::invoke), whose
    /// completion confirms the call, or
    /// [`with_stateful_reconnect`](crate::HubConnectionBuilder::with_stateful_reconnect), which
    /// replays what the server has not acknowledged, when every message must arrive.
    pub async fn send(&self, method: &str, arguments: impl IntoArguments) -> Result<()> {
        let (_, frame, uploads) = self.write_call(1, false, method, arguments)?;
        let (written, done) = oneshot::channel();
        let send = Command::Send {
            frame,
            written: Some(written),
        };
        if let Some(wait) = self.submit_call(send, uploads)? {
            wait.await?;
        }
        done.await.map_err(connection_closed)?
    }

    /// Starts a server-to-client stream. Dropping the returned stream cancels it.
    ///
    /// ```no_run
    /// # async fn demo(connection: hublink::HubConnection) -> hublink::Result<()> {
    /// use futures_util::StreamExt;
    /// let mut counter = connection.stream::<i32>("Counter", (10,)).await?;
    /// while let Some(n) = counter.next().await {
    ///     println!("{}", n?);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn stream<T: DeserializeOwned>(
        &self,
        method: &str,
        arguments: impl IntoArguments,
    ) -> Result<HubStream<T>> {
        let commands = self.commands()?;
        let (id, frame, uploads) = self.write_call(4, true, method, arguments)?;
        let id = id.expect("a stream invocation has an id").to_string();
        let (items_tx, items_rx) = mpsc::unbounded_channel();
        commands
            .send(Command::Stream {
                id: id.clone(),
                frame,
                items: items_tx,
            })
            .await
            .map_err(not_connected)?;
        self.start_uploads(&commands, uploads);
        Ok(HubStream::new(id, items_rx, commands))
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
    #[cfg(not(target_arch = "wasm32"))]
    pub fn on<A, F, Fut, O>(&self, method: &str, handler: F) -> HandlerId
    where
        A: FromArguments + 'static,
        F: Fn(A) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = O> + Send + 'static,
        O: HandlerOutput + 'static,
    {
        self.shared.handlers.add(method, erase(handler))
    }

    /// Registers a handler for a method the server calls (see the native documentation).
    #[cfg(target_arch = "wasm32")]
    pub fn on<A, F, Fut, O>(&self, method: &str, handler: F) -> HandlerId
    where
        A: FromArguments + 'static,
        F: Fn(A) -> Fut + 'static,
        Fut: Future<Output = O> + 'static,
        O: HandlerOutput + 'static,
    {
        self.shared.handlers.add(method, erase(handler))
    }

    /// Removes every handler of `method`.
    pub fn off(&self, method: &str) {
        self.shared.handlers.remove_all(method);
    }

    /// Removes one handler.
    pub fn remove_handler(&self, method: &str, id: HandlerId) {
        self.shared.handlers.remove(method, id);
    }

    /// Registers a callback for the end of the connection, with the error that ended it
    /// (`None` after `stop()` or a clean server close).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn on_close(&self, callback: impl Fn(Option<Error>) + Send + Sync + 'static) {
        lifecycle::subscribe(&self.shared.events.close, Arc::new(callback));
    }

    /// Registers a callback for the start of an automatic reconnect, with the error that
    /// broke the connection.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn on_reconnecting(&self, callback: impl Fn(Option<Error>) + Send + Sync + 'static) {
        lifecycle::subscribe(&self.shared.events.reconnecting, Arc::new(callback));
    }

    /// Registers a callback for a successful automatic reconnect, with the new connection id
    /// (`None` when negotiation is skipped).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn on_reconnected(&self, callback: impl Fn(Option<String>) + Send + Sync + 'static) {
        lifecycle::subscribe(&self.shared.events.reconnected, Arc::new(callback));
    }

    /// Registers a callback for the end of the connection.
    #[cfg(target_arch = "wasm32")]
    pub fn on_close(&self, callback: impl Fn(Option<Error>) + 'static) {
        lifecycle::subscribe(&self.shared.events.close, Arc::new(callback));
    }

    /// Registers a callback for the start of an automatic reconnect.
    #[cfg(target_arch = "wasm32")]
    pub fn on_reconnecting(&self, callback: impl Fn(Option<Error>) + 'static) {
        lifecycle::subscribe(&self.shared.events.reconnecting, Arc::new(callback));
    }

    /// Registers a callback for a successful automatic reconnect.
    #[cfg(target_arch = "wasm32")]
    pub fn on_reconnected(&self, callback: impl Fn(Option<String>) + 'static) {
        lifecycle::subscribe(&self.shared.events.reconnected, Arc::new(callback));
    }
}

pub(crate) async fn send_frame(
    commands: &mpsc::Sender<Command>,
    protocol: HubProtocol,
    message: &HubMessage,
) -> Result<()> {
    let mut out = Vec::with_capacity(64);
    protocol
        .write_message(message, &mut out)
        .map_err(|e| Error::InvalidArgument(e.to_string()))?;
    let (written, done) = oneshot::channel();
    commands
        .send(Command::Send {
            frame: out.into(),
            written: Some(written),
        })
        .await
        .map_err(not_connected)?;
    done.await.map_err(connection_closed)?
}

/// A command the driver no longer takes: the connection is not running.
fn not_connected<T>(_: T) -> Error {
    Error::InvalidState(NOT_CONNECTED.into())
}

/// A reply the driver dropped: the connection ended before answering.
fn connection_closed<T>(_: T) -> Error {
    Error::ConnectionClosed(crate::protocol::invocations::CONNECTION_CLOSED.into())
}
