//! The life of a connection: start, the running driver, automatic reconnect, stop, close.

use super::call_trace::CallTraceTarget;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};
use tracing::{info, warn, Instrument, Span};

use super::arguments::Arguments;
use super::driver::{send_message, Command, Driver, DriverSettings, StatefulLink};
use super::events::{ConnectionEvent, Events};
use super::handlers::Handlers;
use super::retry::{RetryContext, RetryPolicy};
use crate::connect::{establish, ConnectOptions, Established};
use crate::error::{Error, Result};
use crate::http::HttpClient;
use crate::protocol::invocations::InvocationIds;
use crate::protocol::keep_alive::KeepAlive;
use crate::protocol::transports::TransportKind;
use crate::protocol::{Completion, HubMessage, Invocation};
use crate::runtime;

/// The states of a connection, as in the official clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HubConnectionState {
    /// Not connected; `start` may be called.
    Disconnected,
    /// `start` is negotiating, connecting the transport or handshaking.
    Connecting,
    /// Connected: calls go to the server.
    Connected,
    /// `stop` is closing the connection.
    Disconnecting,
    /// Automatic reconnect is waiting or trying.
    Reconnecting,
}

impl std::fmt::Display for HubConnectionState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self, f)
    }
}

/// What the builder decided beyond how to connect.
pub(crate) struct Behaviour {
    pub keep_alive_interval_ms: u64,
    pub server_timeout_ms: u64,
    pub retry_policy: Option<Arc<dyn RetryPolicy>>,
    pub retry_on_start: bool,
    pub stateful_reconnect_buffer: Option<usize>,
    /// Items each server-to-client stream buffers before reading stops.
    pub stream_buffer_capacity: usize,
    /// What every call's tracing span says about the server.
    pub call_trace: CallTraceTarget,
}

/// State shared by the handles and the running connection.
pub(crate) struct Shared {
    pub options: ConnectOptions,
    pub behaviour: Behaviour,
    pub handlers: Handlers,
    pub events: Events,
    pub ids: InvocationIds,
    run: Mutex<Run>,
    stop_requested: watch::Sender<bool>,
}

pub(crate) struct Run {
    pub state: HubConnectionState,
    pub connection_id: Option<String>,
    pub transport: Option<TransportKind>,
    pub commands: Option<mpsc::UnboundedSender<Command>>,
    stopped: Vec<oneshot::Sender<()>>,
}

const STOPPED_DURING_NEGOTIATION: &str = "The connection was stopped during negotiation.";

impl Shared {
    pub(crate) fn new(options: ConnectOptions, behaviour: Behaviour) -> Self {
        Shared {
            options,
            behaviour,
            handlers: Handlers::default(),
            events: Events::default(),
            ids: InvocationIds::default(),
            run: Mutex::new(Run {
                state: HubConnectionState::Disconnected,
                connection_id: None,
                transport: None,
                commands: None,
                stopped: Vec::new(),
            }),
            stop_requested: watch::channel(false).0,
        }
    }

    pub(crate) fn run(&self) -> MutexGuard<'_, Run> {
        self.run.lock().expect("state lock")
    }

    fn stopping(&self) -> bool {
        *self.stop_requested.borrow()
    }

    /// Resolves when `stop()` is called.
    async fn stop_signal(&self) {
        let mut rx = self.stop_requested.subscribe();
        let _ = rx.wait_for(|stop| *stop).await;
    }
}

/// `HubConnection::start`.
pub(crate) async fn start(shared: &Arc<Shared>) -> Result<()> {
    {
        let mut run = shared.run();
        if run.state != HubConnectionState::Disconnected {
            return Err(Error::invalid_state(
                "Cannot start a HubConnection that is not in the 'Disconnected' state.",
            ));
        }
        run.state = HubConnectionState::Connecting;
        shared.stop_requested.send_replace(false);
    }
    let span = tracing::info_span!(
        "hublink",
        url = %crate::connect::without_query(&shared.options.url)
    );
    let mut result = connect(shared).instrument(span.clone()).await;
    if result.is_err() && shared.behaviour.retry_on_start {
        if let (Err(error), Some(policy)) = (&result, shared.behaviour.retry_policy.clone()) {
            let plan = RetryPlan::new(policy.as_ref(), error.clone());
            if let Some(first) = plan.first_delay() {
                result = plan
                    .run(shared, first)
                    .instrument(span.clone())
                    .await
                    .map_err(|e| e.unwrap_or_else(stopped_error));
            }
        }
    }
    match result {
        Ok(established) => match activate(shared, established, &span) {
            Some(driver) => {
                runtime::spawn(supervise(shared.clone(), driver).instrument(span));
                Ok(())
            }
            None => {
                finish(shared, None, false);
                Err(stopped_error())
            }
        },
        Err(error) => {
            finish(shared, None, false);
            Err(error)
        }
    }
}

