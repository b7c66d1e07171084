"""Where budget alerts are sent: e-mail (Django's mail backend) and signed webhooks.

A webhook receives a JSON body and `X-ATP-Signature: t=<unix time>,sha256=<hex>`, the
HMAC-SHA256 of `<unix time>.<body>` under the notifier's secret, so the receiver can
check both the sender and the freshness (reject old timestamps to stop replays).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Any

import orjson
from django.conf import settings
from django.core.mail import send_mail

WEBHOOK_TIMEOUT = 10.0


class DeliveryFailed(Exception):
    """A notifier could not deliver (the message is safe to store: no secret in it)."""


def alert_payload(alert) -> dict[str, Any]:
    budget = alert.budget
    return {
        "type": "budget.threshold_crossed",
        "alert_id": str(alert.pk),
        "budget": {"id": str(budget.pk), "name": budget.name, "scope": budget.scope},
        "tenant": budget.tenant.slug if budget.tenant_id else None,
        "threshold_percent": alert.threshold,
        "spent_usd": str(alert.spent_usd),
        "limit_usd": str(alert.limit_usd),
        "period": budget.period,
        "period_start": alert.period_start.isoformat(),
        "action": budget.action,
        "created_at": alert.created_at.isoformat(),
    }


def anomaly_payload(anomaly) -> dict[str, Any]:
    """A spend anomaly (apps.costs.anomalies) as a webhook body."""
    return {
        "type": "budget.spend_anomaly",
        "anomaly_id": str(anomaly.pk),
        "tenant": anomaly.tenant.slug,
        "hour_start": anomaly.hour_start.isoformat(),
        "spent_usd": str(anomaly.spent_usd),
        "median_usd": str(anomaly.median_usd),
        "score": round(anomaly.score, 2),
        "threshold": anomaly.threshold,
        "history_days": anomaly.history_days,
        "created_at": anomaly.created_at.isoformat(),
    }


def sign(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},sha256={mac.hexdigest()}"


def verify(secret: str, header: str, body: bytes, *, tolerance: float = 300) -> bool:
    """What a receiver does: recompute the signature, refuse stale timestamps."""
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs(time.time() - timestamp) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), header)


def send_email(notifier, payload: dict[str, Any]) -> None:
    recipients = [a.strip() for a in notifier.target.split(",") if a.strip()]
    subject = (
        f"[ATP] Budget '{payload['budget']['name']}' reached {payload['threshold_percent']:g}%"
    )
    text = (
        f"The {payload['period']} budget '{payload['budget']['name']}'"
        f" (tenant {payload['tenant'] or '-'}) has spent ${payload['spent_usd']}"
        f" of ${payload['limit_usd']}, crossing {payload['threshold_percent']:g}%.\n"
        f"Action when spent: {payload['action']}.\nPeriod start: {payload['period_start']}.\n"
    )
    try:
        send_mail(subject, text, settings.DEFAULT_FROM_EMAIL, recipients, fail_silently=False)
    except Exception as exc:
        raise DeliveryFailed(
            f"e-mail to {len(recipients)} recipient(s) failed: {type(exc).__name__}"
        ) from None


def send_webhook(notifier, payload: dict[str, Any]) -> None:
    import requests

    body = orjson.dumps(payload)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "ATP-notifier",
        "X-ATP-Event": payload["type"],
        "X-ATP-Signature": sign(notifier.secret, int(time.time()), body),
    }
    try:
        response = requests.post(
            notifier.target,
            data=body,
            headers=headers,
            timeout=WEBHOOK_TIMEOUT,
            allow_redirects=False,
        )
    except requests.RequestException as exc:
        raise DeliveryFailed(f"webhook unreachable: {type(exc).__name__}") from None
    if not 200 <= response.status_code < 300:
        raise DeliveryFailed(f"webhook answered HTTP {response.status_code}")


SENDERS = {"email": send_email, "webhook": send_webhook}


def deliver(notifier, payload: dict[str, Any]) -> None:
    SENDERS[notifier.kind](notifier, payload)
