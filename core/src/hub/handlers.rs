//! Client methods the server can call: registration, and running them for one invocation
//! with the official client's rules for client results.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use futures_util::FutureExt;
use serde::Serialize;

use super::arguments::{Arguments, FromArguments};
use crate::protocol::{CompletionOutcome, HubProtocol, Payload};
use crate::transport::BoxFuture;

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

#[cfg(not(target_arch = "wasm32"))]
pub(crate) type HandlerFn =
    Arc<dyn Fn(Arguments, HubProtocol) -> BoxFuture<'static, HandlerOutcome> + Send + Sync>;
#[cfg(target_arch = "wasm32")]
pub(crate) type HandlerFn =
    Arc<dyn Fn(Arguments, HubProtocol) -> BoxFuture<'static, HandlerOutcome>>;

/// Wraps a typed async handler into the form the registry stores.
#[cfg(not(target_arch = "wasm32"))]
pub(crate) fn erase<A, F, Fut, O>(handler: F) -> HandlerFn
where
    A: FromArguments + 'static,
    F: Fn(A) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = O> + Send + 'static,
    O: HandlerOutput + 'static,
{
    Arc::new(
        move |arguments, protocol| match A::from_arguments(arguments) {
            Ok(args) => handler(args)
                .map(move |out| out.into_outcome(protocol))
                .boxed(),
            Err(e) => futures_util::future::ready(HandlerOutcome::Failed(e.to_string())).boxed(),
        },
    )
}

/// Wraps a typed async handler into the form the registry stores.
#[cfg(target_arch = "wasm32")]
pub(crate) fn erase<A, F, Fut, O>(handler: F) -> HandlerFn
where
    A: FromArguments + 'static,
    F: Fn(A) -> Fut + 'static,
    Fut: Future<Output = O> + 'static,
    O: HandlerOutput + 'static,
{
    Arc::new(
        move |arguments, protocol| match A::from_arguments(arguments) {
            Ok(args) => handler(args)
                .map(move |out| out.into_outcome(protocol))
                .boxed_local(),
            Err(e) => {
                futures_util::future::ready(HandlerOutcome::Failed(e.to_string())).boxed_local()
            }
        },
    )
}

/// The registered client methods, by lower-cased name (the official clients match method
/// names case-insensitively).
#[derive(Default)]
pub(crate) struct Handlers {
    methods: RwLock<HashMap<String, Vec<(HandlerId, HandlerFn)>>>,
    next_id: AtomicU64,
}

impl Handlers {
    pub(crate) fn add(&self, method: &str, handler: HandlerFn) -> HandlerId {
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

    pub(crate) fn remove(&self, method: &str, id: HandlerId) {
        let mut methods = self.methods.write().expect("handler lock");
        let key = method.to_lowercase();
        if let Some(list) = methods.get_mut(&key) {
            list.retain(|(h, _)| *h != id);
            if list.is_empty() {
                methods.remove(&key);
            }
        }
    }

    fn snapshot(&self, method: &str) -> Vec<HandlerFn> {
        self.methods
            .read()
            .expect("handler lock")
            .get(&method.to_lowercase())
            .map(|list| list.iter().map(|(_, h)| h.clone()).collect())
            .unwrap_or_default()
    }

    /// Runs every handler of `method` in registration order, each awaited, over a snapshot
    /// of the list (a handler that unsubscribes does not change the current call). Returns
    /// the Completion outcome to send when the server expects a result.
    pub(crate) async fn dispatch(
        &self,
        method: &str,
        arguments: Arguments,
        protocol: HubProtocol,
        expects_result: bool,
    ) -> Option<CompletionOutcome> {
        let handlers = self.snapshot(method);
        if handlers.is_empty() {
            tracing::warn!("No client method with the name '{method}' found.");
            return expects_result.then(|| CompletionOutcome::Error(NO_RESULT.into()));
        }
        let mut result: Option<Payload> = None;
        let mut failure: Option<String> = None;
        let mut multiple = false;
        for handler in handlers {
            let previous = result.take();
            match handler(arguments.clone(), protocol).await {
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
            .block_on(handlers.dispatch("Method", Arguments(vec![]), HubProtocol::Json, expects))
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
        h.remove("Method", id);
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
