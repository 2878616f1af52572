//! hublink for the browser: the core's binding contract (`ConnectionOptions`, `HubConnection`,
//! `HubStream`, `UploadStream`, `Handler`, `ConnectionEvent`, `Value`, `Error`) through
//! wasm-bindgen, as `RawConnection`. The npm package's `index.js` wraps it in the API of
//! `@microsoft/signalr` (builder, `subscribe`, error classes). Nothing here decides protocol
//! behaviour: it converts JavaScript values and calls to the core's and back.
#![cfg(target_arch = "wasm32")]

use std::sync::Arc;
use std::time::Duration;

use futures_util::stream;
use hublink::{
    Argument, Arguments, BoxFuture, ConnectionEvent, ConnectionOptions, Error, Handler, HandlerId,
    HandlerOutcome, HubConnection, HubProtocol, Payload, RetryContext, RetryPolicy, StreamCancel,
    Timestamp, UploadStream, Value,
};
use js_sys::{Array, ArrayBuffer, Date, Function, Object, Promise, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::{future_to_promise, spawn_local, JsFuture};

/// How many stream items are read from the core at a time.
const STREAM_BATCH: usize = 256;

/// The largest integer a JavaScript number holds exactly.
const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_991.0;

/// A core error as a JavaScript `Error` with `kind` (the core's error kind) and, when an HTTP
/// answer caused it, `statusCode`; `index.js` turns it into the official error classes.
fn js_error(error: &Error) -> JsValue {
    let js = js_sys::Error::new(&error.to_string());
    let _ = Reflect::set(&js, &"kind".into(), &error.kind().name().into());
    if let Some(status) = error.status() {
        let _ = Reflect::set(&js, &"statusCode".into(), &f64::from(status).into());
    }
    js.into()
}

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = console, js_name = error)]
    fn console_error(value: &JsValue);
}

fn type_error(message: &str) -> JsValue {
    js_sys::TypeError::new(message).into()
}

/// The text of a thrown JavaScript value, as a handler's or an upload's error.
fn js_text(value: &JsValue) -> String {
    if let Some(error) = value.dyn_ref::<js_sys::Error>() {
        return format!(
            "{}: {}",
            String::from(error.name()),
            String::from(error.message())
        );
    }
    value
        .as_string()
        .unwrap_or_else(|| String::from(js_sys::JSON::stringify(value).unwrap_or_default()))
}

fn get(object: &JsValue, key: &str) -> JsValue {
    Reflect::get(object, &key.into()).unwrap_or(JsValue::UNDEFINED)
}

fn is_set(value: &JsValue) -> bool {
    !value.is_undefined() && !value.is_null()
}

