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
//! continues in the server's hub method.

use tracing::Span;
use url::Url;

use crate::error::Error;

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

/// The invocation headers that carry `span`'s trace context to the server: `traceparent` and
/// `tracestate` (W3C Trace Context), or none when the span is not recorded by OpenTelemetry.
pub(crate) fn trace_headers(span: &Span) -> Vec<(String, String)> {
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
