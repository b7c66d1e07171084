"""OpenTelemetry traces of the data plane, exported by OTLP when configured.

On when `OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is set (the
exporter reads the standard OTEL_EXPORTER_OTLP_* variables: headers, timeout,
compression), unless `OTEL_SDK_DISABLED=true` or `OTEL_TRACES_EXPORTER=none`. Off, nothing
is set up: `traced` returns the function unchanged, `span` a shared do-nothing context, and
the request and attempt spans are one test of `enabled`.

A /v1 request is one trace (continuing the caller's W3C `traceparent`): the request span
(server), and inside it authentication, policy, the routing decision, the cache look-up
and each upstream attempt (client spans with the GenAI semantic conventions: operation,
provider, request and response model, token usage). A streamed attempt's span ends at its
first chunk; the request span lasts until the stream's last byte. Write-behind batches are
traces of their own. Spans carry no prompt, answer, key or header.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import os
from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

_NULL = contextlib.nullcontext()


def _configured() -> bool:
    env = os.environ
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    if env.get("OTEL_TRACES_EXPORTER", "").strip().lower() == "none":
        return False
    return bool(
        env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    )


enabled = _configured()
_tracer: Any = None
_propagator: Any = None
_provider: Any = None


def _set_up() -> None:
    global _tracer, _propagator, _provider
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", "atp")})
    _provider = TracerProvider(resource=resource)
    _provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    _tracer = _provider.get_tracer("atp")
    _propagator = TraceContextTextMapPropagator()
    trace.set_tracer_provider(_provider)


if enabled:
    _set_up()


def span(name: str, attributes: dict[str, Any] | None = None, *, client: bool = False):
    """A span around a block, a child of the current one (a shared do-nothing context when
    tracing is off)."""
    if not enabled:
        return _NULL
    from opentelemetry.trace import SpanKind

    kind = SpanKind.CLIENT if client else SpanKind.INTERNAL
    return _tracer.start_as_current_span(name, kind=kind, attributes=attributes)


def traced(name: str) -> Callable[[F], F]:
    """Decorate a pipeline step with a span of `name`; with tracing off the function is
    returned as it is."""

    def wrap(fn: F) -> F:
        if not enabled:
            return fn
        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def run_async(*args: Any, **kwargs: Any) -> Any:
                with _tracer.start_as_current_span(name):
                    return await fn(*args, **kwargs)

            return run_async  # type: ignore[return-value]

        @functools.wraps(fn)
        def run(*args: Any, **kwargs: Any) -> Any:
            with _tracer.start_as_current_span(name):
                return fn(*args, **kwargs)

        return run  # type: ignore[return-value]

    return wrap


class _Headers:
    """The W3C getter over ASGI headers (lower-case bytes)."""

    @staticmethod
    def get(carrier: dict[bytes, bytes], key: str) -> list[str] | None:
        value = carrier.get(key.encode("latin-1"))
        return [value.decode("latin-1")] if value is not None else None

    @staticmethod
    def keys(carrier: dict[bytes, bytes]) -> list[str]:
        return [k.decode("latin-1") for k in carrier]


def start_request(ctx: Any, headers: dict[bytes, bytes], method: str, path: str) -> None:
    """Open the request's span (continuing the caller's trace) and make it current in this
    task; `ctx.trace_id` becomes its trace id, for the logs."""
    from opentelemetry import context, trace
    from opentelemetry.trace import SpanKind

    parent = _propagator.extract(headers, getter=_Headers)
    request_span = _tracer.start_span(
        f"{method} {path}",
        context=parent,
        kind=SpanKind.SERVER,
        attributes={
            "http.request.method": method,
            "url.path": path,
            "atp.request_id": ctx.request_id,
        },
    )
    context.attach(trace.set_span_in_context(request_span, parent))
    ctx.span = request_span
    ctx.trace_id = format(request_span.get_span_context().trace_id, "032x")


def end_request(ctx: Any, status: int) -> None:
    """Close the request's span with its outcome (once; later calls do nothing)."""
    request_span = ctx.span
    if request_span is None:
        return
    ctx.span = None
    from opentelemetry.trace import Status, StatusCode

    request_span.set_attribute("http.response.status_code", status)
    if ctx.key is not None:
        request_span.set_attribute("atp.tenant", ctx.key.tenant_slug)
    if ctx.route:
        request_span.set_attribute("atp.route", ctx.route)
    if ctx.requested_model:
        request_span.set_attribute("gen_ai.request.model", ctx.requested_model)
    if ctx.deployment is not None:
        request_span.set_attribute("atp.deployment", ctx.deployment.public_name)
    if ctx.cache:
        request_span.set_attribute("atp.cache", ctx.cache)
    if status >= 500:
        request_span.set_status(Status(StatusCode.ERROR))
    request_span.end()


def attempt_attributes(operation: str, dep: Any, try_number: int) -> dict[str, Any]:
    """GenAI semantic-convention attributes of one upstream call."""
    target = dep.target
    return {
        "gen_ai.operation.name": operation,
        "gen_ai.provider.name": target.kind,
        "gen_ai.request.model": target.upstream_model,
        "atp.deployment": dep.public_name,
        "atp.provider": dep.provider_name,
        "atp.try": try_number,
    }


def record_usage(attempt_span: Any, result: Any) -> None:
    """Usage and response model of a finished non-streamed call on its span."""
    usage = getattr(result, "usage", None)
    if usage is not None:
        attempt_span.set_attribute("gen_ai.usage.input_tokens", usage.input_tokens)
        attempt_span.set_attribute("gen_ai.usage.output_tokens", usage.output_tokens)
    response = getattr(result, "response", None)
    if isinstance(response, dict) and isinstance(response.get("model"), str):
        attempt_span.set_attribute("gen_ai.response.model", response["model"])


def flush(timeout_millis: int = 5000) -> None:
    """Export the spans still buffered (at shutdown)."""
    if _provider is not None:
        _provider.force_flush(timeout_millis)
