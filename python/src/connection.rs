//! The native `HubConnection`: the core's connection with Python values and asyncio futures.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::task::{Context, Wake, Waker};
use std::time::Duration;

use hublink::{
    Argument, Arguments, Error, HandlerId, HandlerOutcome, Payload, TransportKind, UploadStream,
    Value,
};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};

use crate::bridge::{call_python, pull_python, Answer, Bridge, BridgeInner, Reply};
use crate::convert::{to_py, to_py_tuple, to_value};
use crate::errors::to_py_err;
use crate::stream::StreamReader;
use crate::RUNTIME;

/// Runs `op` on the runtime, first polling it once on the calling thread.
///
/// That first poll takes each call up to its hand-over to the connection (an invocation is
/// queued for the transport before Python continues), so calls reach the server in the
/// order Python made them, with no thread hop before the driver sees them. The rest (the
/// wait for the answer) continues as a task, spawned only when the operation is first woken
/// (see [`Parked`]).
pub(crate) fn run_now(op: impl Future<Output = ()> + Send + 'static) {
    let _runtime = RUNTIME.enter();
    let mut op: ParkedOp = Box::pin(op);
    let parked = Arc::new(Parked(Mutex::new(ParkedState::Polling)));
    let waker = Waker::from(parked.clone());
    if op
        .as_mut()
        .poll(&mut Context::from_waker(&waker))
        .is_ready()
    {
        return;
    }
    let mut state = parked.0.lock().expect("parked op");
    match *state {
        ParkedState::Polling => *state = ParkedState::Parked(op),
        // Woken during the first poll: continue as a task at once.
        _ => {
            *state = ParkedState::Spawned;
            drop(state);
            RUNTIME.spawn(op);
        }
    }
}

type ParkedOp = std::pin::Pin<Box<dyn Future<Output = ()> + Send>>;

/// The waker of an operation's first poll (on the Python thread): the first wake-up spawns
/// the operation as a task, which polls it again with its own waker.
///
/// Spawning at once, from the Python thread, would make tokio wake an idle worker just to
/// poll the operation and find it still waiting for its answer (often a thread wake-up per
/// call on top of the driver's). Woken, the operation is spawned
/// from the thread that woke it, usually the driver's worker, where the new task goes to
/// the local queue and runs next without waking another thread.
struct Parked(Mutex<ParkedState>);

enum ParkedState {
    /// The first poll is running.
    Polling,
    /// Pending after the first poll, not woken yet.
    Parked(ParkedOp),
    /// Woken: spawned (or to be spawned by the first poll's caller).
    Spawned,
}

impl Wake for Parked {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let mut state = self.0.lock().expect("parked op");
        if let ParkedState::Parked(op) = std::mem::replace(&mut *state, ParkedState::Spawned) {
            drop(state);
            RUNTIME.spawn(op);
        }
    }
}

/// What the callbacks registered with the core need.
pub(crate) struct Shared {
    /// The bridge of the loop the connection was last started on.
    bridge: Mutex<Option<Arc<BridgeInner>>>,
    handlers: Mutex<Vec<(String, Py<PyAny>, HandlerId)>>,
    close_callbacks: Mutex<Vec<Py<PyAny>>>,
    reconnecting_callbacks: Mutex<Vec<Py<PyAny>>>,
    reconnected_callbacks: Mutex<Vec<Py<PyAny>>>,
}

impl Shared {
    fn bridge(&self) -> Option<Arc<BridgeInner>> {
        self.bridge.lock().expect("bridge").clone()
    }
}

/// Calls `callable(*args)` on the loop (plain or async) and waits for its answer.
async fn call_on_loop(bridge: &BridgeInner, callable: Arc<Py<PyAny>>, args: Vec<Value>) -> Answer {
    let (reply, answer) = Reply::new();
    bridge.post(Box::new(move |py| match to_py_tuple(py, args) {
        Ok(args) => call_python(py, callable.bind(py), args, Some(reply)),
        Err(e) => reply.fail(py, e),
    }));
    answer
        .await
        .unwrap_or_else(|_| Answer::Error("the callback could not be called".into()))
}

/// The core's connection with Python values; `hublink.HubConnection` wraps it.
#[pyclass(module = "hublink._native", frozen)]
pub struct HubConnection {
    core: hublink::HubConnection,
    shared: Arc<Shared>,
}

fn seconds(value: Option<f64>, name: &str) -> PyResult<Option<Duration>> {
    value
        .map(|s| {
            Duration::try_from_secs_f64(s).map_err(|_| {
                PyValueError::new_err(format!("{name} must be a non-negative number of seconds"))
            })
        })
        .transpose()
}

