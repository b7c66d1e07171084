"""Step: call the chosen deployments in order, retrying, falling back and breaking circuits.

For each candidate in the route's order:
- its circuit breaker is asked first; an open breaker skips it (half-open admits probes);
- a retryable failure (timeout, 5xx, 429, connection error) is retried on the same
  deployment per the RetryPolicy, with exponential backoff capped by the request's
  remaining latency budget; then the next candidate is tried;
- a deployment fault that retrying cannot fix (ATP's upstream credential refused, the model
  unknown upstream) goes straight to the next candidate;
- a client error (a 4xx: bad request, content-policy refusal) is the caller's answer.
Every outcome feeds the breaker and the deployment's observed statistics. A stream may
retry or fall back only until its first chunk, since nothing reached the caller before it.
When every candidate fails, the caller gets one error listing the attempts.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from apps.providers.adapters import get_adapter
from apps.providers.adapters.base import Adapter, ChatResult, EmbeddingsResult, Target
from apps.providers.exceptions import UpstreamError
from apps.routing.pipeline.context import RequestContext
from apps.routing.resilience import stats as observed
from apps.routing.resilience.backoff import RetryPolicy, is_deployment_fault, is_retryable
from apps.routing.resilience.breaker import OPEN, Breakers, get_breakers
from apps.routing.snapshot import DeploymentInfo
from atp_site.lib import tracing
from atp_site.lib.errors import ATPError, PermissionDenied
from atp_site.lib.hot_settings import hot

logger = logging.getLogger(__name__)

T = TypeVar("T")

_TIMEOUT_FIELDS = {
    "connect": "connect_timeout",
    "first_byte": "first_byte_timeout",
    "total": "total_timeout",
}


@dataclass(frozen=True, slots=True)
class Overrides:
    """A route's settings for this step: its retry policy, its timeouts (seconds:
    `connect`, `first_byte`, `total`, replacing each provider's) and the request's latency
    budget in seconds (default ATP_RETRY_BUDGET_SECONDS)."""

    retry: RetryPolicy | None = None
    timeouts: Mapping[str, float] | None = None
    budget: float | None = None

    @classmethod
    def from_route(
        cls,
        retry: Mapping[str, Any] | None,
        timeouts: Mapping[str, Any] | None,
        *,
        budget: float | None = None,
    ) -> Overrides:
        """From a Route's `retry` and `timeouts` JSON (validated here)."""
        clean: dict[str, float] = {}
        for name, value in (timeouts or {}).items():
            if name not in _TIMEOUT_FIELDS:
                raise ValueError(f"unknown timeout {name!r}; use connect, first_byte or total")
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                raise ValueError(f"timeouts.{name} must be a positive number of seconds")
            clean[name] = float(value)
        return cls(
            retry=RetryPolicy.from_config(retry) if retry else None,
            timeouts=clean or None,
            budget=budget,
        )


NO_OVERRIDES = Overrides()

# Overrides built per route object of the current snapshot, so a request pays a dict look-up
# rather than validation; a new snapshot brings new route objects, and the cache is simply
# dropped when it grows past its bound.
_route_overrides: dict[int, tuple[Any, Overrides]] = {}
_ROUTE_CACHE_LIMIT = 4096


def overrides_for(route: Any, *, budget: float | None = None) -> Overrides:
    """The Overrides of a route (anything with `name`, `retry` and `timeouts`, such as the
    snapshot's RouteInfo), with the request's latency budget in seconds when it has one.

    A route whose settings do not validate is logged and served with the defaults: a bad
    admin edit must not fail requests.
    """
    if route is None:
        base = NO_OVERRIDES
    else:
        cached = _route_overrides.get(id(route))
        if cached is not None and cached[0] is route:
            base = cached[1]
        else:
            try:
                base = Overrides.from_route(route.retry, route.timeouts)
            except ValueError as exc:
                logger.error(
                    "route %s: invalid retry or timeouts (%s); using defaults", route.name, exc
                )
                base = NO_OVERRIDES
            if len(_route_overrides) >= _ROUTE_CACHE_LIMIT:
                _route_overrides.clear()
            _route_overrides[id(route)] = (route, base)
    if budget is None:
        return base
    return dataclasses.replace(base, budget=budget)


_default_policy: tuple[tuple, RetryPolicy] | None = None


