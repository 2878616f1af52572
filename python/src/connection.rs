//! The native `HubConnection`: the core's connection with Python values and asyncio futures.
//!
//! Everything here is conversion and async adaptation. Calls are submitted by the core when
//! they are made (so they reach the server in the order Python made them), results come back
//! through callbacks that complete asyncio futures on their loop, handlers and event
//! listeners are registered with the core, which owns them.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use hublink::{
    Argument, Arguments, BoxFuture, ConnectionOptions, DefaultRetryPolicy, Error, Handler,
    HandlerOutcome, HubProtocol, Payload, SharedRuntime, TraceContext, UploadStream, Value,
};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};

use crate::bridge::{call_python, pull_python, Answer, Bridge, BridgeInner, Reply};
use crate::convert::{to_py, to_py_tuple, to_value};
use crate::errors::to_py_err;
use crate::stream::StreamReader;

/// The event loop a connection reports to: the one it was last started on.
#[derive(Default)]
pub(crate) struct LoopOf(Mutex<Option<Arc<BridgeInner>>>);

impl LoopOf {
    fn get(&self) -> Option<Arc<BridgeInner>> {
        self.0.lock().expect("loop").clone()
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

/// A Python callable registered with the core as a client method.
struct PythonHandler {
    callable: Arc<Py<PyAny>>,
    /// Whether what it returns answers client-result requests.
    returns_result: bool,
    event_loop: Arc<LoopOf>,
}

impl Handler for PythonHandler {
    fn call(&self, arguments: Arguments) -> BoxFuture<'static, HandlerOutcome> {
        let callable = self.callable.clone();
        let returns_result = self.returns_result;
        let bridge = self.event_loop.get();
        Box::pin(async move {
            let values = match arguments.values() {
                Ok(values) => values,
                Err(e) => return HandlerOutcome::Failed(e.to_string()),
            };
            let Some(bridge) = bridge else {
                return HandlerOutcome::Failed("the connection has no event loop".into());
            };
            // The core logs a failure with the official text (and, as the official client,
            // answers a client-result request with it).
            match call_on_loop(&bridge, callable, values).await {
                Answer::Error(e) => HandlerOutcome::Failed(e),
                Answer::Value(v) if returns_result => HandlerOutcome::Result(Payload::Value(v)),
                Answer::Value(_) | Answer::End => HandlerOutcome::NoResult,
            }
        })
    }
}

/// The core's connection with Python values; `hublink.HubConnection` wraps it.
#[pyclass(module = "hublink._native", frozen)]
pub struct HubConnection {
    core: hublink::HubConnection,
    event_loop: Arc<LoopOf>,
}

fn seconds(value: &Bound<'_, PyAny>, name: &str) -> PyResult<Duration> {
    Duration::try_from_secs_f64(value.extract()?).map_err(|_| {
        PyValueError::new_err(format!("{name} must be a non-negative number of seconds"))
    })
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
}

/// Completes the asyncio `future` on `bridge`'s loop with a core outcome.
fn resolve(bridge: Arc<BridgeInner>, future: Py<PyAny>, outcome: Result<Value, Error>) {
    bridge.resolve(future, move |py| match outcome {
        Ok(value) => to_py(py, value),
        Err(error) => Err(to_py_err(py, error)),
    });
}

/// Runs a core operation on the shared runtime and completes `future` with its outcome.
fn run(
    bridge: Arc<BridgeInner>,
    future: Py<PyAny>,
    op: impl std::future::Future<Output = Result<(), Error>> + Send + 'static,
) {
    SharedRuntime::handle().spawn(async move {
        let outcome = op.await.map(|()| Value::Null);
        resolve(bridge, future, outcome);
    });
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
    UploadStream::from_values(items)
}

#[pymethods]
impl HubConnection {
    /// `options` are the keyword arguments `hublink.HubConnectionBuilder` collects (see
    /// `_native.pyi`); durations in seconds.
    #[new]
    #[pyo3(signature = (url, **options))]
    fn new(py: Python<'_>, url: String, options: Option<&Bound<'_, PyDict>>) -> PyResult<Self> {
        let event_loop = Arc::new(LoopOf::default());
        let mut o = ConnectionOptions::new(url);
        let core_error = |e| to_py_err(py, e);
        for (key, value) in options.into_iter().flatten() {
            let key: String = key.extract()?;
            match key.as_str() {
                "messagepack" if value.is_truthy()? => o.protocol = HubProtocol::MessagePack,
                "messagepack" => o.protocol = HubProtocol::Json,
                "transports" => {
                    let names: Vec<String> = value.extract()?;
                    o.transports = hublink::parse_transports(names).map_err(core_error)?;
                }
                "headers" => o.headers = value.extract()?,
                "skip_negotiation" => o.skip_negotiation = value.extract()?,
                "server_timeout" => o.server_timeout = seconds(&value, &key)?,
                "keep_alive_interval" => o.keep_alive_interval = seconds(&value, &key)?,
                "handshake_timeout" => o.handshake_timeout = seconds(&value, &key)?,
                "http_timeout" => o.http_timeout = seconds(&value, &key)?,
                "max_message_size" => o.max_message_size = value.extract()?,
                "stream_buffer_capacity" => o.stream_buffer_capacity = value.extract()?,
                "automatic_reconnect" if value.is_truthy()? => {
                    o.retry_policy = Some(Arc::new(DefaultRetryPolicy::default()));
                }
                "reconnect_delays" => {
                    let delays = value
                        .try_iter()?
                        .map(|d| seconds(&d?, "a reconnect delay"))
                        .collect::<PyResult<Vec<_>>>()?;
                    o.retry_policy = Some(Arc::new(DefaultRetryPolicy::with_delays(delays)));
                }
                "retry_policy" => {
                    o.retry_policy = Some(Arc::new(PythonRetryPolicy(value.unbind())));
                }
                "retry_on_start" => o.retry_on_start = value.extract()?,
                "stateful_reconnect" => o.stateful_reconnect = value.extract()?,
                "stateful_reconnect_buffer_size" => {
                    o.stateful_reconnect = true;
                    o.stateful_reconnect_buffer_size = value.extract()?;
                }
                "message_content_logging" => o.log_message_content = value.extract()?,
                "root_certificates_pem" => o.tls_root_certificates_pem = value.extract()?,
                "client_certificate_pem" => o.tls_client_certificate_pem = Some(value.extract()?),
                "danger_accept_invalid_certs" => o.danger_accept_invalid_certs = value.extract()?,
                // `None`: no proxy, whatever the environment says; absent: the environment's.
                "proxy" => {
                    o.proxy = match value.extract::<Option<(String, String)>>()? {
                        Some((url, no_proxy)) => hublink::Proxy::Url { url, no_proxy },
                        None => hublink::Proxy::Disabled,
                    }
                }
                "access_token_factory" => {
                    let factory = Arc::new(value.unbind());
                    let event_loop = event_loop.clone();
                    o.access_token_factory = Some(Arc::new(move || {
                        let (factory, bridge) = (factory.clone(), event_loop.get());
                        Box::pin(async move {
                            let bridge = bridge.ok_or("the connection has no event loop")?;
                            match call_on_loop(&bridge, factory, Vec::new()).await {
                                Answer::Value(Value::String(token)) => Ok(Some(token)),
                                Answer::Value(Value::Null) => Ok(None),
                                Answer::Value(_) => Err("it must return a str or None".into()),
                                Answer::Error(e) => Err(e),
                                Answer::End => Err("it returned nothing".into()),
                            }
                        })
                    }));
                }
                "automatic_reconnect" => {}
                other => return Err(PyTypeError::new_err(format!("unknown option '{other}'"))),
            }
        }
        let core = hublink::HubConnection::new(o).map_err(core_error)?;
        Ok(HubConnection { core, event_loop })
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
        *self.event_loop.0.lock().expect("loop") = Some(bridge.clone());
        let core = self.core.clone();
        run(bridge, future, async move { core.start().await });
    }