fn transport_kind(name: &str) -> PyResult<TransportKind> {
    let key: String = name
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect::<String>()
        .to_ascii_lowercase();
    match key.as_str() {
        "websockets" | "websocket" => Ok(TransportKind::WebSockets),
        "serversentevents" | "sse" => Ok(TransportKind::ServerSentEvents),
        "longpolling" => Ok(TransportKind::LongPolling),
        _ => Err(PyValueError::new_err(format!(
            "unknown transport '{name}': use 'websockets', 'serversentevents' or 'longpolling'"
        ))),
    }
}

impl HubConnection {
    /// Converts call arguments: values, and async iterables as upload streams.
    fn arguments(
        &self,
        bridge: &Arc<BridgeInner>,
        args: &Bound<'_, PyTuple>,
    ) -> PyResult<Vec<Argument>> {
        let mut out = Vec::with_capacity(args.len());
        for (index, arg) in args.iter().enumerate() {
            if may_be_async_iterable(&arg)? {
                let iterator = Arc::new(arg.call_method0("__aiter__")?.unbind());
                out.push(Argument::Stream(upload_stream(bridge.clone(), iterator)));
            } else {
                let value = to_value(&arg).map_err(|e| {
                    let py = args.py();
                    if e.is_instance_of::<PyTypeError>(py) {
                        PyTypeError::new_err(format!("argument {}: {}", index + 1, e.value(py)))
                    } else {
                        e
                    }
                })?;
                out.push(Argument::Value(Payload::Value(value)));
            }
        }
        Ok(out)
    }

    /// Converts `args` and runs the core call `op` on them, completing `future`.
    fn call<F, Fut, T>(
        &self,
        bridge: &Bound<'_, Bridge>,
        future: Py<PyAny>,
        args: &Bound<'_, PyTuple>,
        op: F,
    ) -> PyResult<()>
    where
        F: FnOnce(hublink::HubConnection, Vec<Argument>) -> Fut,
        Fut: Future<Output = Result<T, Error>> + Send + 'static,
        T: IntoValue + Send + 'static,
    {
        let bridge = bridge.get().inner();
        let arguments = self.arguments(&bridge, args)?;
        self.complete(bridge, future, op(self.core.clone(), arguments));
        Ok(())
    }

    /// Runs `op` in order and completes `future` with its outcome.
    fn complete<F, T>(&self, bridge: Arc<BridgeInner>, future: Py<PyAny>, op: F)
    where
        F: Future<Output = Result<T, Error>> + Send + 'static,
        T: Send + 'static,
        T: IntoValue,
    {
        run_now(async move {
            let outcome = op.await.and_then(IntoValue::into_value);
            bridge.resolve(future, move |py| match outcome {
                Ok(value) => to_py(py, value),
                Err(error) => Err(to_py_err(py, error)),
            });
        });
    }
}

/// Whether a call argument may be an async iterable (an upload stream).
///
/// Values of the built-in types (exactly those types: a subclass may define `__aiter__`)
/// cannot be, and skipping them avoids the attribute lookup, which for them raises, formats
/// and discards an `AttributeError` per argument (pyo3's `hasattr` goes through
/// `PyObject_GetAttr` under the stable ABI).
fn may_be_async_iterable(arg: &Bound<'_, PyAny>) -> PyResult<bool> {
    if arg.is_none()
        || arg.is_exact_instance_of::<PyString>()
        || arg.is_exact_instance_of::<PyInt>()
        || arg.is_exact_instance_of::<PyFloat>()
        || arg.is_exact_instance_of::<PyBool>()
        || arg.is_exact_instance_of::<PyBytes>()
        || arg.is_exact_instance_of::<PyList>()
        || arg.is_exact_instance_of::<PyDict>()
        || arg.is_exact_instance_of::<PyTuple>()
    {
        return Ok(false);
    }
    arg.hasattr(pyo3::intern!(arg.py(), "__aiter__"))
}

/// What an operation resolves its future with.
trait IntoValue {
    fn into_value(self) -> Result<Value, Error>;
}

impl IntoValue for () {
    fn into_value(self) -> Result<Value, Error> {
        Ok(Value::Null)
    }
}

impl IntoValue for Option<Payload> {
    fn into_value(self) -> Result<Value, Error> {
        match self {
            Some(payload) => payload.to_value().map_err(Error::from),
            None => Ok(Value::Null),
        }
    }
}

