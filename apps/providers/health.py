"""Provider health checks: one cheap real request per enabled provider, recorded and fed
into the deployments' circuit breakers.

The probe goes through the provider's own adapter and credentials:
- OpenAI and OpenAI-compatible servers: `GET /models` (free; proves the endpoint and the
  key), degraded when a deployed upstream model is missing from the list;
- Ollama: `GET /api/tags`, degraded when a deployed model is not pulled;
- Anthropic, Gemini and the simulator: a one-token chat completion on the provider's
  cheapest enabled chat deployment (an embedding request when it serves only embeddings).
A probe that answered later than ATP_HEALTH_DEGRADED_MS is degraded; one that failed is
down (a redirect is a failure: probes, like every upstream call, never follow one). A down provider counts one failure on each of its deployments' breakers; an up
provider lets its open breakers admit a probe call at once instead of after the cool-down.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import transaction

from apps.providers.adapters import get_adapter
from apps.providers.adapters.base import Target, UpstreamCall
from apps.providers.credentials import provider_api_key
from apps.providers.exceptions import UpstreamError
from apps.providers.http import close_sessions
from apps.providers.models import HealthCheck, ModelDeployment, Provider

logger = logging.getLogger(__name__)

_LISTING_KINDS = {"openai", "openai_compatible", "ollama"}
PING = "ping"


@dataclass(frozen=True, slots=True)
class ProbeResult:
    status: str  # HealthCheck.Status
    latency_ms: int | None
    error: str = ""


def provider_target(
    provider: Provider, deployment: ModelDeployment | None, timeout: float
) -> Target:
    """A Target for probing: the provider's credentials, timeouts capped at `timeout`."""
    api_key = provider_api_key(provider)

    def capped(value: float | None, default: float) -> float:
        return min(value or default, timeout)

    return Target(
        provider_id=str(provider.id),
        provider_name=provider.name,
        kind=provider.kind,
        base_url=provider.base_url.rstrip("/"),
        upstream_model=deployment.upstream_model if deployment else "",
        api_key=api_key,
        connect_timeout=capped(provider.connect_timeout, settings.ATP_UPSTREAM_CONNECT_TIMEOUT),
        first_byte_timeout=capped(
            provider.first_byte_timeout, settings.ATP_UPSTREAM_FIRST_BYTE_TIMEOUT
        ),
        total_timeout=timeout,
        options=dict(provider.options or {}),
        max_output_tokens=1,
    )


def _probe_deployment(deployments: list[ModelDeployment]) -> ModelDeployment | None:
    """The cheapest chat deployment, else any (embeddings-only providers)."""
    if not deployments:
        return None

    def chat_first(dep: ModelDeployment) -> tuple[bool, Decimal, Decimal]:
        chat = not dep.capabilities or "chat" in dep.capabilities
        return (not chat, dep.input_price, dep.output_price)

    return min(deployments, key=chat_first)


async def _listed_models(provider: Provider, target: Target) -> set[str]:
    adapter = get_adapter(provider.kind)
    headers: dict[str, str] = adapter.headers(target)  # type: ignore[attr-defined]
    if provider.kind == "ollama":
        url = f"{target.base_url}/api/tags"
    else:
        url = f"{target.base_url}/models"
    async with UpstreamCall(adapter, target, url, headers=headers, method="GET") as call:
        payload = await call.json()
    if provider.kind == "ollama":
        names: set[str] = set()
        for model in payload.get("models") or ():
            for field in ("name", "model"):
                name = str(model.get(field) or "")
                if name:
                    names.add(name)
                    names.add(name.removesuffix(":latest"))
        return names
    return {str(m.get("id")) for m in payload.get("data") or () if isinstance(m, dict)}


async def _one_token(provider: Provider, target: Target, deployment: ModelDeployment) -> None:
    adapter = get_adapter(provider.kind)
    chat = not deployment.capabilities or "chat" in deployment.capabilities
    if chat:
        body: dict[str, Any] = {"messages": [{"role": "user", "content": PING}], "max_tokens": 1}
        await adapter.chat(target, body)
    else:
        await adapter.embeddings(target, {"input": PING})


