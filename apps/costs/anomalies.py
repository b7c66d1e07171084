"""Spend anomalies: a tenant's hourly spend far above its usual spend at that hour.

Method (a robust z-score, Iglewicz and Hoaglin's modified z-score):

- The history of an hour is the tenant's spend in the same hour of the day on each of the
  HISTORY_DAYS days before (a trailing window that follows the daily cycle: a busy 10:00
  is compared with past 10:00s, not with the quiet nights). Days before the tenant's first
  spend are left out; hours without spend count as zero.
- score = (spend - median) / scale, with scale = 1.4826 * MAD (the median absolute
  deviation, scaled to estimate a standard deviation). When more than half of the history
  equals the median (MAD = 0), 1.2533 * the mean absolute deviation is used instead, and
  the scale is never below 10% of the median nor below one cent, so a perfectly steady
  series alerts on a rise of more than 35%, not on any rise at all.
- An hour is an anomaly when score > Z_THRESHOLD (3.5, the usual cut-off for the
  modified z-score), the spend exceeds the median by at least MIN_EXCESS_USD (a jump from
  one cent to ten is not worth a page), and the history has at least MIN_HISTORY_DAYS
  days. Only rises are anomalies: a drop in spend needs no alert.

The job looks at the current hour (partial spend that is already anomalous will only
grow) and the RECENT_HOURS before it, reading the hourly rollups (apps.costs.rollups). An
anomaly is recorded once per tenant and hour (SpendAnomaly's unique constraint), audited as
`budget.spend_anomaly` in the same transaction, and sent to the tenant's and the platform's
notifiers after commit (`costs.notify_anomaly`, retried with backoff, each notifier once).
"""

from __future__ import annotations

import logging
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import Min, Q, Sum
from django.utils import timezone

from apps.costs import notifiers
from apps.costs.models import Notifier, SpendAnomaly, UsageRollup
from apps.costs.rollups import DAY, HOUR, floor_hour

logger = logging.getLogger(__name__)

Z_THRESHOLD = 3.5
HISTORY_DAYS = 14
MIN_HISTORY_DAYS = 7
MIN_EXCESS_USD = 1.0
MAD_TO_SIGMA = 1.4826
MEAN_AD_TO_SIGMA = 1.2533
RELATIVE_SCALE_FLOOR = 0.10
ABSOLUTE_SCALE_FLOOR_USD = 0.01
# Hours before the current one looked at again: late ledger rows may still raise them.
RECENT_HOURS = 3

EVENT_TYPE = "budget.spend_anomaly"
USD = Decimal("0.00000001")


@dataclass(frozen=True, slots=True)
class Score:
    """How far `value` sits above the history's median, in robust standard deviations."""

    value: float
    median: float
    mad: float
    scale: float
    z: float
    history: int


def robust_score(value: float, history: Sequence[float]) -> Score:
    """The modified z-score of `value` against `history` (which must not be empty)."""
    if not history:
        raise ValueError("a score needs at least one value of history")
    middle = statistics.median(history)
    deviations = [abs(x - middle) for x in history]
    mad = statistics.median(deviations)
    scale = MAD_TO_SIGMA * mad
    if scale == 0:
        scale = MEAN_AD_TO_SIGMA * statistics.fmean(deviations)
    scale = max(scale, RELATIVE_SCALE_FLOOR * abs(middle), ABSOLUTE_SCALE_FLOOR_USD)
    return Score(
        value=value,
        median=middle,
        mad=mad,
        scale=scale,
        z=(value - middle) / scale,
        history=len(history),
    )


def spend_anomaly_score(
    spent: float,
    history: Sequence[float],
    *,
    threshold: float = Z_THRESHOLD,
    min_history: int = MIN_HISTORY_DAYS,
    min_excess: float = MIN_EXCESS_USD,
) -> Score | None:
    """The score when `spent` is an anomaly against `history`, else None (see the module
    doc for the rule)."""
    if len(history) < min_history:
        return None
    score = robust_score(spent, history)
    if score.z > threshold and spent - score.median >= min_excess:
        return score
    return None


# --- detection ------------------------------------------------------------------------------


def _tenant_spend(hours: Sequence[datetime], tenant_ids: Any = None) -> dict[tuple, Decimal]:
    """(tenant id, hour start) -> spend, from the hourly rollups."""
    rollups = UsageRollup.objects.filter(
        grain=UsageRollup.Grain.HOUR, bucket_start__in=list(hours), tenant_id__isnull=False
    )
    if tenant_ids is not None:
        rollups = rollups.filter(tenant_id__in=list(tenant_ids))
    rows = rollups.values("tenant_id", "bucket_start").annotate(spent=Sum("cost_usd")).order_by()
    return {(r["tenant_id"], r["bucket_start"]): r["spent"] or Decimal(0) for r in rows}


def _first_hours(tenant_ids: Any) -> dict[Any, datetime]:
    rows = (
        UsageRollup.objects.filter(grain=UsageRollup.Grain.HOUR, tenant_id__in=list(tenant_ids))
        .values("tenant_id")
        .annotate(first=Min("bucket_start"))
        .order_by()
    )
    return {r["tenant_id"]: r["first"] for r in rows}