/// A JavaScript value as a core [`Value`]: integral numbers become `Int`, others `F64`;
/// `Uint8Array`/`ArrayBuffer` `Binary`; `Date` `Timestamp`; arrays `Array`; `Map`s and plain
/// objects `Map` (object properties that are `undefined` are left out, as `JSON.stringify`
/// does).
pub fn to_value(js: &JsValue) -> Result<Value, JsValue> {
    if js.is_null() || js.is_undefined() {
        return Ok(Value::Null);
    }
    if let Some(b) = js.as_bool() {
        return Ok(Value::Bool(b));
    }
    if let Some(n) = js.as_f64() {
        return Ok(if n.fract() == 0.0 && n.abs() <= MAX_SAFE_INTEGER {
            Value::Int(n as i64)
        } else {
            Value::F64(n)
        });
    }
    if let Some(s) = js.as_string() {
        return Ok(Value::String(s));
    }
    if js.is_bigint() {
        let text = String::from(
            js.unchecked_ref::<js_sys::BigInt>()
                .to_string(10)
                .map_err(|e| type_error(&js_text(&e.into())))?,
        );
        if let Ok(n) = text.parse::<i64>() {
            return Ok(Value::Int(n));
        }
        return text
            .parse::<u64>()
            .map(Value::UInt)
            .map_err(|_| type_error("a BigInt beyond 64 bits cannot be sent"));
    }
    if let Some(bytes) = js.dyn_ref::<Uint8Array>() {
        return Ok(Value::Binary(bytes.to_vec()));
    }
    if let Some(buffer) = js.dyn_ref::<ArrayBuffer>() {
        return Ok(Value::Binary(Uint8Array::new(buffer).to_vec()));
    }
    if let Some(date) = js.dyn_ref::<Date>() {
        let ms = date.get_time();
        if ms.is_nan() {
            return Err(type_error("an invalid Date cannot be sent"));
        }
        let seconds = (ms / 1000.0).floor();
        let nanoseconds = ((ms - seconds * 1000.0) * 1_000_000.0).round() as u32;
        return Timestamp::new(seconds as i64, nanoseconds.min(999_999_999))
            .map(Value::Timestamp)
            .ok_or_else(|| type_error("a Date out of range cannot be sent"));
    }
    if Array::is_array(js) {
        let array: &Array = js.unchecked_ref();
        return array
            .iter()
            .map(|item| to_value(&item))
            .collect::<Result<_, _>>()
            .map(Value::Array);
    }
    if let Some(map) = js.dyn_ref::<js_sys::Map>() {
        let mut entries = Vec::with_capacity(map.size() as usize);
        for entry in map.entries() {
            let entry: Array = entry?.unchecked_into();
            entries.push((to_value(&entry.get(0))?, to_value(&entry.get(1))?));
        }
        return Ok(Value::Map(entries));
    }
    if js.is_function() || js.is_symbol() {
        return Err(type_error("functions and symbols cannot be sent"));
    }
    if js.is_object() {
        let mut entries = Vec::new();
        for entry in Object::entries(js.unchecked_ref()).iter() {
            let entry: Array = entry.unchecked_into();
            let value = entry.get(1);
            if value.is_undefined() {
                continue;
            }
            let key = entry.get(0).as_string().unwrap_or_default();
            entries.push((Value::String(key), to_value(&value)?));
        }
        return Ok(Value::Map(entries));
    }
    Err(type_error("this value cannot be sent"))
}

/// A core [`Value`] as a JavaScript value: numbers, `Uint8Array`, `Date`, arrays; maps with
/// string keys as plain objects, others as `Map`; other MessagePack extensions as
/// `{ type, data }`.
pub fn from_value(value: &Value) -> JsValue {
    match value {
        Value::Null => JsValue::NULL,
        Value::Bool(b) => (*b).into(),
        Value::Int(n) => (*n as f64).into(),
        Value::UInt(n) => (*n as f64).into(),
        Value::F32(n) => f64::from(*n).into(),
        Value::F64(n) => (*n).into(),
        Value::String(s) => s.into(),
        Value::Binary(bytes) => Uint8Array::from(bytes.as_slice()).into(),
        Value::Array(items) => items.iter().map(from_value).collect::<Array>().into(),
        Value::Map(entries) if entries.iter().all(|(k, _)| matches!(k, Value::String(_))) => {
            let object = Object::new();
            for (key, item) in entries {
                if let Value::String(key) = key {
                    let _ = Reflect::set(&object, &key.into(), &from_value(item));
                }
            }
            object.into()
        }
        Value::Map(entries) => {
            let map = js_sys::Map::new();
            for (key, item) in entries {
                map.set(&from_value(key), &from_value(item));
            }
            map.into()
        }
        Value::Timestamp(t) => {
            let ms = t.seconds() as f64 * 1000.0 + f64::from(t.nanoseconds()) / 1_000_000.0;
            Date::new(&ms.into()).into()
        }
        Value::Extension(kind, data) => {
            let object = Object::new();
            let _ = Reflect::set(&object, &"type".into(), &f64::from(*kind).into());
            let _ = Reflect::set(&object, &"data".into(), &Uint8Array::from(data.as_slice()));
            object.into()
        }
    }
}

/// Awaits `value` if it is a promise.
async fn settle(value: JsValue) -> Result<JsValue, JsValue> {
    match value.dyn_into::<Promise>() {
        Ok(promise) => JsFuture::from(promise).await,
        Err(value) => Ok(value),
    }
}

/// The call's arguments: values, and async iterables as upload streams.
fn arguments(args: &Array) -> Result<Vec<Argument>, JsValue> {
    let async_iterator = js_sys::Symbol::async_iterator();
    args.iter()
        .map(|arg| {
            if arg.is_object() && get_symbol(&arg, &async_iterator).is_function() {
                upload(&arg).map(Argument::Stream)
            } else {
                to_value(&arg).map(|v| Argument::Value(Payload::Value(v)))
            }
        })
        .collect()
}