/// A Python async iterator as an upload stream: each item is asked for on the loop.
fn upload_stream(bridge: Arc<BridgeInner>, iterator: Arc<Py<PyAny>>) -> UploadStream {
    let items = futures_util::stream::unfold(Some((bridge, iterator)), |state| async move {
        let (bridge, iterator) = state?;
        let (reply, answer) = Reply::new();
        let it = iterator.clone();
        bridge.post(Box::new(move |py| pull_python(py, it.bind(py), reply)));
        match answer.await {
            Ok(Answer::Value(v)) => Some((Ok(v), Some((bridge, iterator)))),
            Ok(Answer::Error(e)) => Some((Err(e), None)),
            Ok(Answer::End) => None,
            Err(_) => Some((Err("the upload stream could not be read".to_owned()), None)),
        }
    });
    UploadStream::fallible(items)
}

#[pymethods]
impl HubConnection {
    #[new]
    #[pyo3(signature = (
        url, *, messagepack = false, transports = None, headers = None,
        access_token_factory = None, skip_negotiation = false, server_timeout = None,
        keep_alive_interval = None, handshake_timeout = None, http_timeout = None,
        max_message_size = None, automatic_reconnect = false, reconnect_delays = None,
        retry_policy = None, retry_on_start = false, stateful_reconnect = false,
        stateful_reconnect_buffer_size = None, message_content_logging = false
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        url: String,
        messagepack: bool,
        transports: Option<Vec<String>>,
        headers: Option<Vec<(String, String)>>,
        access_token_factory: Option<Py<PyAny>>,
        skip_negotiation: bool,
        server_timeout: Option<f64>,
        keep_alive_interval: Option<f64>,
        handshake_timeout: Option<f64>,
        http_timeout: Option<f64>,
        max_message_size: Option<usize>,
        automatic_reconnect: bool,
        reconnect_delays: Option<Vec<f64>>,
        retry_policy: Option<Py<PyAny>>,
        retry_on_start: bool,
        stateful_reconnect: bool,
        stateful_reconnect_buffer_size: Option<usize>,
        message_content_logging: bool,
        py: Python<'_>,
    ) -> PyResult<Self> {
        let shared = Arc::new(Shared {
            bridge: Mutex::new(None),
            handlers: Mutex::new(Vec::new()),
            close_callbacks: Mutex::new(Vec::new()),
            reconnecting_callbacks: Mutex::new(Vec::new()),
            reconnected_callbacks: Mutex::new(Vec::new()),
        });
        let mut builder = hublink::HubConnectionBuilder::new()
            .with_url(url)
            .skip_negotiation(skip_negotiation);
        if messagepack {
            builder = builder.with_messagepack();
        }
        if let Some(names) = transports {
            let kinds = names
                .iter()
                .map(|n| transport_kind(n))
                .collect::<PyResult<Vec<_>>>()?;
            builder = builder.with_transports(kinds);
        }
        for (name, value) in headers.unwrap_or_default() {
            builder = builder.with_header(name, value);
        }
        if let Some(t) = seconds(server_timeout, "server_timeout")? {
            builder = builder.with_server_timeout(t);
        }
        if let Some(t) = seconds(keep_alive_interval, "keep_alive_interval")? {
            builder = builder.with_keep_alive_interval(t);
        }
        if let Some(t) = seconds(handshake_timeout, "handshake_timeout")? {
            builder = builder.with_handshake_timeout(t);
        }
        if let Some(t) = seconds(http_timeout, "http_timeout")? {
            builder = builder.with_http_timeout(t);
        }
        if let Some(bytes) = max_message_size {
            builder = builder.with_max_message_size(bytes);
        }
        if automatic_reconnect {
            builder = builder.with_automatic_reconnect();
        }
        if let Some(delays) = reconnect_delays {
            let delays = delays
                .into_iter()
                .map(|d| seconds(Some(d), "a reconnect delay").map(Option::unwrap_or_default))
                .collect::<PyResult<Vec<_>>>()?;
            builder = builder.with_automatic_reconnect_delays(delays);
        }
        if let Some(policy) = retry_policy {
            builder = builder.with_retry_policy(PythonRetryPolicy(policy));
        }
        builder = builder.with_retry_on_start(retry_on_start);
        if stateful_reconnect {
            builder = builder.with_stateful_reconnect();
        }
        if let Some(bytes) = stateful_reconnect_buffer_size {
            builder = builder.with_stateful_reconnect_buffer_size(bytes);
        }
        builder = builder.with_message_content_logging(message_content_logging);
        if let Some(factory) = access_token_factory {
            let factory = Arc::new(factory);
            let shared = shared.clone();
            builder = builder.with_access_token_factory(move || {
                let factory = factory.clone();
                let bridge = shared.bridge();
                async move {
                    let bridge = bridge.ok_or("the connection has no event loop")?;
                    match call_on_loop(&bridge, factory, Vec::new()).await {
                        Answer::Value(Value::String(token)) => Ok(Some(token)),
                        Answer::Value(Value::Null) => Ok(None),
                        Answer::Value(_) => Err("it must return a str or None".to_owned()),
                        Answer::Error(e) => Err(e),
                        Answer::End => Err("it returned nothing".to_owned()),
                    }
                }
            });
        }
        let core = builder.build().map_err(|e| to_py_err(py, e))?;
        let events = shared.clone();
        core.on_close(move |error| {
            let arg = error.map(Event::Error);
            fire(&events, |s| &s.close_callbacks, arg);
        });
        let events = shared.clone();
        core.on_reconnecting(move |error| {
            let arg = error.map(Event::Error);
            fire(&events, |s| &s.reconnecting_callbacks, arg);
        });
        let events = shared.clone();
        core.on_reconnected(move |id| {
            fire(&events, |s| &s.reconnected_callbacks, id.map(Event::Text));
        });
        Ok(HubConnection { core, shared })
    }

    /// "Disconnected", "Connecting", "Connected", "Disconnecting" or "Reconnecting".
    #[getter]
    fn state(&self) -> String {
        self.core.state().to_string()
    }

    #[getter]
    fn connection_id(&self) -> Option<String> {
        self.core.connection_id()
    }

    /// "WebSockets", "ServerSentEvents" or "LongPolling" while connected.
    #[getter]
    fn transport(&self) -> Option<String> {
        self.core.transport().map(|t| t.to_string())
    }

    /// "json" or "messagepack".
    #[getter]
    fn protocol(&self) -> &'static str {
        self.core.protocol().name()
    }

    fn start(&self, bridge: &Bound<'_, Bridge>, future: Py<PyAny>) {
        let bridge = bridge.get().inner();
        *self.shared.bridge.lock().expect("bridge") = Some(bridge.clone());
        let core = self.core.clone();
        self.complete(bridge, future, async move { core.start().await });
    }

    fn stop(&self, bridge: &Bound<'_, Bridge>, future: Py<PyAny>) {
        let core = self.core.clone();
        self.complete(
            bridge.get().inner(),
            future,
            async move { core.stop().await },
        );
    }

    fn invoke(
        &self,
        bridge: &Bound<'_, Bridge>,
        future: Py<PyAny>,
        method: String,
        args: &Bound<'_, PyTuple>,
    ) -> PyResult<()> {
        self.call(bridge, future, args, move |core, arguments| async move {
            core.invoke_payload(&method, arguments).await
        })
    }

    fn send(
        &self,
        bridge: &Bound<'_, Bridge>,
        future: Py<PyAny>,
        method: String,
        args: &Bound<'_, PyTuple>,
    ) -> PyResult<()> {
        self.call(bridge, future, args, move |core, arguments| async move {
            core.send(&method, arguments).await
        })
    }

    /// A server-to-client stream; the invocation is sent on the first read.
    fn stream(
        &self,
        bridge: &Bound<'_, Bridge>,
        method: String,
        args: &Bound<'_, PyTuple>,
    ) -> PyResult<StreamReader> {
        let bridge = bridge.get().inner();
        let arguments = self.arguments(&bridge, args)?;
        Ok(StreamReader::new(self.core.clone(), method, arguments))
    }

    /// Registers `handler` for `method`. With `result`, what it returns (or raises) answers
    /// the server's client-result requests; without, it returns nothing to the server.
    fn on(&self, py: Python<'_>, method: String, handler: Py<PyAny>, result: bool) {
        let callable = Arc::new(handler.clone_ref(py));
        let shared = self.shared.clone();
        let id = if result {
            self.core.on(&method, move |args: Arguments| {
                let bridge = shared.bridge();
                let callable = callable.clone();
                async move {
                    let values = args.values().map_err(|e| e.to_string())?;
                    let bridge = bridge.ok_or("the connection has no event loop")?;
                    match call_on_loop(&bridge, callable, values).await {
                        Answer::Value(v) => Ok(v),
                        Answer::Error(e) => Err(e),
                        Answer::End => Err("the handler returned nothing".to_owned()),
                    }
                }
            })
        } else {
            self.core.on(&method, move |args: Arguments| {
                let bridge = shared.bridge();
                let callable = callable.clone();
                async move {
                    // The core logs a failure with the official text (and, as the official
                    // client, answers a client-result request with it).
                    match (args.values(), bridge) {
                        (Ok(values), Some(bridge)) => {
                            match call_on_loop(&bridge, callable, values).await {
                                Answer::Error(e) => HandlerOutcome::Failed(e),
                                Answer::Value(_) | Answer::End => HandlerOutcome::NoResult,
                            }
                        }
                        (Err(e), _) => HandlerOutcome::Failed(e.to_string()),
                        (_, None) => {
                            HandlerOutcome::Failed("the connection has no event loop".into())
                        }
                    }
                }
            })
        };
        self.shared
            .handlers
            .lock()
            .expect("handlers")
            .push((method, handler, id));
    }

    /// Removes `handler` from `method`, or every handler of `method` without one.
    #[pyo3(signature = (method, handler = None))]
    fn off(&self, method: &str, handler: Option<&Bound<'_, PyAny>>) {
        let key = method.to_lowercase();
        let mut handlers = self.shared.handlers.lock().expect("handlers");
        match handler {
            None => {
                self.core.off(method);
                handlers.retain(|(m, _, _)| m.to_lowercase() != key);
            }
            Some(handler) => handlers.retain(|(m, h, id)| {
                let hit = m.to_lowercase() == key && h.bind(handler.py()).is(handler);
                if hit {
                    self.core.remove_handler(m, *id);
                }
                !hit
            }),
        }
    }

    /// Calls `callback(error)` (`None` after `stop()`) when the connection closes.
    fn on_close(&self, callback: Py<PyAny>) {
        self.shared
            .close_callbacks
            .lock()
            .expect("callbacks")
            .push(callback);
    }

    /// Calls `callback(error)` when an automatic reconnect begins.
    fn on_reconnecting(&self, callback: Py<PyAny>) {
        self.shared
            .reconnecting_callbacks
            .lock()
            .expect("callbacks")
            .push(callback);
    }

    /// Calls `callback(connection_id)` when an automatic reconnect succeeded.
    fn on_reconnected(&self, callback: Py<PyAny>) {
        self.shared
            .reconnected_callbacks
            .lock()
            .expect("callbacks")
            .push(callback);
    }

    fn __repr__(&self) -> String {
        format!("{:?}", self.core)
    }
}

