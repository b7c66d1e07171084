"""Process start-up and shutdown for the ASGI app: drain writes, close upstream clients."""

from __future__ import annotations

import asyncio
import gc
import logging

from asgiref.sync import sync_to_async
from django.conf import settings

from apps.audit.bodies import stored_exchanges
from apps.audit.sealing import audit_head_seal_at_shutdown
from apps.audit.writebehind import audit_events
from apps.costs import admission, alerts, overload
from apps.costs.ledger import ledger
from apps.providers import tokens
from apps.providers.http import close_sessions
from apps.routing import cache
from apps.routing.engine.learning import learning_load, learning_persist
from apps.routing.pipeline.ensemble import drain_mirrors
from apps.routing.pipeline.learning import drain_learning
from apps.routing.resilience.breaker import close_clients as close_breaker_clients
from apps.routing.snapshot import holder
from apps.routing.writebehind import STARTUP_REPLAY_SECONDS, feedback, request_logs
from atp_site import metrics
from atp_site.lib import local_beat, startup, tracing

logger = logging.getLogger(__name__)


async def _semantic_routes() -> bool:
    from apps.routing.models import Route

    try:
        return await sync_to_async(Route.objects.filter(enabled=True, semantic_cache=True).exists)()
    except Exception:  # no tables yet (before migrate): nothing to warm
        logger.warning("could not read routes at start-up; the embedding model loads lazily")
        return False


_background: set[asyncio.Task] = set()
QUEUES = (audit_events, stored_exchanges, request_logs, ledger, feedback)


async def _recover_journals() -> None:
    """Write what stopped processes journaled but never wrote (Redis only)."""
    for queue in QUEUES:
        try:
            await queue.recover()
        except Exception:
            logger.exception("write-behind %s: journal recovery at start-up failed", queue.name)


async def _replay_spills() -> None:
    """Write what a stopped process on this ATP_DATA_DIR spilled while the database was
    unreachable; what takes longer goes on in the flush loops while serving."""
    replays = [task for queue in QUEUES if (task := queue.start()) is not None]
    if replays:
        await asyncio.wait(replays, timeout=STARTUP_REPLAY_SECONDS)


def _load_learning() -> None:
    """What earlier processes learned (persisted bandit statistics and task clusters)."""
    try:
        loaded = learning_load()
        logger.info("routing: %d learned arms and %d task clusters loaded", *loaded.values())
    except Exception:  # no tables yet (before migrate): start from the priors
        logger.warning("could not load learned routing statistics; starting fresh")


def _persist_learning() -> None:
    try:
        learning_persist()
    except Exception:
        logger.exception("learned routing statistics not persisted at shutdown")


async def _publish_console_figures() -> None:
    """The console's last second of figures from this process (after the log is drained)."""
    from atp_site.console.live.publisher import publisher

    try:
        await asyncio.wait_for(publisher.stop(), timeout=5)
    except Exception:  # figures are a view; shutdown goes on without them
        logger.warning("console figures not published at shutdown", exc_info=True)


async def _load_snapshot() -> None:
    """Load the configuration snapshot before the first request (and /readyz) needs it; a
    database that is not up yet leaves it to them."""
    try:
        await holder.get()
    except Exception:
        logger.warning("the configuration snapshot could not be loaded at start-up", exc_info=True)


async def shutdown() -> None:
    for task in _background:
        task.cancel()
    _background.clear()
    # Challenger calls still running settle into the queues below, so they go first.
    await drain_mirrors()
    await audit_events.drain()
    await stored_exchanges.drain()
    await request_logs.drain()
    await ledger.drain()
    await feedback.drain()
    # Limit and budget settlements still queued (reservations would otherwise wait for
    # their expiry), then the budget alerts they crossed.
    await admission.drain()
    await asyncio.to_thread(alerts.wait_for_pending)
    await _publish_console_figures()
    await audit_head_seal_at_shutdown()
    await drain_learning()
    await sync_to_async(_persist_learning, thread_sensitive=True)()
    if settings.ATP_METRICS_DIR:  # the instance's totals keep this worker's last figures
        await asyncio.to_thread(metrics.write_process_file, settings.ATP_METRICS_DIR)
    await asyncio.to_thread(tracing.flush)
    await cache.aclose()
    await close_breaker_clients()
    await close_sessions()


async def lifespan(scope, receive, send) -> None:
    """ASGI lifespan protocol: warm the tokenizer at start-up; drain on shutdown."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            if await startup.lifespan_startup_refused(send):
                return
            # Load the tokenizer now rather than in the first request that needs it.
            await asyncio.to_thread(tokens.preload)
            # Load the embedding model now if any route uses the semantic cache: loading
            # it inside the first such request would stall the event loop.
            if settings.ATP_CACHE_SEMANTIC and await _semantic_routes():
                await cache.warm_up()
            # Everything alive now (Django, settings, modules) lives as long as the process:
            # keep it out of the collector's scans so full collections under load stay cheap.
            await sync_to_async(_load_learning, thread_sensitive=True)()
            await _load_snapshot()
            await _recover_journals()
            await _replay_spills()
            if settings.ATP_LOCAL_BEAT:
                _background.add(asyncio.ensure_future(local_beat.run_forever()))
            if settings.ATP_METRICS_DIR:
                _background.add(asyncio.ensure_future(metrics.share_forever()))
            if settings.ATP_OVERLOAD_MAX_IN_FLIGHT:
                _background.add(asyncio.ensure_future(overload.control_forever()))
            gc.collect()
            gc.freeze()
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            try:
                await shutdown()
            except Exception:
                logger.exception("shutdown did not complete cleanly")
            await send({"type": "lifespan.shutdown.complete"})
            return
