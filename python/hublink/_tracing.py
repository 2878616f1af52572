"""Client spans for calls, shaped as the official .NET client's activities, when the
``opentelemetry`` package is installed: a ``CLIENT`` span per invoke, send and stream from the
tracer ``Microsoft.AspNetCore.SignalR.Client``, a child of the current span, whose W3C trace
context goes to the server in the invocation's headers."""

from __future__ import annotations

import asyncio
from typing import Any, Dict, Optional, Tuple
from urllib.parse import urlsplit

try:
    from opentelemetry import trace as _trace
    from opentelemetry.trace import SpanKind, Status, StatusCode
except ImportError:  # pragma: no cover - exercised when the package is absent
    _trace = None  # type: ignore[assignment]

TRACER_NAME = "Microsoft.AspNetCore.SignalR.Client"

#: ``traceparent`` and ``tracestate`` for the native call, or ``(None, None)``.
TraceHeaders = Tuple[Optional[str], Optional[str]]
NO_TRACE: TraceHeaders = (None, None)


class CallTarget:
    """What every span of one connection says about the server."""

    __slots__ = ("service", "attributes")

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.service = parts.path.strip("/")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        self.attributes: Dict[str, Any] = {
            "rpc.system": "signalr",
            "rpc.service": self.service,
            "server.address": parts.hostname or "",
            "server.port": port,
        }

    def start(self, method: str) -> Tuple[Any, TraceHeaders]:
        """A started span for a call of ``method`` and its trace headers; ``(None, NO_TRACE)``
        without OpenTelemetry or a recording tracer."""
        if _trace is None:
            return None, NO_TRACE
        name = f"{self.service}/{method}" if self.service else method
        span = _trace.get_tracer(TRACER_NAME).start_span(
            name,
            kind=SpanKind.CLIENT,
            attributes={**self.attributes, "rpc.method": method},
        )
        context = span.get_span_context()
        if not context.is_valid:
            span.end()
            return None, NO_TRACE
        traceparent = f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags):02x}"
        tracestate = context.trace_state.to_header() or None
        return span, (traceparent, tracestate)


def end_with(span: Any, future: "asyncio.Future[Any]") -> None:
    """Ends ``span`` when ``future`` is done, failed if it failed."""
    if span is None:
        return

    def done(finished: "asyncio.Future[Any]") -> None:
        error = None if finished.cancelled() else finished.exception()
        if finished.cancelled() or error is not None:
            end_failed(span, "CancelledError" if error is None else type(error).__name__)
        else:
            span.end()

    future.add_done_callback(done)


def end_failed(span: Any, error_type: str) -> None:
    """Ends ``span`` as failed with ``error_type``, as the .NET client marks its activity."""
    span.set_attribute("error.type", error_type)
    span.set_status(Status(StatusCode.ERROR))
    span.end()
