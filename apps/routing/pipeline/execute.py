"""Step: call the chosen deployment's adapter, falling back to the next candidate.

A retryable failure (timeouts, 5xx, 429, connection errors) moves on to the next
candidate; anything else is the caller's answer. A stream may fall back only until its
first chunk arrived, since nothing has reached the caller before that.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

from apps.providers.adapters import get_adapter
from apps.providers.adapters.base import Adapter, ChatResult, EmbeddingsResult
from apps.providers.exceptions import UpstreamError
from apps.routing.pipeline.context import RequestContext
from apps.routing.snapshot import DeploymentInfo
from atp_site.lib.errors import ATPError

logger = logging.getLogger(__name__)

T = TypeVar("T")


def _record(ctx: RequestContext, dep: DeploymentInfo, err: ATPError) -> None:
    ctx.attempts.append(
        {
            "deployment": dep.public_name,
            "provider": dep.provider_name,
            "status": err.status,
            "error": err.message,
        }
    )


def _final_error(ctx: RequestContext, last: ATPError) -> ATPError:
    if len(ctx.attempts) > 1:
        last.details = {**last.details, "attempts": ctx.attempts}
    return last


async def _first_answer(
    ctx: RequestContext,
    cands: list[DeploymentInfo],
    call: Callable[[Adapter, DeploymentInfo], Awaitable[T]],
) -> T:
    last: ATPError | None = None
    for dep in cands:
        ctx.deployment = dep
        try:
            return await call(get_adapter(dep.target.kind), dep)
        except UpstreamError as err:
            _record(ctx, dep, err)
            last = err
            if not err.retryable:
                break
    assert last is not None
    raise _final_error(ctx, last)


async def chat(
    ctx: RequestContext, cands: list[DeploymentInfo], body: dict[str, Any]
) -> ChatResult:
    return await _first_answer(ctx, cands, lambda adapter, dep: adapter.chat(dep.target, body))


async def embeddings(
    ctx: RequestContext, cands: list[DeploymentInfo], body: dict[str, Any]
) -> EmbeddingsResult:
    return await _first_answer(
        ctx, cands, lambda adapter, dep: adapter.embeddings(dep.target, body)
    )


async def open_stream(
    ctx: RequestContext, cands: list[DeploymentInfo], body: dict[str, Any]
) -> tuple[dict[str, Any], AsyncIterator[dict[str, Any]]]:
    """Start a stream and return its first chunk with the rest of the iterator."""
    last: ATPError | None = None
    for dep in cands:
        ctx.deployment = dep
        stream = get_adapter(dep.target.kind).chat_stream(dep.target, body)
        try:
            first = await anext(stream)
        except StopAsyncIteration:
            err = UpstreamError(f"Provider '{dep.provider_name}' sent an empty stream.")
            _record(ctx, dep, err)
            last = err
            continue
        except UpstreamError as err:
            _record(ctx, dep, err)
            last = err
            await close_stream(stream)
            if not err.retryable:
                break
            continue
        return first, stream
    assert last is not None
    raise _final_error(ctx, last)


async def close_stream(stream: AsyncIterator[Any]) -> None:
    aclose = getattr(stream, "aclose", None)
    if aclose is not None:
        try:
            await aclose()
        except Exception:  # the stream already failed; closing is best effort
            logger.debug("closing a failed stream raised", exc_info=True)
