//! Distributed tracing of calls, as the official .NET client does it: one client span per
//! invoke, send and stream, from the call to its end, with the OpenTelemetry RPC attributes
//! (`rpc.system` = `signalr`, `rpc.service` = the hub's URL path, `rpc.method`,
//! `server.address`, `server.port`). Spans are `tracing` spans with the .NET activity
//! source's name as their target, `Microsoft.AspNetCore.SignalR.Client`, and the `otel.*`
//! fields `tracing-opentelemetry` reads; without a subscriber that wants them they cost a
//! disabled-callsite check.
//!
//! With the `opentelemetry` feature, a span that `tracing-opentelemetry` records puts its W3C
//! trace context (`traceparent`, `tracestate`) into the invocation's headers, so the trace
//! continues in the server's hub method. Bindings, whose callers trace in their own language,
//! hand the caller's context in with [`with_trace_context`] instead.

use std::cell::RefCell;

use tracing::Span;
use url::Url;

use crate::error::{Error, Result};

/// A W3C trace context (`traceparent` and optional `tracestate`) made by the caller, for the
/// calls made inside [`with_trace_context`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceContext {
    traceparent: String,
    tracestate: Option<String>,
}

impl TraceContext {
    /// Checks `traceparent`'s form (`00-<32 hex>-<16 hex>-<2 hex>`, lowercase, ids not all
    /// zero); an empty `tracestate` counts as none.
    ///
    /// ```
    /// let context = hublink::TraceContext::new(
    ///     "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    ///     Some("congo=t61rcWkgMzE"),
    /// )
    /// .unwrap();
    /// assert!(hublink::TraceContext::new("00-zz", None).is_err());
    /// # drop(context);
    /// ```
    pub fn new(traceparent: &str, tracestate: Option<&str>) -> Result<Self> {
        let parts: Vec<&str> = traceparent.split('-').collect();
        let hex = |part: &str, len: usize| {
            part.len() == len && part.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        };
        let well_formed = parts.len() == 4
            && hex(parts[0], 2)
            && parts[0] != "ff"
            && hex(parts[1], 32)
            && parts[1].bytes().any(|b| b != b'0')
            && hex(parts[2], 16)
            && parts[2].bytes().any(|b| b != b'0')
            && hex(parts[3], 2);
        if !well_formed {
            return Err(Error::invalid_argument(format!(
                "'{traceparent}' is not a W3C traceparent (00-<32 hex>-<16 hex>-<2 hex>)."
            )));
        }
        Ok(TraceContext {
            traceparent: traceparent.to_owned(),
            tracestate: tracestate.filter(|s| !s.is_empty()).map(str::to_owned),
        })
    }

    fn headers(&self) -> Vec<(String, String)> {
        let mut headers = vec![("traceparent".to_owned(), self.traceparent.clone())];
        if let Some(state) = &self.tracestate {
            headers.push(("tracestate".to_owned(), state.clone()));
        }
        headers
    }
}

thread_local! {
    static CALLER_TRACE_CONTEXT: RefCell<Option<TraceContext>> = const { RefCell::new(None) };
}

/// Runs `calls` with `context` as the trace context of every invoke, send and stream it makes
/// on this thread (a call is submitted, and its headers written, before it returns). For
/// bindings and callers that trace outside `tracing`; a call span that `tracing-opentelemetry`
/// records (feature `opentelemetry`) takes precedence.
///
/// ```no_run
/// # fn demo(connection: hublink::HubConnection, context: hublink::TraceContext) {
/// let echoed = hublink::with_trace_context(context, || connection.invoke_value("Echo", ("hi",)));
/// # drop(echoed); }
/// ```
pub fn with_trace_context<R>(context: TraceContext, calls: impl FnOnce() -> R) -> R {
    struct Restore(Option<TraceContext>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let previous = self.0.take();
            CALLER_TRACE_CONTEXT.with(|current| *current.borrow_mut() = previous);
        }
    }
    let previous = CALLER_TRACE_CONTEXT.with(|current| current.borrow_mut().replace(context));
    let _restore = Restore(previous);
    calls()
}

/// The target (the .NET client's `ActivitySource` name) of every call span.
pub const CALL_SPAN_TARGET: &str = "Microsoft.AspNetCore.SignalR.Client";

/// What every call span of a connection says about the server.
#[derive(Debug, Clone)]
pub(crate) struct CallTraceTarget {
    /// The hub's URL path without its outer slashes (`chat` for `https://host/chat`).
    service: String,
    address: String,
    port: u16,
}

impl CallTraceTarget {
    pub(crate) fn new(url: &Url) -> Self {
        CallTraceTarget {
            service: url.path().trim_matches('/').to_owned(),
            address: url.host_str().unwrap_or_default().to_owned(),
            port: url.port_or_known_default().unwrap_or_default(),
        }
    }

