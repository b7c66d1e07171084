"""Periodic provider jobs."""

from __future__ import annotations

from celery import shared_task

from apps.providers.health import health_check_run


@shared_task(name="providers.health_check", time_limit=120, soft_time_limit=100, max_retries=0)
def health_check_task(provider_ids: list[str] | None = None) -> dict[str, str]:
    """Every minute: probe each enabled provider; results feed the breakers and the console.

    Idempotent (each run adds one check per provider and trims the history); not retried,
    since the next run comes a minute later anyway.
    """
    checks = health_check_run(provider_ids=provider_ids)
    return {check.provider.name: check.status for check in checks}