fn stopped_error() -> Error {
    Error::cancelled(STOPPED_DURING_NEGOTIATION)
}

/// `HubConnection::stop`.
pub(crate) async fn stop(shared: &Arc<Shared>) {
    let (stopped_tx, stopped_rx) = oneshot::channel();
    {
        let mut run = shared.run();
        if run.state == HubConnectionState::Disconnected {
            return;
        }
        run.state = HubConnectionState::Disconnecting;
        shared.stop_requested.send_replace(true);
        if let Some(commands) = &run.commands {
            let _ = commands.send(Command::Stop);
        }
        run.stopped.push(stopped_tx);
    }
    let _ = stopped_rx.await;
}

/// Every handle was dropped without `stop()`: stops the connection as `stop()` would (Close
/// message, transport stopped, pending calls failed, close event), without waiting for it.
/// Also ends a start or a reconnect in progress.
pub(crate) fn stop_in_background(shared: &Arc<Shared>) {
    let mut run = shared.run();
    if matches!(
        run.state,
        HubConnectionState::Disconnected | HubConnectionState::Disconnecting
    ) {
        return;
    }
    tracing::debug!("every handle was dropped: stopping the connection");
    run.state = HubConnectionState::Disconnecting;
    shared.stop_requested.send_replace(true);
    if let Some(commands) = &run.commands {
        let _ = commands.send(Command::Stop);
    }
}

/// Negotiates, connects and handshakes, unless `stop()` comes first.
async fn connect(shared: &Arc<Shared>) -> Result<Established> {
    if shared.stopping() {
        return Err(stopped_error());
    }
    let http = HttpClient::new(&shared.options.http, &shared.options.url)?;
    tokio::select! {
        established = establish(&shared.options, &http, shared.behaviour.stateful_reconnect_buffer.is_some()) => established,
        _ = shared.stop_signal() => Err(stopped_error()),
    }
}

/// Turns an established connection into a running driver and marks the connection Connected;
/// `None` when `stop()` came in the meantime.
fn activate(shared: &Arc<Shared>, established: Established, span: &Span) -> Option<Driver> {
    let (commands_tx, commands_rx) = mpsc::unbounded_channel();
    let (invocations_tx, invocations_rx) = mpsc::unbounded_channel();
    let keep_alive = if established.transport.has_inherent_keep_alive() {
        KeepAlive::inherent()
    } else {
        KeepAlive::new(
            shared.behaviour.keep_alive_interval_ms,
            shared.behaviour.server_timeout_ms,
            runtime::now_ms(),
        )
    };
    let stateful = established.stateful.map(|reconnect| StatefulLink {
        reconnect,
        buffer_size: shared
            .behaviour
            .stateful_reconnect_buffer
            .unwrap_or(crate::protocol::stateful_reconnect::DEFAULT_BUFFER_SIZE),
    });
    let driver = Driver::new(
        established.link,
        established.decoder,
        commands_rx,
        invocations_tx,
        DriverSettings {
            protocol: shared.options.protocol,
            keep_alive,
            stateful,
            log_message_content: shared.options.log_message_content,
            stop_requested: Some(shared.stop_requested.subscribe()),
        },
    );
    {
        let mut run = shared.run();
        if shared.stopping() {
            return None;
        }
        run.state = HubConnectionState::Connected;
        run.connection_id = established.connection_id.clone();
        run.transport = Some(established.transport);
        run.commands = Some(commands_tx.clone());
    }
    info!(parent: span, transport = %established.transport, connection_id = ?established.connection_id, "connected");
    runtime::spawn(
        dispatch_invocations(shared.clone(), invocations_rx, commands_tx.downgrade())
            .instrument(span.clone()),
    );
    Some(driver)
}