    fn stop(&self, bridge: &Bound<'_, Bridge>, future: Py<PyAny>) {
        let core = self.core.clone();
        run(
            bridge.get().inner(),
            future,
            async move { core.stop().await },
        );
    }

    #[pyo3(signature = (bridge, future, method, args, traceparent=None, tracestate=None))]
    #[allow(clippy::too_many_arguments)]
    fn invoke(
        &self,
        py: Python<'_>,
        bridge: &Bound<'_, Bridge>,
        future: Py<PyAny>,
        method: &str,
        args: &Bound<'_, PyTuple>,
        traceparent: Option<&str>,
        tracestate: Option<&str>,
    ) -> PyResult<()> {
        let trace = trace_context(py, traceparent, tracestate)?;
        let bridge = bridge.get().inner();
        let arguments = self.arguments(&bridge, args)?;
        with_caller_trace(trace, || {
            self.core.invoke_then(method, arguments, move |outcome| {
                resolve(bridge, future, outcome)
            })
        });
        Ok(())
    }

    #[pyo3(signature = (bridge, future, method, args, traceparent=None, tracestate=None))]
    #[allow(clippy::too_many_arguments)]
    fn send(
        &self,
        py: Python<'_>,
        bridge: &Bound<'_, Bridge>,
        future: Py<PyAny>,
        method: &str,
        args: &Bound<'_, PyTuple>,
        traceparent: Option<&str>,
        tracestate: Option<&str>,
    ) -> PyResult<()> {
        let trace = trace_context(py, traceparent, tracestate)?;
        let bridge = bridge.get().inner();
        let arguments = self.arguments(&bridge, args)?;
        with_caller_trace(trace, || {
            self.core.send_then(method, arguments, move |outcome| {
                resolve(bridge, future, outcome.map(|()| Value::Null))
            })
        });
        Ok(())
    }