fn get_symbol(object: &JsValue, symbol: &js_sys::Symbol) -> JsValue {
    Reflect::get(object, symbol).unwrap_or(JsValue::UNDEFINED)
}

/// An async iterable as an upload stream: its items until it ends, or its error.
fn upload(iterable: &JsValue) -> Result<UploadStream, JsValue> {
    let make: Function = get_symbol(iterable, &js_sys::Symbol::async_iterator()).unchecked_into();
    let iterator = make.call0(iterable)?;
    let items = stream::unfold(Some(iterator), |iterator| async move {
        let iterator = iterator?;
        let next = match get(&iterator, "next").dyn_into::<Function>() {
            Ok(next) => next,
            Err(_) => return Some((Err("the iterator has no next()".to_owned()), None)),
        };
        let step = match next.call0(&iterator) {
            Ok(step) => settle(step).await,
            Err(e) => Err(e),
        };
        match step {
            Err(e) => Some((Err(js_text(&e)), None)),
            Ok(step) if get(&step, "done").is_truthy() => None,
            Ok(step) => match to_value(&get(&step, "value")) {
                Ok(value) => Some((Ok(value), Some(iterator))),
                Err(e) => Some((Err(js_text(&e)), None)),
            },
        }
    });
    Ok(UploadStream::from_values(items))
}

/// A JavaScript function as a handler: its arguments spread, its return value (awaited when a
/// promise; `undefined` answers nothing) answers client-result calls, what it throws fails
/// them.
struct JsHandler(Function);

impl Handler for JsHandler {
    fn call(&self, arguments: Arguments) -> BoxFuture<'static, HandlerOutcome> {
        let function = self.0.clone();
        Box::pin(async move {
            let values = match arguments.values() {
                Ok(values) => values,
                Err(e) => return HandlerOutcome::Failed(e.to_string()),
            };
            let args: Array = values.iter().map(from_value).collect();
            let returned = match function.apply(&JsValue::NULL, &args) {
                Ok(returned) => settle(returned).await,
                Err(e) => Err(e),
            };
            match returned {
                Err(e) => HandlerOutcome::Failed(js_text(&e)),
                Ok(value) if value.is_undefined() => HandlerOutcome::NoResult,
                Ok(value) => match to_value(&value) {
                    Ok(value) => HandlerOutcome::Result(Payload::Value(value)),
                    Err(e) => HandlerOutcome::Failed(js_text(&e)),
                },
            }
        })
    }
}

/// A JavaScript `IRetryPolicy`: `nextRetryDelayInMilliseconds({ previousRetryCount,
/// elapsedMilliseconds, retryReason })` returns a delay or `null` to give up.
struct JsRetryPolicy(JsValue);

impl RetryPolicy for JsRetryPolicy {
    fn next_retry_delay(&self, context: &RetryContext) -> Option<Duration> {
        let next: Function = get(&self.0, "nextRetryDelayInMilliseconds")
            .dyn_into()
            .ok()?;
        let argument = Object::new();
        let _ = Reflect::set(
            &argument,
            &"previousRetryCount".into(),
            &(context.previous_retry_count as f64).into(),
        );
        let _ = Reflect::set(
            &argument,
            &"elapsedMilliseconds".into(),
            &(context.elapsed.as_millis() as f64).into(),
        );
        let _ = Reflect::set(
            &argument,
            &"retryReason".into(),
            &js_error(&context.retry_reason),
        );
        let delay = next.call1(&self.0, &argument).ok()?.as_f64()?;
        (delay >= 0.0).then(|| Duration::from_millis(delay as u64))
    }
}

fn duration_option(options: &JsValue, key: &str) -> Option<Duration> {
    get(options, key)
        .as_f64()
        .filter(|ms| *ms >= 0.0)
        .map(|ms| Duration::from_millis(ms as u64))
}