/// The argument of a connection event callback.
enum Event {
    Error(Error),
    Text(String),
}

/// Calls every callback of one event on the loop, with `arg` (or `None`).
fn fire(shared: &Arc<Shared>, list: fn(&Shared) -> &Mutex<Vec<Py<PyAny>>>, arg: Option<Event>) {
    let Some(bridge) = shared.bridge() else {
        return;
    };
    let shared = shared.clone();
    bridge.post(Box::new(move |py| {
        let callbacks: Vec<Py<PyAny>> = list(&shared)
            .lock()
            .expect("callbacks")
            .iter()
            .map(|c| c.clone_ref(py))
            .collect();
        for callback in callbacks {
            let value = match &arg {
                Some(Event::Error(e)) => to_py_err(py, e.clone()).into_value(py).into_any(),
                Some(Event::Text(t)) => pyo3::types::PyString::new(py, t).into_any().unbind(),
                None => py.None(),
            };
            match PyTuple::new(py, [value]) {
                Ok(args) => call_python(py, callback.bind(py), args, None),
                Err(e) => e.write_unraisable(py, None),
            }
        }
    }));
}

/// A Python retry policy: `policy(context)` or `policy.next_retry_delay(context)` with a
/// `hublink.RetryContext`, returning seconds or `None` to give up. It is called on a
/// background thread (the core asks synchronously): it must be quick and not use asyncio.
struct PythonRetryPolicy(Py<PyAny>);

impl hublink::RetryPolicy for PythonRetryPolicy {
    fn next_retry_delay(&self, context: &hublink::RetryContext) -> Option<Duration> {
        Python::try_attach(|py| {
            let result = (|| -> PyResult<Option<f64>> {
                let reason = to_py_err(py, context.retry_reason.clone()).into_value(py);
                let ctx = py
                    .import("hublink._connection")?
                    .getattr("RetryContext")?
                    .call1((
                        context.previous_retry_count,
                        context.elapsed.as_secs_f64(),
                        reason,
                    ))?;
                let policy = self.0.bind(py);
                let delay = if policy.hasattr("next_retry_delay")? {
                    policy.call_method1("next_retry_delay", (ctx,))?
                } else {
                    policy.call1((ctx,))?
                };
                delay.extract()
            })();
            match result {
                Ok(delay) => delay.and_then(|s| Duration::try_from_secs_f64(s).ok()),
                Err(e) => {
                    e.write_unraisable(py, Some(self.0.bind(py)));
                    None
                }
            }
        })
        .flatten()
    }
}