def _policy(overrides: Overrides) -> RetryPolicy:
    global _default_policy
    if overrides.retry is not None:
        return overrides.retry
    key = (
        hot.ATP_RETRY_MAX_ATTEMPTS,
        hot.ATP_RETRY_INITIAL_BACKOFF_MS,
        hot.ATP_RETRY_MULTIPLIER,
        hot.ATP_RETRY_MAX_BACKOFF_MS,
        hot.ATP_RETRY_JITTER,
    )
    if _default_policy is None or _default_policy[0] != key:
        _default_policy = (key, RetryPolicy.from_settings())
    return _default_policy[1]


def _target(dep: DeploymentInfo, overrides: Overrides) -> Target:
    if not overrides.timeouts:
        return dep.target
    changes = {_TIMEOUT_FIELDS[name]: value for name, value in overrides.timeouts.items()}
    return dataclasses.replace(dep.target, **changes)


def _record(
    ctx: RequestContext, dep: DeploymentInfo, err: ATPError, try_number: int, ms: float
) -> None:
    entry: dict[str, Any] = {
        "deployment": dep.public_name,
        "provider": dep.provider_name,
        "try": try_number,
        "status": err.status,
        "code": err.code,
        "error": err.message,
        "retryable": is_retryable(err),
        "latency_ms": int(ms),
    }
    if err.retry_after is not None:
        entry["retry_after"] = err.retry_after
    ctx.attempts.append(entry)


def _refuse(ctx: RequestContext, dep: DeploymentInfo) -> None:
    # Every planning path draws from the request's reach; reaching here is a bug, and the
    # call is not made.
    logger.error(
        "request %s: deployment %s (%s) is outside the request's reach; not called",
        ctx.request_id,
        dep.public_name,
        dep.provider_name,
    )
    ctx.attempts.append(
        {"deployment": dep.public_name, "provider": dep.provider_name, "skipped": "not_allowed"}
    )


def _record_skip(ctx: RequestContext, dep: DeploymentInfo, retry_after: float) -> None:
    ctx.attempts.append(
        {
            "deployment": dep.public_name,
            "provider": dep.provider_name,
            "skipped": "circuit_open",
            "retry_after": round(retry_after, 3),
        }
    )


def _retry_after(hints: list[float], *, default: bool) -> float | None:
    """The earliest moment a retry may succeed, when anyone said so, bounded by
    ATP_RETRY_AFTER_MAX_SECONDS; ATP_RETRY_AFTER_DEFAULT_SECONDS when nobody did and
    `default` asks for one."""
    if hints:
        return round(min(min(hints), float(hot.ATP_RETRY_AFTER_MAX_SECONDS)), 3)
    return float(hot.ATP_RETRY_AFTER_DEFAULT_SECONDS) if default else None


def _final_error(
    ctx: RequestContext, last: ATPError | None, *, out_of_time: bool = False
) -> ATPError:
    """One error for a request no candidate answered, listing every attempt.

    Status (docs/errors.md has the whole mapping): 504 when every call timed out (or the
    latency budget ran out); 429 when every call was rate limited upstream, so clients
    back off as they do for any rate limit; 503 when the deployments are unavailable,
    overloaded or their breakers open (or a mix of that and rate limits); else 502.
    429 and 503 carry `retry_after`: the upstream's or breaker's own hint when there was
    one (bounded), else a default.
    """
    tried = [a for a in ctx.attempts if "skipped" not in a]
    skipped = [a for a in ctx.attempts if a.get("skipped") == "circuit_open"]
    hints = [a["retry_after"] for a in ctx.attempts if a.get("retry_after") is not None]
    details = {"attempts": ctx.attempts}
    if last is None and not skipped:
        return PermissionDenied(
            f"No deployment that can serve '{ctx.requested_model}' may be used by this request.",
            code="model_not_allowed",
            param="model",
            details=details,
        )
    if last is None:
        return UpstreamError(
            f"Every deployment that can serve '{ctx.requested_model}' is paused after "
            "repeated failures; try again shortly.",
            status=503,
            code="circuit_open",
            retryable=True,
            retry_after=_retry_after(hints, default=True),
            details=details,
        )
    if not is_deployment_fault(last):
        # The caller's own request was refused: their answer, with the history attached.
        last.details = {**last.details, **details}
        return last
    retryable = bool(skipped) or any(a["retryable"] for a in tried)
    retry_after = None
    if out_of_time or all(a["status"] == 504 for a in tried):
        status, code, err_type = 504, "upstream_timeout", "timeout_error"
    elif all(a["status"] == 429 for a in tried):
        status, code, err_type = 429, "upstream_rate_limited", "rate_limit_error"
        retryable = True
        retry_after = _retry_after(hints, default=True)
    elif skipped or last.status in (429, 503):
        status, code, err_type = 503, last.code or "upstream_unavailable", "upstream_error"
        if last.status == 429:
            code = "upstream_unavailable"
        retry_after = _retry_after(hints, default=True)
    else:
        status, code, err_type = 502, last.code or "upstream_error", "upstream_error"
    if len(tried) == 1 and not skipped and not out_of_time:
        message = last.message
    else:
        deployments = len({(a["deployment"], a["provider"]) for a in ctx.attempts})
        message = (
            f"No deployment answered: {len(tried)} attempt(s) on {deployments} "
            f"deployment(s) failed{' within the latency budget' if out_of_time else ''}. "
            f"Last error: {last.message}"
        )
    return UpstreamError(
        message,
        status=status,
        type=err_type,
        code=code,
        retryable=retryable,
        retry_after=retry_after,
        details=details,
        upstream_status=getattr(last, "upstream_status", None),
    )


