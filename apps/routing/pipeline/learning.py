"""Step after settle: teach the routing engine what happened to a routed request.

The task clusters learn from the request and the bandit from the outcome (success,
latency, cost); both off the response path. Explicit feedback (`POST /v1/feedback`)
arrives later through `feedback`.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from apps.routing.engine.router import get_engine
from apps.routing.pipeline.context import RequestContext

logger = logging.getLogger(__name__)

_learning: set[asyncio.Task] = set()


def learning_key(tenant_id: str | None, request_id: str) -> str:
    """Requests are remembered per tenant, so feedback can only rate the caller's own."""
    return f"{tenant_id or '-'}:{request_id}"


def observe(ctx: RequestContext, row: dict[str, Any]) -> None:
    """After settle: teach the engine what happened. Never raises, never waits."""
    decision = ctx.route_decision
    if decision is None or ctx.shadow_of or ctx.cache in ("hit", "semantic_hit"):
        return
    try:
        engine = get_engine()
        engine.learn(decision)
        if decision.task_cluster is None or row["status"] == "cancelled":
            return
        task = asyncio.ensure_future(
            engine.record_outcome(
                decision,
                model=row["model"] or None,
                success=row["status"] == "success",
                latency_ms=float(row["latency_ms"] or 0),
                cost_usd=float(row["cost_usd"] or 0),
                request_id=learning_key(row["tenant_id"], ctx.request_id),
            )
        )
        _learning.add(task)
        task.add_done_callback(_learned)
    except Exception:
        logger.exception("routing outcome of %s not recorded", ctx.request_id)


def _learned(task: asyncio.Task) -> None:
    _learning.discard(task)
    if not task.cancelled() and task.exception() is not None:
        logger.warning("routing outcome not recorded: %s", task.exception())


async def drain_learning(wait_seconds: float = 5.0) -> None:
    """Let outcome updates still in flight reach the shared statistics (at shutdown)."""
    if _learning:
        await asyncio.wait(list(_learning), timeout=wait_seconds)
