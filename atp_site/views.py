"""The console's landing page and the health probes."""

from __future__ import annotations

import logging

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


def readyz(request: HttpRequest) -> JsonResponse:
    """Readiness: this process can serve and record requests. Take it out of the load
    balancer's rotation while it answers 503.

    `records` fails only while new /v1 requests are refused because neither the database
    nor the spill space can take their records; rows merely waiting in the spill
    (`spilling`) still count as ready, since nothing is lost.
    """
    checks = {"database": _database_ok()}
    if settings.REDIS_URL:
        checks["redis"] = _redis_ok()
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