async def probe_provider(
    provider: Provider, deployments: list[ModelDeployment], *, limit: float | None = None
) -> ProbeResult | None:
    """Probe one provider; None when there is nothing to probe (no enabled deployment of
    a provider whose kind has no model listing)."""
    timeout = limit or settings.ATP_HEALTH_TIMEOUT_SECONDS
    deployment = _probe_deployment(deployments)
    listing = provider.kind in _LISTING_KINDS
    if deployment is None and not listing:
        return None
    target = provider_target(provider, deployment, timeout)
    started = time.monotonic()
    missing: list[str] = []
    try:
        async with asyncio.timeout(timeout):
            if listing:
                listed = await _listed_models(provider, target)
                missing = sorted({d.upstream_model for d in deployments} - listed)
            else:
                assert deployment is not None
                await _one_token(provider, target, deployment)
    except UpstreamError as err:
        return ProbeResult(HealthCheck.Status.DOWN, _ms(started), err.message[:1000])
    except TimeoutError:
        return ProbeResult(HealthCheck.Status.DOWN, _ms(started), f"No answer within {timeout:g}s.")
    except Exception as exc:
        logger.exception("health probe of provider %s failed unexpectedly", provider.name)
        return ProbeResult(
            HealthCheck.Status.DOWN, _ms(started), f"Probe failed ({type(exc).__name__})."
        )
    latency = _ms(started)
    if missing:
        return ProbeResult(
            HealthCheck.Status.DEGRADED,
            latency,
            f"Deployed models not served upstream: {', '.join(missing)}"[:1000],
        )
    if latency > settings.ATP_HEALTH_DEGRADED_MS:
        return ProbeResult(
            HealthCheck.Status.DEGRADED,
            latency,
            f"Answered in {latency} ms (over {settings.ATP_HEALTH_DEGRADED_MS} ms).",
        )
    return ProbeResult(HealthCheck.Status.UP, latency)


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


async def _probe_all(
    work: list[tuple[Provider, list[ModelDeployment]]],
) -> list[ProbeResult | None]:
    try:
        return await asyncio.gather(*(probe_provider(p, deps) for p, deps in work))
    finally:
        await close_sessions()


def health_check_record(
    *, provider: Provider, result: ProbeResult, deployment_ids: list[str]
) -> HealthCheck:
    """Store one probe's result, trim the provider's history, and feed the breakers."""
    from apps.routing.resilience.breaker import get_breakers

    with transaction.atomic():
        check = HealthCheck(
            provider=provider,
            status=result.status,
            latency_ms=result.latency_ms,
            error=result.error,
        )
        check.full_clean()
        check.save()
        stale = list(
            HealthCheck.objects.filter(provider=provider)
            .order_by("-checked_at", "-id")
            .values_list("id", flat=True)[settings.ATP_HEALTH_HISTORY :]
        )
        if stale:
            HealthCheck.objects.filter(id__in=stale).delete()
    if settings.ATP_BREAKER_ENABLED:
        breakers = get_breakers()
        for dep_id in deployment_ids:
            try:
                if result.status == HealthCheck.Status.DOWN:
                    breakers.record_sync(dep_id, ok=False)
                elif result.status == HealthCheck.Status.UP:
                    breakers.nudge_sync(dep_id)
            except Exception:
                logger.warning(
                    "could not feed breaker %s from a health check", dep_id, exc_info=True
                )
    return check


def health_check_run(*, provider_ids: list[str] | None = None) -> list[HealthCheck]:
    """Probe every enabled provider (or those named), concurrently; record the results.

    Synchronous: called by the Celery task, never from the event loop.
    """
    providers = Provider.objects.filter(enabled=True)
    if provider_ids is not None:
        providers = providers.filter(id__in=provider_ids)
    work: list[tuple[Provider, list[ModelDeployment]]] = []
    for provider in providers.prefetch_related("deployments"):
        deployments = [d for d in provider.deployments.all() if d.enabled]
        work.append((provider, deployments))
    if not work:
        return []
    results = asyncio.run(_probe_all(work))
    checks = []
    for (provider, deployments), result in zip(work, results, strict=True):
        if result is None:
            continue
        checks.append(
            health_check_record(
                provider=provider, result=result, deployment_ids=[str(d.id) for d in deployments]
            )
        )
        log = logger.info if result.status == HealthCheck.Status.UP else logger.warning
        log(
            "provider %s is %s (%s ms) %s",
            provider.name,
            result.status,
            result.latency_ms,
            result.error,
        )
    return checks
