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
    """After settle: queue what happened for the engine. Never raises, never waits; the
    learning itself runs once the current callback (which sends the answer) is done,
    batched with the other requests that finished in the same loop turn."""
    decision = ctx.route_decision
    if decision is None or ctx.shadow_of or ctx.cache in ("hit", "semantic_hit"):
        return
    outcome = None
    if decision.task_cluster is not None and row["status"] != "cancelled":
        outcome = {
            "model": row["model"] or None,
            "success": row["status"] == "success",
            "latency_ms": float(row["latency_ms"] or 0),
            "cost_usd": float(row["cost_usd"] or 0),
            "request_id": learning_key(row["tenant_id"], ctx.request_id),
        }
    _pending.append((decision, outcome))
    global _flush_task
    if _flush_task is None or _flush_task.done():
        try:
            _flush_task = asyncio.get_running_loop().create_task(_flush())
        except RuntimeError:  # settled outside an event loop (a synchronous caller)
            _pending.clear()


_pending: list[tuple[Any, dict[str, Any] | None]] = []
_flush_task: asyncio.Task | None = None


async def _flush() -> None:
    engine = get_engine()
    while _pending:
        batch = _pending[:]
        _pending.clear()
        for decision, outcome in batch:
            try:
                engine.learn(decision)
                if outcome is not None:
                    await engine.record_outcome(decision, **outcome)
            except Exception:
                logger.exception("routing outcome not recorded")


async def drain_learning(wait_seconds: float = 5.0) -> None:
    """Let outcome updates still in flight reach the shared statistics (at shutdown)."""
    task = _flush_task
    if task is not None and not task.done():
        await asyncio.wait([task], timeout=wait_seconds)
