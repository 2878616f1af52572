//! Client methods the server can call: registration, and running them for one invocation
//! with the official client's rules for client results.

use std::any::Any;
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use futures_util::FutureExt;
use serde::Serialize;

use super::arguments::{Arguments, FromArguments};
use crate::maybe_send::{BoxFuture, MaybeSend, MaybeSync};
use crate::protocol::{CompletionOutcome, HubProtocol, Payload};

/// The official text when a client result was expected but no handler gave one.
pub const NO_RESULT: &str = "Client didn't provide a result.";

/// The official text when several handlers of one method returned a result.
pub const MULTIPLE_RESULTS: &str = "Client provided multiple results.";

/// What one handler call produced.
#[derive(Debug)]
pub enum HandlerOutcome {
    /// The handler returned nothing.
    NoResult,
    /// The handler returned a value (a client result).
    Result(Payload),
    /// The handler failed.
    Failed(String),
}

/// What a handler may return: `()` (no result), or `Result<T, E>` — a client result the
/// server awaits, or an error sent back to it.
pub trait HandlerOutput {
    /// Converts the handler's return value.
    fn into_outcome(self, protocol: HubProtocol) -> HandlerOutcome;
}

impl HandlerOutput for () {
    fn into_outcome(self, _: HubProtocol) -> HandlerOutcome {
        HandlerOutcome::NoResult
    }
}

impl<T: Serialize, E: fmt::Display> HandlerOutput for Result<T, E> {
    fn into_outcome(self, protocol: HubProtocol) -> HandlerOutcome {
        match self {
            Ok(value) => match protocol.payload(&value) {
                Ok(payload) => HandlerOutcome::Result(payload),
                Err(e) => HandlerOutcome::Failed(e.to_string()),
            },
            Err(e) => HandlerOutcome::Failed(e.to_string()),
        }
    }
}

/// `Some(value)` answers with a client result; `None` answers nothing (for handlers that
/// decide at run time, like the bindings' dynamic ones).
impl<T: Serialize> HandlerOutput for Option<T> {
    fn into_outcome(self, protocol: HubProtocol) -> HandlerOutcome {
        match self {
            Some(value) => Ok::<T, std::convert::Infallible>(value).into_outcome(protocol),
            None => HandlerOutcome::NoResult,
        }
    }
}

/// A handler may also decide the outcome itself.
impl HandlerOutput for HandlerOutcome {
    fn into_outcome(self, _: HubProtocol) -> HandlerOutcome {
        self
    }
}

/// Identifies one registered handler, to remove just that one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HandlerId(u64);

impl HandlerId {
    /// The id as a number (unique within its connection), for bindings.
    pub fn as_u64(self) -> u64 {
        self.0
    }

    /// The id a number from [`as_u64`](Self::as_u64) stands for.
    pub fn from_u64(id: u64) -> Self {
        HandlerId(id)
    }
}

/// A client method the server can call, as an object: what bindings register for their
/// languages' callables, and what [`HubConnection::on`](crate::HubConnection::on) makes of a
/// closure.
///
/// A handler may finish at once (return a ready future) or later. What it returns answers
/// the server when the server awaits a client result ([`HandlerOutcome::NoResult`] answers
/// nothing; then the official "Client didn't provide a result." goes back). Several handlers
/// may serve one method; they run one after another, each awaited, in registration order.
///
/// ```
/// use hublink::{Arguments, BoxFuture, Handler, HandlerOutcome, Payload, Value};
///
/// /// Answers every call with the number of arguments it got.
/// struct CountArguments;
///
/// impl Handler for CountArguments {
///     fn call(&self, arguments: Arguments) -> BoxFuture<'static, HandlerOutcome> {
///         let count = Value::from_u64(arguments.len() as u64);
///         Box::pin(async move { HandlerOutcome::Result(Payload::Value(count)) })
///     }
/// }
/// ```
pub trait Handler: MaybeSend + MaybeSync + Any {
    /// Runs the handler for one invocation of its method.
    fn call(&self, arguments: Arguments) -> BoxFuture<'static, HandlerOutcome>;
}

/// A typed closure as a [`Handler`].
struct ClosureHandler<A, F> {
    handler: F,
    arguments: PhantomData<fn(A)>,
}

