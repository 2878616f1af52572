//! Distributed tracing (feature `opentelemetry`): each call's span, recorded by
//! `tracing-opentelemetry` into an in-memory OpenTelemetry exporter, is named and tagged as the
//! .NET client's activities are, and its W3C trace context reaches the server in the
//! invocation's headers (the test server's hub methods read them back), in JSON and
//! MessagePack, for invoke, send and stream. Run with
//! `cargo test -p hublink --features opentelemetry --test distributed_tracing`.

use std::time::Duration;

use futures_util::StreamExt;
use hublink::{ErrorKind, HubConnection, HubConnectionBuilder, HubProtocol, TransportKind, Value};
use hublink_testserver::{TestServer, TestServerOptions};
use opentelemetry::trace::{SpanId, SpanKind, Status, TracerProvider as _};
use opentelemetry::Value as AttributeValue;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use tokio::time::timeout;
use tracing_subscriber::layer::SubscriberExt;

const WAIT: Duration = Duration::from_secs(10);

/// Spans of this thread go to the returned exporter until the guard is dropped.
fn record_spans() -> (InMemorySpanExporter, tracing::subscriber::DefaultGuard) {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("hublink-tests")));
    (exporter, tracing::subscriber::set_default(subscriber))
}

async fn connected(server: &TestServer, protocol: HubProtocol) -> HubConnection {
    let connection = HubConnectionBuilder::new()
        .with_url(format!("{}/testhub", server.base_url()))
        .with_transports([TransportKind::WebSockets])
        .with_protocol(protocol)
        .build()
        .unwrap();
    timeout(WAIT, connection.start()).await.unwrap().unwrap();
    connection
}

fn header<'a>(headers: &'a Value, name: &str) -> Option<&'a str> {
    let Value::Map(entries) = headers else {
        panic!("headers are a map: {headers:?}");
    };
    entries.iter().find_map(|(key, value)| match (key, value) {
        (Value::String(key), Value::String(value)) if key == name => Some(value.as_str()),
        _ => None,
    })
}

/// The finished span named `name` (exactly one).
fn finished(exporter: &InMemorySpanExporter, name: &str) -> SpanData {
    let spans = exporter.get_finished_spans().unwrap();
    let mut named: Vec<SpanData> = spans.into_iter().filter(|s| s.name == name).collect();
    assert_eq!(named.len(), 1, "one finished span named {name}");
    named.pop().unwrap()
}

fn attribute(span: &SpanData, key: &str) -> Option<AttributeValue> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.clone())
}

fn traceparent_of(span: &SpanData) -> String {
    let context = &span.span_context;
    format!(
        "00-{}-{}-{:02x}",
        context.trace_id(),
        context.span_id(),
        context.trace_flags().to_u8()
    )
}

/// The span is a client span of the .NET client's shape, a child of `parent`.
fn assert_call_span(span: &SpanData, method: &str, server: &TestServer, parent: SpanId) {
    let port = server
        .base_url()
        .rsplit(':')
        .next()
        .unwrap()
        .parse::<i64>()
        .unwrap();
    assert_eq!(span.span_kind, SpanKind::Client, "{method}");
    assert_eq!(
        span.parent_span_id, parent,
        "{method}: a child of the caller's span"
    );
    assert_eq!(span.instrumentation_scope.name(), "hublink-tests");
    for (key, expected) in [
        ("rpc.system", AttributeValue::from("signalr")),
        ("rpc.service", AttributeValue::from("testhub")),
        ("rpc.method", AttributeValue::from(method.to_owned())),
        ("server.address", AttributeValue::from("127.0.0.1")),
        ("server.port", AttributeValue::I64(port)),
    ] {
        assert_eq!(attribute(span, key), Some(expected), "{method}: {key}");
    }
}

// scenario: any.json.tracing.trace-context, any.msgpack.tracing.trace-context
#[tokio::test]
async fn each_call_has_a_client_span_whose_trace_context_reaches_the_server() {
    let server = TestServer::start(TestServerOptions::default())
        .await
        .unwrap();
    for protocol in [HubProtocol::Json, HubProtocol::MessagePack] {
        let (exporter, _recording) = record_spans();
        let connection = connected(&server, protocol).await;
        let root = tracing::info_span!("caller");
        let root_id = {
            use opentelemetry::trace::TraceContextExt;
            use tracing_opentelemetry::OpenTelemetrySpanExt;
            root.context().span().span_context().span_id()
        };
        let _entered = root.enter();

        let seen = timeout(WAIT, connection.invoke_value("GetInvocationHeaders", ()))
            .await
            .unwrap()
            .unwrap();
        let span = finished(&exporter, "testhub/GetInvocationHeaders");
        assert_call_span(&span, "GetInvocationHeaders", &server, root_id);
        assert_eq!(
            header(&seen, "traceparent"),
            Some(traceparent_of(&span).as_str()),
            "{protocol:?}: invoke"
        );
        assert_eq!(span.status, Status::Unset);

        let mut items = connection
            .stream_value("StreamInvocationHeaders", ())
            .unwrap();
        let seen = timeout(WAIT, items.next()).await.unwrap().unwrap().unwrap();
        assert!(timeout(WAIT, items.next()).await.unwrap().is_none());
        drop(items);
        let span = finished(&exporter, "testhub/StreamInvocationHeaders");
        assert_call_span(&span, "StreamInvocationHeaders", &server, root_id);
        assert_eq!(
            header(&seen, "traceparent"),
            Some(traceparent_of(&span).as_str()),
            "{protocol:?}: stream"
        );

        timeout(WAIT, connection.send("RecordInvocationHeaders", ()))
            .await
            .unwrap()
            .unwrap();
        let recorded = timeout(WAIT, connection.invoke_value("Recorded", ()))
            .await
            .unwrap()
            .unwrap();
        let Value::Array(recorded) = recorded else {
            panic!("Recorded is a list: {recorded:?}");
        };
        let span = finished(&exporter, "testhub/RecordInvocationHeaders");
        assert_call_span(&span, "RecordInvocationHeaders", &server, root_id);
        assert_eq!(
            header(&recorded[0], "traceparent"),
            Some(traceparent_of(&span).as_str()),
            "{protocol:?}: send"
        );

        // A hub error marks the span failed, with the error's kind.
        let error = timeout(
            WAIT,
            connection.invoke_value("ThrowException", vec![Value::from("no")]),
        )
        .await
        .unwrap()
        .unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Hub);
        let span = finished(&exporter, "testhub/ThrowException");
        assert!(
            matches!(span.status, Status::Error { .. }),
            "{:?}",
            span.status
        );
        assert_eq!(
            attribute(&span, "error.type"),
            Some(AttributeValue::from("Hub"))
        );

        drop(_entered);
        timeout(WAIT, connection.stop()).await.unwrap().unwrap();
    }
}

// scenario: any.any.tracing.no-subscriber
#[tokio::test]
async fn without_a_recorded_span_no_trace_headers_are_sent() {
    let server = TestServer::start(TestServerOptions::default())
        .await
        .unwrap();
    let connection = connected(&server, HubProtocol::Json).await;
    let seen = timeout(WAIT, connection.invoke_value("GetInvocationHeaders", ()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(seen, Value::Map(vec![]));
    timeout(WAIT, connection.stop()).await.unwrap().unwrap();
}
