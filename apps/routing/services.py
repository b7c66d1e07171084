"""Writes to the request log that are not the data plane's own (privacy requests).

A data subject is the id one tenant's application sends as `user`: the same id at another
tenant is another person, so every function here takes the tenant.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.db import transaction

from apps.routing.models import RequestLog

# What a data-subject export shows of each request.
EXPORT_FIELDS = (
    "request_id",
    "created_at",
    "endpoint",
    "tenant_id",
    "end_user",
    "requested_model",
    "model",
    "status",
    "http_status",
    "input_tokens",
    "output_tokens",
    "cost_usd",
    "latency_ms",
    "error_type",
    "error_message",
)


def _subject_logs(tenant_id: uuid.UUID, subject: str):
    return RequestLog.objects.filter(tenant_id=tenant_id, end_user=subject)


def request_log_for_subject(*, tenant_id: uuid.UUID, subject: str) -> list[dict[str, Any]]:
    """Every request one tenant's end user (the `user` callers send) made, oldest first."""
    return list(_subject_logs(tenant_id, subject).order_by("created_at").values(*EXPORT_FIELDS))


@transaction.atomic
def request_log_erase_subject(*, tenant_id: uuid.UUID, subject: str, tombstone: str) -> int:
    """Replace the end user's identity with `tombstone` and drop free text; keep the
    counts and costs, which accounting still needs. Returns the rows changed."""
    return _subject_logs(tenant_id, subject).update(end_user=tombstone, error_message="")


def _subject_requests(tenant_id: uuid.UUID, subject: str):
    return _subject_logs(tenant_id, subject).values("request_id", "tenant_id")


def feedback_for_subject(*, tenant_id: uuid.UUID, subject: str) -> list[dict[str, Any]]:
    """Scores and comments given on the end user's requests."""
    from apps.routing.models import Feedback

    rows = []
    for req in _subject_requests(tenant_id, subject):
        rows.extend(
            Feedback.objects.filter(request_id=req["request_id"], tenant_id=req["tenant_id"])
            .order_by("created_at")
            .values("request_id", "created_at", "score", "comment", "route", "model")
        )
    return rows


@transaction.atomic
def feedback_erase_subject(*, tenant_id: uuid.UUID, subject: str) -> int:
    """Drop the comments given on the end user's requests (free text); keep the scores.
    Run before the request log is anonymised, which removes the link to the subject."""
    from apps.routing.models import Feedback

    changed = 0
    for req in _subject_requests(tenant_id, subject):
        changed += (
            Feedback.objects.filter(request_id=req["request_id"], tenant_id=req["tenant_id"])
            .exclude(comment="")
            .update(comment="")
        )
    return changed