impl<A, F, Fut, O> Handler for ClosureHandler<A, F>
where
    A: FromArguments + 'static,
    F: Fn(A) -> Fut + MaybeSend + MaybeSync + 'static,
    Fut: Future<Output = O> + MaybeSend + 'static,
    O: HandlerOutput + 'static,
{
    fn call(&self, arguments: Arguments) -> BoxFuture<'static, HandlerOutcome> {
        let protocol = arguments.protocol;
        match A::from_arguments(arguments) {
            Ok(args) => boxed((self.handler)(args).map(move |out| out.into_outcome(protocol))),
            Err(e) => boxed(futures_util::future::ready(HandlerOutcome::Failed(
                e.to_string(),
            ))),
        }
    }
}

#[cfg(not(target_arch = "wasm32"))]
fn boxed<F: Future + Send + 'static>(future: F) -> BoxFuture<'static, F::Output> {
    future.boxed()
}

#[cfg(target_arch = "wasm32")]
fn boxed<F: Future + 'static>(future: F) -> BoxFuture<'static, F::Output> {
    future.boxed_local()
}

/// Wraps a typed async handler into the form the registry stores.
pub(crate) fn erase<A, F, Fut, O>(handler: F) -> Arc<dyn Handler>
where
    A: FromArguments + 'static,
    F: Fn(A) -> Fut + MaybeSend + MaybeSync + 'static,
    Fut: Future<Output = O> + MaybeSend + 'static,
    O: HandlerOutput + 'static,
{
    Arc::new(ClosureHandler {
        handler,
        arguments: PhantomData,
    })
}

/// The handlers of one method, in registration order.
type MethodHandlers = Vec<(HandlerId, Arc<dyn Handler>)>;

/// The registered client methods, by lower-cased name (the official clients match method
/// names case-insensitively).
#[derive(Default)]
pub(crate) struct Handlers {
    methods: RwLock<HashMap<String, MethodHandlers>>,
    next_id: AtomicU64,
}

impl Handlers {
    pub(crate) fn add(&self, method: &str, handler: Arc<dyn Handler>) -> HandlerId {
        let id = HandlerId(self.next_id.fetch_add(1, Ordering::Relaxed));
        self.methods
            .write()
            .expect("handler lock")
            .entry(method.to_lowercase())
            .or_default()
            .push((id, handler));
        id
    }

    pub(crate) fn remove_all(&self, method: &str) {
        self.methods
            .write()
            .expect("handler lock")
            .remove(&method.to_lowercase());
    }

    /// Removes the handler `id`; whether it was registered.
    pub(crate) fn remove(&self, id: HandlerId) -> bool {
        let mut methods = self.methods.write().expect("handler lock");
        let Some(key) = methods
            .iter()
            .find(|(_, list)| list.iter().any(|(h, _)| *h == id))
            .map(|(key, _)| key.clone())
        else {
            return false;
        };
        let list = methods.get_mut(&key).expect("the method found");
        list.retain(|(h, _)| *h != id);
        if list.is_empty() {
            methods.remove(&key);
        }
        true
    }

    /// The handlers of `method`, in registration order.
    pub(crate) fn of(&self, method: &str) -> MethodHandlers {
        self.methods
            .read()
            .expect("handler lock")
            .get(&method.to_lowercase())
            .cloned()
            .unwrap_or_default()
    }