    /// A server-to-client stream, submitted now.
    #[pyo3(signature = (bridge, method, args, traceparent=None, tracestate=None))]
    fn stream(
        &self,
        py: Python<'_>,
        bridge: &Bound<'_, Bridge>,
        method: &str,
        args: &Bound<'_, PyTuple>,
        traceparent: Option<&str>,
        tracestate: Option<&str>,
    ) -> PyResult<StreamReader> {
        let trace = trace_context(py, traceparent, tracestate)?;
        let bridge = bridge.get().inner();
        let arguments = self.arguments(&bridge, args)?;
        let stream = with_caller_trace(trace, || self.core.stream_value(method, arguments))
            .map_err(|e| to_py_err(py, e))?;
        Ok(StreamReader::new(stream))
    }

    /// Registers `handler` for `method`. With `result`, what it returns (or raises) answers
    /// the server's client-result requests; without, it returns nothing to the server.
    fn on(&self, method: &str, handler: Py<PyAny>, result: bool) {
        self.core.add_handler(
            method,
            Arc::new(PythonHandler {
                callable: Arc::new(handler),
                returns_result: result,
                event_loop: self.event_loop.clone(),
            }),
        );
    }

    /// Removes `handler` from `method`, or every handler of `method` without one.
    #[pyo3(signature = (method, handler = None))]
    fn off(&self, method: &str, handler: Option<&Bound<'_, PyAny>>) {
        let Some(handler) = handler else {
            self.core.off(method);
            return;
        };
        for (id, registered) in self.core.handlers(method) {
            let registered: &dyn std::any::Any = &*registered;
            if let Some(ours) = registered.downcast_ref::<PythonHandler>() {
                if ours.callable.as_ptr() == handler.as_ptr() {
                    self.core.remove_handler(id);
                }
            }
        }
    }

    /// Calls `callback(arg)` on the loop for each `event`: `"close"` (the error, `None` after
    /// `stop()`), `"reconnecting"` (the error) or `"reconnected"` (the new connection id).
    fn on_event(&self, event: String, callback: Py<PyAny>) -> PyResult<()> {
        if !["close", "reconnecting", "reconnected"].contains(&event.as_str()) {
            return Err(PyValueError::new_err(format!("unknown event '{event}'")));
        }
        let (callback, event_loop) = (Arc::new(callback), self.event_loop.clone());
        self.core.on_event(move |happened| {
            let Some(bridge) = event_loop.get().filter(|_| happened.name() == event) else {
                return;
            };
            let (callback, happened) = (callback.clone(), happened.clone());
            bridge.post(Box::new(move |py| {
                let arg = match (happened.error(), happened.connection_id()) {
                    (Some(e), _) => to_py_err(py, e.clone()).into_value(py).into_any(),
                    (_, Some(id)) => PyString::new(py, id).into_any().unbind(),
                    _ => py.None(),
                };
                match PyTuple::new(py, [arg]) {
                    Ok(args) => call_python(py, callback.bind(py), args, None),
                    Err(e) => e.write_unraisable(py, None),
                }
            }));
        });
        Ok(())
    }

    fn __repr__(&self) -> String {
        format!("{:?}", self.core)
    }
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

/// The caller's W3C trace context (made by the Python layer from the current OpenTelemetry
/// span), checked.
fn trace_context(
    py: Python<'_>,
    traceparent: Option<&str>,
    tracestate: Option<&str>,
) -> PyResult<Option<TraceContext>> {
    traceparent
        .map(|parent| TraceContext::new(parent, tracestate))
        .transpose()
        .map_err(|e| to_py_err(py, e))
}

/// Runs `call` inside the caller's trace context, if there is one.
fn with_caller_trace<R>(trace: Option<TraceContext>, call: impl FnOnce() -> R) -> R {
    match trace {
        Some(context) => hublink::with_trace_context(context, call),
        None => call(),
    }
}