/// The options object `index.js` builds from the builder's calls.
fn connection_options(options: &JsValue) -> Result<ConnectionOptions, JsValue> {
    let url = get(options, "url")
        .as_string()
        .ok_or_else(|| type_error("url must be a string"))?;
    let mut result = ConnectionOptions::new(url);
    let transport = get(options, "transport");
    if let Some(mask) = transport.as_f64() {
        result.transports =
            hublink::parse_transports([(mask as u32).to_string()]).map_err(|e| js_error(&e))?;
    } else if let Some(name) = transport.as_string() {
        result.transports = hublink::parse_transports([name]).map_err(|e| js_error(&e))?;
    } else if Array::is_array(&transport) {
        let names: Vec<String> = Array::from(&transport)
            .iter()
            .map(|name| {
                name.as_string()
                    .or_else(|| name.as_f64().map(|n| (n as u32).to_string()))
            })
            .collect::<Option<_>>()
            .ok_or_else(|| type_error("transport must be names or HttpTransportType values"))?;
        result.transports = hublink::parse_transports(names).map_err(|e| js_error(&e))?;
    }
    result.protocol = match get(options, "protocol").as_string().as_deref() {
        None | Some("json") => HubProtocol::Json,
        Some("messagepack") => HubProtocol::MessagePack,
        Some(other) => return Err(type_error(&format!("unknown hub protocol {other:?}"))),
    };
    result.skip_negotiation = get(options, "skipNegotiation").is_truthy();
    let credentials = get(options, "withCredentials");
    result.with_credentials = !is_set(&credentials) || credentials.is_truthy();
    let headers = get(options, "headers");
    if is_set(&headers) {
        for entry in Object::entries(headers.unchecked_ref()).iter() {
            let entry: Array = entry.unchecked_into();
            if let (Some(name), Some(value)) = (entry.get(0).as_string(), entry.get(1).as_string())
            {
                result.headers.push((name, value));
            }
        }
    }
    if let Ok(factory) = get(options, "accessTokenFactory").dyn_into::<Function>() {
        result.access_token_factory = Some(Arc::new(
            move || -> BoxFuture<'static, Result<Option<String>, String>> {
                let factory = factory.clone();
                Box::pin(async move {
                    let token = match factory.call0(&JsValue::NULL) {
                        Ok(token) => settle(token).await.map_err(|e| js_text(&e))?,
                        Err(e) => return Err(js_text(&e)),
                    };
                    Ok(token.as_string())
                })
            },
        ));
    }
    let policy = get(options, "retryPolicy");
    let delays = get(options, "retryDelays");
    if is_set(&policy) {
        result.retry_policy = Some(Arc::new(JsRetryPolicy(policy)));
    } else if delays.is_null() {
        // `withAutomaticReconnect()` without arguments: the core's official delays.
        result.retry_policy = Some(Arc::new(hublink::DefaultRetryPolicy::default()));
    } else if let Some(delays) = delays.dyn_ref::<Array>() {
        let delays = delays
            .iter()
            .map(|d| Duration::from_millis(d.as_f64().unwrap_or(0.0).max(0.0) as u64));
        result.retry_policy = Some(Arc::new(hublink::DefaultRetryPolicy::with_delays(delays)));
    }
    result.stateful_reconnect = get(options, "statefulReconnect").is_truthy();
    if let Some(size) = get(options, "statefulReconnectBufferSize").as_f64() {
        result.stateful_reconnect_buffer_size = size as usize;
    }
    if let Some(d) = duration_option(options, "serverTimeoutInMilliseconds") {
        result.server_timeout = d;
    }
    if let Some(d) = duration_option(options, "keepAliveIntervalInMilliseconds") {
        result.keep_alive_interval = d;
    }
    if let Some(d) = duration_option(options, "timeout") {
        result.http_timeout = d;
    }
    Ok(result)
}

/// One connection: the core's [`HubConnection`] with JavaScript values.
#[wasm_bindgen]
pub struct RawConnection {
    inner: HubConnection,
}

#[wasm_bindgen]
impl RawConnection {
    /// A connection with the options `index.js` collected (see `connection_options`).
    #[wasm_bindgen(constructor)]
    pub fn new(options: JsValue) -> Result<RawConnection, JsValue> {
        let options = connection_options(&options)?;
        let inner = HubConnection::new(options).map_err(|e| js_error(&e))?;
        Ok(RawConnection { inner })
    }