    /// Runs every handler of `method` in registration order, each awaited, over a snapshot
    /// of the list (a handler that unsubscribes does not change the current call). Returns
    /// the Completion outcome to send when the server expects a result.
    pub(crate) async fn dispatch(
        &self,
        method: &str,
        arguments: Arguments,
        expects_result: bool,
    ) -> Option<CompletionOutcome> {
        let handlers = self.of(method);
        if handlers.is_empty() {
            tracing::warn!("No client method with the name '{method}' found.");
            return expects_result.then(|| CompletionOutcome::Error(NO_RESULT.into()));
        }
        let mut result: Option<Payload> = None;
        let mut failure: Option<String> = None;
        let mut multiple = false;
        for (_, handler) in handlers {
            let previous = result.take();
            match handler.call(arguments.clone()).await {
                HandlerOutcome::NoResult => failure = None,
                HandlerOutcome::Result(payload) => {
                    if expects_result && previous.is_some() {
                        tracing::error!(
                            "Multiple results provided for '{method}'. Sending error to server."
                        );
                        multiple = true;
                    }
                    result = Some(payload);
                    failure = None;
                }
                HandlerOutcome::Failed(error) => {
                    tracing::error!("A callback for the method '{method}' threw error '{error}'.");
                    result = previous;
                    failure = Some(error);
                }
            }
        }
        if !expects_result {
            if result.is_some() {
                tracing::error!(
                    "Result given for '{method}' method but server is not expecting a result."
                );
            }
            return None;
        }
        Some(if multiple {
            CompletionOutcome::Error(MULTIPLE_RESULTS.into())
        } else if let Some(error) = failure {
            CompletionOutcome::Error(error)
        } else if let Some(payload) = result {
            CompletionOutcome::Result(payload)
        } else {
            tracing::warn!("No result given for '{method}' method and invocation ID.");
            CompletionOutcome::Error(NO_RESULT.into())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(handlers: &Handlers, expects: bool) -> Option<CompletionOutcome> {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(handlers.dispatch(
                "Method",
                Arguments::new(vec![], HubProtocol::Json),
                expects,
            ))
    }

    fn text(outcome: Option<CompletionOutcome>) -> String {
        match outcome {
            Some(CompletionOutcome::Result(p)) => {
                format!("result {}", p.deserialize::<serde_json::Value>().unwrap())
            }
            Some(CompletionOutcome::Error(e)) => format!("error {e}"),
            Some(CompletionOutcome::Void) => "void".into(),
            None => "nothing".into(),
        }
    }

    #[test]
    fn the_official_client_result_rules() {
        let ok = |v: i32| erase(move |(): ()| async move { Ok::<_, String>(v) });
        let fail = || erase(|(): ()| async { Err::<i32, _>("Error: from callback") });
        let none = || erase(|(): ()| async {});

        let h = Handlers::default();
        assert_eq!(text(run(&h, true)), format!("error {NO_RESULT}"));
        assert_eq!(text(run(&h, false)), "nothing");

        h.add("method", ok(10));
        assert_eq!(
            text(run(&h, true)),
            "result 10",
            "names are case-insensitive"
        );
        assert_eq!(text(run(&h, false)), "nothing");

        let h = Handlers::default();
        h.add("Method", fail());
        assert_eq!(text(run(&h, true)), "error Error: from callback");

        let h = Handlers::default();
        h.add("Method", ok(1));
        h.add("Method", ok(2));
        assert_eq!(text(run(&h, true)), format!("error {MULTIPLE_RESULTS}"));

        let h = Handlers::default();
        h.add("Method", ok(1));
        h.add("Method", fail());
        assert_eq!(text(run(&h, true)), "error Error: from callback");

        let h = Handlers::default();
        h.add("Method", fail());
        h.add("Method", ok(3));
        assert_eq!(text(run(&h, true)), "result 3");

        let h = Handlers::default();
        h.add("Method", erase(|(): ()| async { None::<i32> }));
        assert_eq!(text(run(&h, true)), format!("error {NO_RESULT}"));
        h.add("Method", erase(|(): ()| async { Some(5) }));
        assert_eq!(text(run(&h, true)), "result 5");

        let h = Handlers::default();
        let id = h.add("Method", none());
        assert_eq!(text(run(&h, true)), format!("error {NO_RESULT}"));
        assert!(h.remove(id));
        assert!(!h.remove(id), "removed once");
        h.add("Method", ok(4));
        assert_eq!(text(run(&h, true)), "result 4");
        h.remove_all("METHOD");
        assert_eq!(text(run(&h, true)), format!("error {NO_RESULT}"));
    }

    #[test]
    fn arity_mismatch_fails_the_call() {
        let h = Handlers::default();
        h.add(
            "Method",
            erase(|(x,): (i32,)| async move { Ok::<_, String>(x) }),
        );
        let out = text(run(&h, true));
        assert!(
            out.starts_with("error the handler takes 1 argument(s), 0 arrived"),
            "{out}"
        );
    }
}