def anomalies_detect(
    *, now: datetime | None = None, recent_hours: int = RECENT_HOURS
) -> list[SpendAnomaly]:
    """Score the current hour and the `recent_hours` before it for every tenant that spent
    in them; record (and return) the anomalies not recorded before."""
    from apps.tenants.models import Tenant

    current = floor_hour(now or timezone.now())
    hours = [current - k * HOUR for k in range(recent_hours, -1, -1)]
    spent = {
        key: value for key, value in _tenant_spend(hours).items() if float(value) >= MIN_EXCESS_USD
    }
    if not spent:
        return []
    tenants = set(Tenant.objects.filter(pk__in={t for t, _ in spent}).values_list("pk", flat=True))
    known = set(
        SpendAnomaly.objects.filter(tenant_id__in=tenants, hour_start__in=hours).values_list(
            "tenant_id", "hour_start"
        )
    )
    candidates = {k: v for k, v in spent.items() if k[0] in tenants and k not in known}
    if not candidates:
        return []
    past = {h - k * DAY for h in hours for k in range(1, HISTORY_DAYS + 1)}
    history = _tenant_spend(sorted(past), {t for t, _ in candidates})
    first = _first_hours({t for t, _ in candidates})
    found = []
    for (tenant_id, hour), value in sorted(candidates.items(), key=lambda kv: kv[0][1]):
        days = [hour - k * DAY for k in range(1, HISTORY_DAYS + 1)]
        series = [
            float(history.get((tenant_id, day), 0))
            for day in days
            if day >= floor_hour(first.get(tenant_id, hour))
        ]
        score = spend_anomaly_score(float(value), series)
        if score is None:
            continue
        anomaly = anomaly_record(tenant_id=tenant_id, hour_start=hour, spent=value, score=score)
        if anomaly is not None:
            found.append(anomaly)
    return found


def anomaly_record(
    *, tenant_id: Any, hour_start: datetime, spent: Decimal, score: Score
) -> SpendAnomaly | None:
    """The anomaly, created and audited the first time only; None when this tenant's hour
    was already recorded (another run, another process)."""
    from apps.audit.snapshots import audit_change

    try:
        with transaction.atomic():
            anomaly = SpendAnomaly.objects.create(
                tenant_id=tenant_id,
                hour_start=hour_start,
                spent_usd=Decimal(spent).quantize(USD),
                median_usd=Decimal(str(score.median)).quantize(USD),
                score=score.z,
                threshold=Z_THRESHOLD,
                history_days=score.history,
            )
            audit_change(
                event_type=EVENT_TYPE,
                resource_id=anomaly.pk,
                tenant_id=tenant_id,
                data={
                    "hour_start": hour_start.isoformat(),
                    "spent_usd": str(anomaly.spent_usd),
                    "median_usd": str(anomaly.median_usd),
                    "score": round(score.z, 2),
                    "threshold": Z_THRESHOLD,
                    "history_days": score.history,
                },
            )
            transaction.on_commit(lambda: _queue_notify(anomaly.pk))
    except IntegrityError:
        return None
    return anomaly


def _queue_notify(anomaly_id: Any) -> None:
    from apps.costs.tasks import notify_anomaly

    try:
        notify_anomaly.delay(str(anomaly_id))
    except Exception:
        logger.exception("could not queue the notifications of spend anomaly %s", anomaly_id)


# --- notification ---------------------------------------------------------------------------


def _send_email(notifier: Notifier, payload: dict[str, Any]) -> None:
    recipients = [a.strip() for a in notifier.target.split(",") if a.strip()]
    subject = f"[ATP] Unusual spend for tenant {payload['tenant']}"
    text = (
        f"Tenant {payload['tenant']} spent ${payload['spent_usd']} in the hour from "
        f"{payload['hour_start']}, against a median of ${payload['median_usd']} for that hour "
        f"over the previous {payload['history_days']} days (robust z-score "
        f"{payload['score']}, alert above {payload['threshold']}).\n"
    )
    try:
        send_mail(subject, text, settings.DEFAULT_FROM_EMAIL, recipients, fail_silently=False)
    except Exception as exc:
        raise notifiers.DeliveryFailed(
            f"e-mail to {len(recipients)} recipient(s) failed: {type(exc).__name__}"
        ) from None


def _deliver(notifier: Notifier, payload: dict[str, Any]) -> None:
    # notifiers.send_email words a budget alert; webhooks take any payload as it is.
    if notifier.kind == Notifier.Kind.EMAIL:
        _send_email(notifier, payload)
    else:
        notifiers.deliver(notifier, payload)


def anomaly_notify(anomaly_id: Any) -> list[str]:
    """Send the anomaly through every enabled notifier of its tenant and the platform's
    that it has not reached yet; the failures, one sentence each (empty: all delivered)."""
    anomaly = SpendAnomaly.objects.select_related("tenant").filter(pk=anomaly_id).first()
    if anomaly is None:
        return []
    targets = Notifier.objects.filter(enabled=True).filter(
        Q(tenant__isnull=True) | Q(tenant_id=anomaly.tenant_id)
    )
    payload = notifiers.anomaly_payload(anomaly)
    done = set(anomaly.delivered_to)
    errors = []
    for notifier in targets:
        if str(notifier.pk) in done:
            continue
        try:
            _deliver(notifier, payload)
        except notifiers.DeliveryFailed as exc:
            errors.append(f"{notifier.name}: {exc}")
            continue
        done.add(str(notifier.pk))
    anomaly.delivered_to = sorted(done)
    anomaly.notify_attempts += 1
    anomaly.notify_error = "; ".join(errors)[:2000]
    if not errors:
        anomaly.notified_at = timezone.now()
    anomaly.save(update_fields=["delivered_to", "notify_attempts", "notify_error", "notified_at"])
    return errors
