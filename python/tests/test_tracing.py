"""Distributed tracing from Python: with OpenTelemetry installed, each call has a CLIENT span
from the tracer ``Microsoft.AspNetCore.SignalR.Client`` (the .NET client's activity source),
a child of the current span, whose W3C trace context reaches the server in the invocation's
headers (the test server's hub methods read them back).

Scenario names: tests/scenarios/scenarios.txt.
"""

from __future__ import annotations

from typing import Any, Dict, Iterator
from urllib.parse import urlsplit

import pytest
from conftest import builder
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

import hublink

_exporter = InMemorySpanExporter()
_provider = TracerProvider()
_provider.add_span_processor(SimpleSpanProcessor(_exporter))


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    # The global provider can be set once per process: later tests share it.
    trace.set_tracer_provider(_provider)
    _exporter.clear()
    yield _exporter
    _exporter.clear()


def finished(exporter: InMemorySpanExporter, name: str) -> ReadableSpan:
    named = [span for span in exporter.get_finished_spans() if span.name == name]
    assert len(named) == 1, f"one finished span named {name}: {named}"
    return named[0]


def traceparent_of(span: ReadableSpan) -> str:
    context = span.get_span_context()
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags):02x}"


def assert_call_span(span: ReadableSpan, method: str, server: str, parent: Any) -> None:
    url = urlsplit(server)
    assert span.kind is SpanKind.CLIENT
    assert span.instrumentation_scope is not None
    assert span.instrumentation_scope.name == "Microsoft.AspNetCore.SignalR.Client"
    assert span.parent is not None and span.parent.span_id == parent.span_id, "child of the caller's span"
    assert dict(span.attributes or {}) == {
        "rpc.system": "signalr",
        "rpc.service": "testhub",
        "rpc.method": method,
        "server.address": url.hostname,
        "server.port": url.port,
    }


@pytest.mark.parametrize("protocol", ["json", "msgpack"])
async def test_each_call_has_a_client_span_whose_trace_context_reaches_the_server(
    server: str, protocol: str, spans: InMemorySpanExporter
) -> None:
    # scenario: any.json.tracing.python, any.msgpack.tracing.python
    tracer = trace.get_tracer("tests")
    async with builder(server, "ws", protocol).build() as conn:
        with tracer.start_as_current_span("caller") as caller:
            parent = caller.get_span_context()

            seen: Dict[str, str] = await conn.invoke("GetInvocationHeaders")
            span = finished(spans, "testhub/GetInvocationHeaders")
            assert_call_span(span, "GetInvocationHeaders", server, parent)
            assert seen["traceparent"] == traceparent_of(span), "invoke"

            items = [item async for item in conn.stream("StreamInvocationHeaders")]
            span = finished(spans, "testhub/StreamInvocationHeaders")
            assert_call_span(span, "StreamInvocationHeaders", server, parent)
            assert items[0]["traceparent"] == traceparent_of(span), "stream"

            await conn.send("RecordInvocationHeaders")
            recorded = await conn.invoke("Recorded")
            span = finished(spans, "testhub/RecordInvocationHeaders")
            assert recorded[0]["traceparent"] == traceparent_of(span), "send"

            with pytest.raises(hublink.HubError):
                await conn.invoke("ThrowException", "no")
            span = finished(spans, "testhub/ThrowException")
            assert span.status.status_code is StatusCode.ERROR
            assert (span.attributes or {})["error.type"] == "HubError"


async def test_a_bad_trace_context_from_the_layer_is_refused(server: str) -> None:
    # scenario: any.any.tracing.python-bad-context
    async with builder(server, "ws", "json").build() as conn:
        import asyncio

        from hublink import _bridge

        future: "asyncio.Future[Any]" = asyncio.get_running_loop().create_future()
        with pytest.raises(hublink.InvalidArgumentError, match="not a W3C traceparent"):
            conn._native.invoke(_bridge.current(), future, "Echo", (1,), "00-nope", None)
        # The connection is unharmed.
        assert await conn.invoke("Echo", 2) == 2

