"""The console's landing page and the health probes."""

from __future__ import annotations

import logging

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from atp_site.lib import spill

logger = logging.getLogger(__name__)

# A probe must answer within a load balancer's timeout even when Redis hangs.
REDIS_PROBE_TIMEOUT_SECONDS = 1.0


def home(request: HttpRequest) -> HttpResponse:
    return render(request, "home.html")


def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness: the process serves HTTP. Restart it when this fails."""
    return JsonResponse({"status": "ok"})


def _database_ok() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            return cursor.fetchone() == (1,)
    except Exception:
        logger.warning("readiness: the database did not answer", exc_info=True)
        return False


def _redis_ok() -> bool:
    import redis

    client = redis.Redis.from_url(
        settings.REDIS_URL,
        socket_timeout=REDIS_PROBE_TIMEOUT_SECONDS,
        socket_connect_timeout=REDIS_PROBE_TIMEOUT_SECONDS,
    )
    try:
        return bool(client.ping())
    except Exception:
        logger.warning("readiness: Redis did not answer", exc_info=True)
        return False
    finally:
        client.close()


# Migrations, once all applied, stay applied for the life of the process.
_migrated = False


def _migrations_ok() -> bool:
    global _migrated
    if _migrated:
        return True
    from django.db.migrations.executor import MigrationExecutor

    try:
        executor = MigrationExecutor(connection)
        pending = executor.migration_plan(executor.loader.graph.leaf_nodes())
    except Exception:
        logger.warning("readiness: the migration state could not be read", exc_info=True)
        return False
    if pending:
        logger.warning("readiness: %d migrations are not applied", len(pending))
    _migrated = not pending
    return _migrated


def _sync_checks() -> dict[str, bool]:
    checks = {"database": _database_ok()}
    checks["migrations"] = checks["database"] and _migrations_ok()
    if settings.REDIS_URL:
        checks["redis"] = _redis_ok()
        if not settings.CELERY_TASK_ALWAYS_EAGER:
            # The job broker is that Redis (CELERY_BROKER_URL = REDIS_URL).
            checks["broker"] = checks["redis"]
    return checks


async def _snapshot_ok() -> bool:
    """The configuration snapshot the data plane serves from is loaded (loaded now if it
    is not: start-up loads it, but a database that was down then leaves it to the first
    request or probe)."""
    from apps.routing.snapshot import holder

    try:
        await holder.get()
    except Exception:
        logger.warning("readiness: the configuration snapshot could not be loaded", exc_info=True)
        return False
    return True


async def readyz(request: HttpRequest) -> JsonResponse:
    """Readiness: this process can serve and record requests. Take it out of the load
    balancer's rotation while it answers 503.

    Checks: the database answers and every migration is applied; Redis (and so the job
    broker, when a worker runs the jobs) answers when configured; the configuration
    snapshot is loaded. `records` fails only while new /v1 requests are refused because
    neither the database nor the spill space can take their records; rows merely waiting
    in the spill (`spilling`) still count as ready, since nothing is lost.
    """
    checks = await sync_to_async(_sync_checks, thread_sensitive=True)()
    checks["snapshot"] = checks["database"] and await _snapshot_ok()
    checks["records"] = not spill.state.refusing
    ready = all(checks.values())
    return JsonResponse(
        {
            "status": "ok" if ready else "unavailable",
            "checks": checks,
            "spilling": spill.state.spill_bytes > 0,
        },
        status=200 if ready else 503,
    )
