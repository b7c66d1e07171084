"""Background jobs of apps.costs."""

from __future__ import annotations

import logging

from celery import shared_task
from django.db.models import Q
from django.utils import timezone

logger = logging.getLogger(__name__)

NOTIFY_RETRIES = 6


class NotDelivered(Exception):
    pass


@shared_task(
    name="costs.notify_alert",
    bind=True,
    autoretry_for=(NotDelivered,),
    retry_backoff=30,
    retry_backoff_max=1800,
    retry_jitter=True,
    max_retries=NOTIFY_RETRIES,
)
def notify_alert(self, alert_id: str) -> dict:
    """Send a budget alert through every enabled notifier of its tenant and the platform's,
    each once: a retry (with backoff) sends only to those that failed."""
    from apps.costs import notifiers
    from apps.costs.models import BudgetAlert, Notifier

    alert = BudgetAlert.objects.select_related("budget__tenant").filter(pk=alert_id).first()
    if alert is None:
        return {"sent": 0, "failed": 0}
    targets = Notifier.objects.filter(enabled=True).filter(
        Q(tenant__isnull=True) | Q(tenant_id=alert.tenant_id)
    )
    payload = notifiers.alert_payload(alert)
    done = set(alert.delivered_to)
    errors = []
    for notifier in targets:
        if str(notifier.pk) in done:
            continue
        try:
            notifiers.deliver(notifier, payload)
        except notifiers.DeliveryFailed as exc:
            errors.append(f"{notifier.name}: {exc}")
            continue
        done.add(str(notifier.pk))
    alert.delivered_to = sorted(done)
    alert.notify_attempts += 1
    alert.notify_error = "; ".join(errors)[:2000]
    if not errors:
        alert.notified_at = timezone.now()
    alert.save(update_fields=["delivered_to", "notify_attempts", "notify_error", "notified_at"])
    if errors:
        logger.warning("budget alert %s not delivered: %s", alert_id, alert.notify_error)
        raise NotDelivered(alert.notify_error)
    return {"sent": len(done), "failed": 0}


@shared_task(name="costs.rollup_usage", soft_time_limit=240, time_limit=300)
def rollup_usage() -> dict:
    """Roll the usage ledger up into hourly and daily buckets: the recent hours, and those
    of rows that arrived since the last run (apps.costs.rollups). Safe to repeat."""
    from apps.costs.rollups import rollup_run

    return rollup_run().as_dict()


@shared_task(name="costs.detect_anomalies", soft_time_limit=120, time_limit=180)
def detect_anomalies() -> dict:
    """Record, audit and notify tenants' spend anomalies of the recent hours
    (apps.costs.anomalies); each tenant's hour alerts once."""
    from apps.costs.anomalies import anomalies_detect

    found = anomalies_detect()
    return {"anomalies": len(found)}


@shared_task(
    name="costs.notify_anomaly",
    bind=True,
    autoretry_for=(NotDelivered,),
    retry_backoff=30,
    retry_backoff_max=1800,
    retry_jitter=True,
    max_retries=NOTIFY_RETRIES,
)
def notify_anomaly(self, anomaly_id: str) -> dict:
    """Send a spend anomaly through every enabled notifier of its tenant and the
    platform's, each once: a retry (with backoff) sends only to those that failed."""
    from apps.costs.anomalies import anomaly_notify

    errors = anomaly_notify(anomaly_id)
    if errors:
        message = "; ".join(errors)
        logger.warning("spend anomaly %s not delivered: %s", anomaly_id, message)
        raise NotDelivered(message)
    return {"failed": 0}


# --- the pricing catalog (apps.costs.catalog) ---------------------------------------------------


@shared_task(
    name="costs.refresh_prices", bind=True, max_retries=3, soft_time_limit=300, time_limit=360
)
def refresh_prices(self) -> dict:
    """Refresh prices from the price catalog (ATP_PRICE_CATALOG), put due price versions in
    force and warn of stale prices; returns the report. A catalog that cannot be read is
    retried with backoff; an invalid one fails without changing anything."""
    from apps.costs.catalog import CatalogUnavailable, price_catalog_refresh

    try:
        return price_catalog_refresh().as_dict()
    except CatalogUnavailable as exc:
        logger.warning("price catalog refresh failed: %s", exc.message)
        raise self.retry(exc=exc, countdown=300 * 2**self.request.retries) from exc
