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


class CallSpan:
    """One call's span (or none): ``with`` it around the native call, which ends it failed if
    the call raises; then :meth:`end_with` the call's future, or :meth:`end` it."""

    __slots__ = ("_span", "trace")

    def __init__(self, span: Any = None, trace: TraceHeaders = NO_TRACE) -> None:
        self._span = span
        #: ``traceparent`` and ``tracestate`` for the native call.
        self.trace = trace

    def __enter__(self) -> "CallSpan":
        return self

    def __exit__(self, kind: Any, error: Optional[BaseException], traceback: Any) -> None:
        if error is not None:
            self.end(error)

    def end_with(self, future: "asyncio.Future[Any]") -> None:
        """Ends the span when ``future`` is done, failed if it failed."""
        if self._span is None:
            return

        def done(finished: "asyncio.Future[Any]") -> None:
            if finished.cancelled():
                self.end(asyncio.CancelledError())
            else:
                self.end(finished.exception())

        future.add_done_callback(done)

    def end(self, error: Optional[BaseException] = None) -> None:
        """Ends the span (once), failed with ``error``'s type as the .NET client marks its
        activity."""
        span, self._span = self._span, None
        if span is None:
            return
        if error is not None:
            span.set_attribute("error.type", type(error).__name__)
            span.set_status(Status(StatusCode.ERROR))
        span.end()


#: The span of a call nobody traces: every method does nothing.
NO_SPAN = CallSpan()


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

    def start(self, method: str) -> CallSpan:
        """A started span for a call of ``method``; :data:`NO_SPAN` without OpenTelemetry or a
        recording tracer."""
        if _trace is None:
            return NO_SPAN
        name = f"{self.service}/{method}" if self.service else method
        span = _trace.get_tracer(TRACER_NAME).start_span(
            name,
            kind=SpanKind.CLIENT,
            attributes={**self.attributes, "rpc.method": method},
        )
        context = span.get_span_context()
        if not context.is_valid:
            span.end()
            return NO_SPAN
        traceparent = f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags):02x}"
        tracestate = context.trace_state.to_header() or None
        return CallSpan(span, (traceparent, tracestate))

