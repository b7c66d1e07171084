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
