"""Reads of providers and model deployments for the console and the management API."""

from __future__ import annotations

from typing import Any

from django.db.models import OuterRef, QuerySet, Subquery

from apps.providers.models import HealthCheck, ModelDeployment, Provider

# Permission scoping is added here, once per entity, so every list narrows the same way.


def provider_list() -> QuerySet[Provider]:
    return Provider.objects.all()


def deployment_list(*, provider: Provider | None = None) -> QuerySet[ModelDeployment]:
    deployments = ModelDeployment.objects.select_related("provider")
    if provider is not None:
        deployments = deployments.filter(provider=provider)
    return deployments


def provider_list_with_health() -> QuerySet[Provider]:
    """Providers annotated with their latest health check: `health_status`,
    `health_latency_ms`, `health_error` and `health_checked_at` (None when never checked)."""
    latest = HealthCheck.objects.filter(provider=OuterRef("pk")).order_by("-checked_at", "-id")
    return provider_list().annotate(
        health_status=Subquery(latest.values("status")[:1]),
        health_latency_ms=Subquery(latest.values("latency_ms")[:1]),
        health_error=Subquery(latest.values("error")[:1]),
        health_checked_at=Subquery(latest.values("checked_at")[:1]),
    )


def health_check_list(*, provider: Provider | None = None) -> QuerySet[HealthCheck]:
    """Health checks, newest first (each provider keeps ATP_HEALTH_HISTORY of them)."""
    checks = HealthCheck.objects.select_related("provider")
    if provider is not None:
        checks = checks.filter(provider=provider)
    return checks.order_by("-checked_at", "-id")


def deployment_resilience_list(*, provider: Provider | None = None) -> list[dict[str, Any]]:
    """Each deployment with its circuit breaker (shared state) and what this process
    observed of it (latency EWMA and p95, error rate, in-flight calls)."""
    from apps.routing.resilience import stats
    from apps.routing.resilience.breaker import get_breakers

    breakers = get_breakers()
    known = breakers.states()
    rows = []
    for dep in deployment_list(provider=provider):
        key = str(dep.id)
        breaker = known.get(key)
        observed = stats.peek(key)
        rows.append(
            {
                "deployment": dep,
                "breaker": breaker.as_dict() if breaker else {"state": "closed"},
                "stats": observed.as_dict() if observed else None,
            }
        )
    return rows


def deployment_circuit(deployment: ModelDeployment) -> dict[str, Any]:
    """One deployment's circuit breaker as every process sees it (Redis when configured)."""
    from apps.routing.resilience.breaker import get_breakers

    return get_breakers().state_of(str(deployment.id)).as_dict()


def routes_using_deployment(deployment: ModelDeployment) -> list[dict[str, Any]]:
    """Routes naming the deployment (its public name or an alias) as a candidate, fallback
    or challenger, or wrapping it under its own name; `how` says which."""
    from apps.routing.models import Route

    names = {deployment.public_name, *deployment.aliases}
    found = []
    for route in Route.objects.order_by("name"):
        how = []
        if route.name in names:
            how.append("wraps it")
        if names & set(route.candidates or ()):
            how.append("candidate")
        if names & set(route.fallbacks or ()):
            how.append("fallback")
        if route.challenger in names:
            how.append("challenger")
        if how:
            found.append({"route": route, "how": how})
    return found


def provider_encrypted_credentials() -> list[str]:
    """Every stored credential as kept (encrypted): backups record which keys made them."""
    return list(
        Provider.objects.exclude(api_key_encrypted="").values_list("api_key_encrypted", flat=True)
    )