    /// Starts the connection.
    pub fn start(&self) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            inner.start().await.map_err(|e| js_error(&e))?;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// Stops the connection.
    pub fn stop(&self) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            inner.stop().await.map_err(|e| js_error(&e))?;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// Calls `method` now; the promise resolves with its result.
    pub fn invoke(&self, method: &str, args: Array) -> Result<Promise, JsValue> {
        let call = self.inner.invoke_value(method, arguments(&args)?);
        Ok(future_to_promise(async move {
            let value = call.await.map_err(|e| js_error(&e))?;
            Ok(from_value(&value))
        }))
    }

    /// Sends `method` now; the promise resolves once it was written.
    pub fn send(&self, method: &str, args: Array) -> Result<Promise, JsValue> {
        let call = self.inner.send(method, arguments(&args)?);
        Ok(future_to_promise(async move {
            call.await.map_err(|e| js_error(&e))?;
            Ok(JsValue::UNDEFINED)
        }))
    }

    /// Starts a server stream: `next` per item, then `complete()` or `error(e)`.
    pub fn stream(
        &self,
        method: &str,
        args: Array,
        next: Function,
        error: Function,
        complete: Function,
    ) -> Result<RawSubscription, JsValue> {
        let mut items = self
            .inner
            .stream_value(method, arguments(&args)?)
            .map_err(|e| js_error(&e))?;
        let cancel = items.cancel_handle();
        spawn_local(async move {
            loop {
                match items.next_batch(STREAM_BATCH).await {
                    Ok(batch) if batch.is_empty() => {
                        let _ = complete.call0(&JsValue::NULL);
                        break;
                    }
                    Ok(batch) => {
                        for item in &batch {
                            let _ = next.call1(&JsValue::NULL, &from_value(item));
                        }
                    }
                    Err(e) => {
                        let _ = error.call1(&JsValue::NULL, &js_error(&e));
                        break;
                    }
                }
            }
        });
        Ok(RawSubscription { cancel })
    }

    /// Adds a handler for `method`; returns its id for `removeHandler`.
    pub fn on(&self, method: &str, handler: Function) -> f64 {
        self.inner
            .add_handler(method, Arc::new(JsHandler(handler)))
            .as_u64() as f64
    }

    /// Removes the handler with this id.
    #[wasm_bindgen(js_name = removeHandler)]
    pub fn remove_handler(&self, id: f64) -> bool {
        self.inner.remove_handler(HandlerId::from_u64(id as u64))
    }

    /// Removes every handler of `method`.
    pub fn off(&self, method: &str) {
        self.inner.off(method);
    }

    /// Calls `listener(argument)` for each lifecycle event named `name` (`"close"`,
    /// `"reconnecting"`, `"reconnected"`), after the listeners registered before it (the
    /// core's order): the error of a close or reconnecting (`undefined` if none), the new
    /// connection id of a reconnected. What the listener throws is logged to the console.
    #[wasm_bindgen(js_name = onEvent)]
    pub fn on_event(&self, name: String, listener: Function) {
        self.inner.on_event(move |event: &ConnectionEvent| {
            if event.name() != name {
                return;
            }
            let argument = match event.connection_id() {
                Some(id) => JsValue::from(id),
                None => event.error().map_or(JsValue::UNDEFINED, js_error),
            };
            if let Err(thrown) = listener.call1(&JsValue::NULL, &argument) {
                console_error(&thrown);
            }
        });
    }

    /// `"Disconnected"`, `"Connecting"`, `"Connected"`, `"Disconnecting"` or `"Reconnecting"`.
    #[wasm_bindgen(getter)]
    pub fn state(&self) -> String {
        self.inner.state().to_string()
    }

    /// The connection id while connected (none with `skipNegotiation`).
    #[wasm_bindgen(getter, js_name = connectionId)]
    pub fn connection_id(&self) -> Option<String> {
        self.inner.connection_id()
    }

    /// The name of the transport in use, while connected.
    #[wasm_bindgen(getter)]
    pub fn transport(&self) -> Option<String> {
        self.inner.transport().map(|kind| kind.to_string())
    }
}

/// A running server stream; `dispose()` cancels it on the server.
#[wasm_bindgen]
pub struct RawSubscription {
    cancel: StreamCancel,
}

#[wasm_bindgen]
impl RawSubscription {
    /// Cancels the stream.
    pub fn dispose(&self) {
        self.cancel.cancel();
    }
}