    /// A new span for a call of `method`, a child of the current span.
    pub(crate) fn span(&self, method: &str) -> Span {
        tracing::info_span!(
            target: "Microsoft.AspNetCore.SignalR.Client",
            "signalr.call",
            otel.name = %SpanName(&self.service, method),
            otel.kind = "client",
            otel.status_code = tracing::field::Empty,
            rpc.system = "signalr",
            rpc.service = %self.service,
            rpc.method = method,
            server.address = %self.address,
            server.port = i64::from(self.port),
            error.type = tracing::field::Empty,
        )
    }
}

/// `service/method`, or the method alone when the hub is at the URL's root.
struct SpanName<'a>(&'a str, &'a str);

impl std::fmt::Display for SpanName<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            "" => f.write_str(self.1),
            service => write!(f, "{service}/{}", self.1),
        }
    }
}

/// Marks `span` failed with `error`'s kind, as the .NET client sets its activity's status.
pub(crate) fn record_failure(span: &Span, error: &Error) {
    if !span.is_disabled() {
        span.record("otel.status_code", "ERROR");
        span.record("error.type", format!("{:?}", error.kind()).as_str());
    }
}

/// The invocation headers that carry the call's trace context to the server: `traceparent`
/// and `tracestate` (W3C Trace Context) of `span` when OpenTelemetry records it, else of the
/// caller's [`with_trace_context`], else none.
pub(crate) fn trace_headers(span: &Span) -> Vec<(String, String)> {
    let headers = span_trace_headers(span);
    if !headers.is_empty() {
        return headers;
    }
    CALLER_TRACE_CONTEXT.with(|current| {
        current
            .borrow()
            .as_ref()
            .map(TraceContext::headers)
            .unwrap_or_default()
    })
}

fn span_trace_headers(span: &Span) -> Vec<(String, String)> {
    #[cfg(feature = "opentelemetry")]
    {
        use opentelemetry::trace::TraceContextExt;
        use tracing_opentelemetry::OpenTelemetrySpanExt;
        if span.is_disabled() {
            return Vec::new();
        }
        let context = span.context();
        let span_ref = context.span();
        let span_context = span_ref.span_context();
        if !span_context.is_valid() {
            return Vec::new();
        }
        let mut headers = vec![(
            "traceparent".to_owned(),
            format!(
                "00-{}-{}-{:02x}",
                span_context.trace_id(),
                span_context.span_id(),
                span_context.trace_flags().to_u8()
            ),
        )];
        let state = span_context.trace_state().header();
        if !state.is_empty() {
            headers.push(("tracestate".to_owned(), state));
        }
        headers
    }
    #[cfg(not(feature = "opentelemetry"))]
    {
        let _ = span;
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_caller_trace_context_is_checked_and_applies_inside_its_scope_only() {
        const PARENT: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
        for bad in [
            "",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331",
            "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01",
            "00-00000000000000000000000000000000-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
            "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        ] {
            assert!(TraceContext::new(bad, None).is_err(), "{bad:?}");
        }
        let context = TraceContext::new(PARENT, Some("")).unwrap();
        assert!(trace_headers(&Span::none()).is_empty());
        let inside = with_trace_context(context, || {
            let nested = TraceContext::new(PARENT, Some("a=b")).unwrap();
            let nested = with_trace_context(nested, || trace_headers(&Span::none()));
            (nested, trace_headers(&Span::none()))
        });
        assert_eq!(
            inside.0,
            vec![
                ("traceparent".to_owned(), PARENT.to_owned()),
                ("tracestate".to_owned(), "a=b".to_owned())
            ]
        );
        assert_eq!(
            inside.1,
            vec![("traceparent".to_owned(), PARENT.to_owned())]
        );
        assert!(
            trace_headers(&Span::none()).is_empty(),
            "restored after the scope"
        );
    }

    #[test]
    fn the_service_is_the_hub_path_and_the_port_is_known_for_the_scheme() {
        let target = CallTraceTarget::new(&Url::parse("https://example.com/hubs/chat/").unwrap());
        assert_eq!(target.service, "hubs/chat");
        assert_eq!(target.address, "example.com");
        assert_eq!(target.port, 443);
        let target = CallTraceTarget::new(&Url::parse("http://127.0.0.1:5000/").unwrap());
        assert_eq!(target.service, "");
        assert_eq!(target.port, 5000);
        assert_eq!(SpanName("", "Echo").to_string(), "Echo");
        assert_eq!(SpanName("chat", "Echo").to_string(), "chat/Echo");
    }
}