/// Runs the driver; when the connection is lost, reconnects under the retry policy.
async fn supervise(shared: Arc<Shared>, mut driver: Driver) {
    loop {
        let ended = driver.run().await;
        let reason = ended
            .error
            .clone()
            .unwrap_or_else(|| Error::connection_closed("The server closed the connection."));
        let policy = shared
            .behaviour
            .retry_policy
            .clone()
            .filter(|_| ended.allow_reconnect && !shared.stopping());
        // The policy is user code: asked before the lock, so that the state leaves Connected
        // in the same step that takes the driver's channel away (a call made in between
        // would otherwise see Connected and still fail).
        let plan = policy
            .as_deref()
            .map(|policy| RetryPlan::new(policy, reason));
        let first_delay = plan.as_ref().and_then(RetryPlan::first_delay);
        let reconnecting = {
            let mut run = shared.run();
            run.commands = None;
            run.connection_id = None;
            run.transport = None;
            let reconnecting = first_delay.is_some() && !shared.stopping();
            if reconnecting {
                run.state = HubConnectionState::Reconnecting;
            }
            reconnecting
        };
        let error = match (plan, first_delay) {
            (Some(plan), Some(first)) if reconnecting => {
                warn!(error = %plan.reason, "connection lost; reconnecting");
                shared
                    .events
                    .fire(ConnectionEvent::Reconnecting { error: ended.error });
                match plan.run(&shared, first).await {
                    Ok(established) => match activate(&shared, established, &Span::current()) {
                        Some(next) => {
                            let id = shared.run().connection_id.clone();
                            info!("reconnected");
                            shared
                                .events
                                .fire(ConnectionEvent::Reconnected { connection_id: id });
                            driver = next;
                            continue;
                        }
                        None => None,
                    },
                    Err(error) => error,
                }
            }
            (Some(_), _) if shared.stopping() => None,
            _ => ended.error,
        };
        finish(&shared, error, true);
        return;
    }
}

/// Connecting again under a retry policy, after the failure `reason`.
struct RetryPlan<'a> {
    policy: &'a dyn RetryPolicy,
    started_ms: u64,
    reason: Error,
}

impl<'a> RetryPlan<'a> {
    fn new(policy: &'a dyn RetryPolicy, reason: Error) -> Self {
        RetryPlan {
            policy,
            started_ms: runtime::now_ms(),
            reason,
        }
    }

    fn next_delay(&self, previous_retry_count: u64) -> Option<Duration> {
        self.policy.next_retry_delay(&RetryContext {
            previous_retry_count,
            elapsed: Duration::from_millis(runtime::now_ms() - self.started_ms),
            retry_reason: self.reason.clone(),
        })
    }

    /// The delay before the first attempt; `None`: the policy does not retry at all.
    fn first_delay(&self) -> Option<Duration> {
        self.next_delay(0)
    }

    /// Waits `delay`, tries, and goes on while the policy gives delays. `Err(None)` means
    /// `stop()` ended it; `Err(Some(e))` that the policy gave up after `e`.
    async fn run(
        mut self,
        shared: &Arc<Shared>,
        mut delay: Duration,
    ) -> std::result::Result<Established, Option<Error>> {
        let mut count = 0u64;
        loop {
            tokio::select! {
                _ = runtime::sleep(delay) => {}
                _ = shared.stop_signal() => return Err(None),
            }
            match connect(shared).await {
                Ok(established) => return Ok(established),
                Err(_) if shared.stopping() => return Err(None),
                Err(error) => {
                    count += 1;
                    warn!(%error, attempt = count, "reconnect attempt failed");
                    self.reason = error;
                    match self.next_delay(count) {
                        Some(d) => delay = d,
                        None => return Err(Some(self.reason)),
                    }
                }
            }
        }
    }
}

/// The connection is over: Disconnected, close event, `stop()` callers released.
fn finish(shared: &Arc<Shared>, error: Option<Error>, fire_close: bool) {
    let stopped = {
        let mut run = shared.run();
        run.state = HubConnectionState::Disconnected;
        run.connection_id = None;
        run.transport = None;
        run.commands = None;
        std::mem::take(&mut run.stopped)
    };
    if fire_close {
        match &error {
            Some(error) => info!(%error, "connection closed"),
            None => info!("connection closed"),
        }
        shared.events.fire(ConnectionEvent::Closed { error });
    }
    for s in stopped {
        let _ = s.send(());
    }
}

/// Runs client methods one invocation at a time, in the order they arrived, and sends the
/// client results back.
async fn dispatch_invocations(
    shared: Arc<Shared>,
    mut invocations: mpsc::UnboundedReceiver<Invocation>,
    commands: mpsc::WeakUnboundedSender<Command>,
) {
    let protocol = shared.options.protocol;
    while let Some(invocation) = invocations.recv().await {
        let expects_result = invocation.invocation_id.is_some();
        let outcome = shared
            .handlers
            .dispatch(
                &invocation.target,
                Arguments::new(invocation.arguments, protocol),
                expects_result,
            )
            .await;
        if let (Some(outcome), Some(id)) = (outcome, invocation.invocation_id) {
            let Some(commands) = commands.upgrade() else {
                return;
            };
            let completion = HubMessage::Completion(Completion {
                invocation_id: id,
                outcome,
                headers: vec![],
            });
            if let Err(e) = send_message(&commands, protocol, &completion).await {
                warn!(error = %e, "could not send a client result");
            }
        }
    }
}