OnSuccess = Callable[[DeploymentInfo, Any, float, bool, Breakers], Awaitable[Any]]


async def _attempts(
    ctx: RequestContext,
    cands: list[DeploymentInfo],
    call: Callable[[Adapter, Target], Awaitable[Any]],
    overrides: Overrides,
    on_success: OnSuccess,
    operation: str = "chat",
) -> Any:
    policy = _policy(overrides)
    breakers = get_breakers() if hot.ATP_BREAKER_ENABLED else None
    budget = overrides.budget if overrides.budget is not None else hot.ATP_RETRY_BUDGET_SECONDS
    # The deadline on the policy's clock, so an injected clock sees a consistent budget.
    deadline = policy.clock() + budget - (time.monotonic() - ctx.started)
    last: ATPError | None = None
    out_of_time = False
    reach = ctx.reach
    for dep in cands:
        if last is not None and policy.clock() >= deadline:
            out_of_time = True
            break
        if reach is not None and dep.id not in reach.ids:
            _refuse(ctx, dep)
            continue
        probe = False
        if breakers is not None:
            decision = await breakers.allow(dep.id)
            if not decision.allowed:
                _record_skip(ctx, dep, decision.retry_after)
                continue
            probe = decision.probe
        ctx.deployment = dep
        adapter = get_adapter(dep.target.kind)
        target = _target(dep, overrides)
        stats = observed.get(dep.id)
        try_number = 1
        while True:
            stats.started()
            started = time.monotonic()
            try:
                if tracing.enabled:
                    with tracing.span(
                        f"{operation} {dep.target.upstream_model}",
                        tracing.attempt_attributes(operation, dep, try_number),
                        client=True,
                    ) as attempt_span:
                        result = await call(adapter, target)
                        tracing.record_usage(attempt_span, result)
                else:
                    result = await call(adapter, target)
            except UpstreamError as err:
                ms = (time.monotonic() - started) * 1000
                _record(ctx, dep, err, try_number, ms)
                last = err
                if not is_deployment_fault(err):
                    stats.finished(None, ok=True)
                    if breakers is not None and probe:
                        # The upstream answered; the probe proved it alive.
                        await breakers.record(dep.id, ok=True, probe=True)
                    raise _final_error(ctx, err) from None
                stats.finished(ms, ok=False)
                if breakers is not None:
                    await breakers.record(dep.id, ok=False, probe=probe)
                if not is_retryable(err) or probe:
                    # A failed probe re-opened the breaker: no more calls to it now.
                    break
                if breakers is not None and breakers.peek(dep.id) == OPEN:
                    break
                wait = policy.delay(
                    try_number, remaining=deadline - policy.clock(), retry_after=err.retry_after
                )
                if wait is None:
                    break
                await policy.sleep(wait)
                try_number += 1
                continue
            except BaseException:
                # Cancelled, or a bug below: count the call as ended, then let it propagate.
                stats.finished(None, ok=True)
                raise
            ms = (time.monotonic() - started) * 1000
            return await on_success(dep, result, ms, probe, breakers)
    raise _final_error(ctx, last, out_of_time=out_of_time)


async def _finished(
    dep: DeploymentInfo, result: Any, ms: float, probe: bool, breakers: Breakers | None
) -> Any:
    observed.get(dep.id).finished(ms, ok=True)
    if breakers is not None:
        await breakers.record(dep.id, ok=True, probe=probe)
    return result


async def chat(
    ctx: RequestContext,
    cands: list[DeploymentInfo],
    body: dict[str, Any],
    overrides: Overrides = NO_OVERRIDES,
) -> ChatResult:
    return await _attempts(
        ctx, cands, lambda adapter, target: adapter.chat(target, body), overrides, _finished
    )


async def embeddings(
    ctx: RequestContext,
    cands: list[DeploymentInfo],
    body: dict[str, Any],
    overrides: Overrides = NO_OVERRIDES,
) -> EmbeddingsResult:
    return await _attempts(
        ctx,
        cands,
        lambda adapter, target: adapter.embeddings(target, body),
        overrides,
        _finished,
        "embeddings",
    )


def stream_chunk_limit(body: dict[str, Any], dep: DeploymentInfo) -> int | None:
    """How many chunks a stream may send: a provider sends about one per output token, so
    far more than twice the output the request (or else the deployment) allows means it is
    flooding. None when neither sets a maximum (the total timeout still ends the stream)."""
    allowed = body.get("max_completion_tokens") or body.get("max_tokens")
    if not isinstance(allowed, int) or isinstance(allowed, bool) or allowed <= 0:
        allowed = dep.target.max_output_tokens
    if not allowed:
        return None
    return 2 * allowed + STREAM_CHUNK_SLACK


# Chunks a stream may send beyond twice its output allowance (role, usage, finish, and
# providers that split a token's text).
STREAM_CHUNK_SLACK = 64


class TrackedStream:
    """The rest of an upstream stream; when it ends, the deployment's statistics and (on a
    mid-stream failure) its breaker learn how it went. A stream sending more chunks than
    `limit` is cut off as a failure of its deployment (`upstream_stream_too_long`)."""

    __slots__ = ("_inner", "_dep", "_started", "_breakers", "_done", "_left")

    def __init__(
        self,
        inner: AsyncIterator[dict[str, Any]],
        dep: DeploymentInfo,
        started: float,
        breakers: Breakers | None,
        limit: int | None = None,
    ) -> None:
        self._inner = inner
        self._dep = dep
        self._started = started
        self._breakers = breakers
        self._done = False
        self._left = limit

    def __aiter__(self) -> TrackedStream:
        return self

    async def __anext__(self) -> dict[str, Any]:
        try:
            if self._left is not None:
                self._left -= 1
                if self._left < 0:
                    await close_stream(self._inner)
                    raise UpstreamError(
                        f"Provider '{self._dep.provider_name}' sent far more stream chunks "
                        "than the request's maximum output allows; the stream was cut off.",
                        code="upstream_stream_too_long",
                    )
            return await self._inner.__anext__()
        except StopAsyncIteration:
            self._end(ok=True)
            raise
        except UpstreamError as err:
            failed = is_deployment_fault(err)
            self._end(ok=not failed)
            if failed and self._breakers is not None:
                await self._breakers.record(self._dep.id, ok=False)
            raise

    def _end(self, *, ok: bool, cancelled: bool = False) -> None:
        if self._done:
            return
        self._done = True
        ms = None if cancelled else (time.monotonic() - self._started) * 1000
        observed.get(self._dep.id).finished(ms, ok=ok)

    async def aclose(self) -> None:
        self._end(ok=True, cancelled=True)
        await close_stream(self._inner)


async def open_stream(
    ctx: RequestContext,
    cands: list[DeploymentInfo],
    body: dict[str, Any],
    overrides: Overrides = NO_OVERRIDES,
) -> tuple[dict[str, Any], AsyncIterator[dict[str, Any]]]:
    """Start a stream and return its first chunk with the rest of the iterator."""
    opened: dict[str, float] = {}

    async def first_chunk(adapter: Adapter, target: Target):
        opened["at"] = time.monotonic()
        stream = adapter.chat_stream(target, body)
        try:
            first = await anext(stream)
        except StopAsyncIteration:
            raise UpstreamError(
                f"Provider '{target.provider_name}' sent an empty stream."
            ) from None
        except BaseException:
            await close_stream(stream)
            raise
        return first, stream

    async def started(
        dep: DeploymentInfo, result: Any, ms: float, probe: bool, breakers: Breakers | None
    ):
        first, stream = result
        observed.get(dep.id).first_byte(ms)
        if breakers is not None:
            # The first chunk arrived: the deployment works, whatever happens later.
            await breakers.record(dep.id, ok=True, probe=probe)
        limit = stream_chunk_limit(body, dep)
        return first, TrackedStream(stream, dep, opened["at"], breakers, limit)

    return await _attempts(ctx, cands, first_chunk, overrides, started)


async def close_stream(stream: AsyncIterator[Any]) -> None:
    aclose = getattr(stream, "aclose", None)
    if aclose is not None:
        try:
            await aclose()
        except Exception:  # the stream already failed; closing is best effort
            logger.debug("closing a failed stream raised", exc_info=True)
