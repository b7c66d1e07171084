"""Data-subject requests: export everything held about a person, and erase it.

A subject is named by the id a tenant's application sends as `user` on /v1 requests, or
by a console user's id or user name. The export includes the subject's stored prompt and
response bodies, decrypted. Erasure deletes those bodies, replaces the subject in the
request log with a tombstone (a digest that cannot be turned back into the id) and drops
free text that may quote them; usage and cost stay for accounting. Audit events are append-only and are
kept as the legal record of what happened: the export lists them, erasure does not touch
them, and the erasure itself is audited under the same tombstone.
"""

from __future__ import annotations

import hashlib
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from apps.audit.bodies import exchanges_erase_subject, exchanges_for_subject
from apps.audit.models import AuditEvent
from apps.audit.services import audit_record
from apps.routing.services import (
    feedback_erase_subject,
    feedback_for_subject,
    request_log_erase_subject,
    request_log_for_subject,
)
from apps.routing.writebehind import spill_erase_subject

AUDIT_EXPORT_FIELDS = (
    "sequence",
    "event_type",
    "occurred_at",
    "tenant_id",
    "user_id",
    "actor",
    "source",
    "request_id",
    "resource_type",
    "resource_id",
    "action",
    "outcome",
    "data",
)


def tombstone_for(subject: str) -> str:
    return "erased:" + hashlib.sha256(subject.encode()).hexdigest()[:24]


def _audit_events_about(subject: str) -> list[dict[str, Any]]:
    about = Q(user_id=subject) | Q(actor=subject) | Q(resource_type="user", resource_id=subject)
    return list(AuditEvent.objects.filter(about).order_by("sequence").values(*AUDIT_EXPORT_FIELDS))


def subject_export(*, subject: str) -> dict[str, Any]:
    """Everything held about `subject`, as one JSON-ready document (the export is audited)."""
    document = {
        "subject": subject,
        "generated_at": timezone.now().isoformat(),
        "requests": request_log_for_subject(subject=subject),
        "exchanges": exchanges_for_subject(subject=subject),
        "feedback": feedback_for_subject(subject=subject),
        "audit_events": _audit_events_about(subject),
        "notes": [
            "Prompt and response bodies are stored only for tenants that turned it on; "
            "'exchanges' lists the subject's, decrypted.",
            "Audit events are kept as the legal record and are not erased.",
        ],
    }
    audit_record(
        event_type="privacy.subject_exported",
        action="export",
        resource_type="data_subject",
        resource_id=tombstone_for(subject),
        data={
            "requests": len(document["requests"]),
            "exchanges": len(document["exchanges"]),
            "feedback": len(document["feedback"]),
            "audit_events": len(document["audit_events"]),
        },
        classification="restricted",
    )
    return document


@transaction.atomic
def subject_erase(*, subject: str) -> dict[str, Any]:
    """Delete `subject`'s stored bodies, erase them from the request log; audit a tombstone."""
    tombstone = tombstone_for(subject)
    deleted = exchanges_erase_subject(subject=subject)
    comments = feedback_erase_subject(subject=subject)  # while the requests still name them
    changed = request_log_erase_subject(subject=subject, tombstone=tombstone)
    # Rows still waiting in this instance's spill files (the database was unreachable).
    changed += spill_erase_subject(tenant_id=None, end_user=subject, tombstone=tombstone)
    result = {
        "requests_anonymised": changed,
        "exchanges_deleted": deleted,
        "feedback_comments_erased": comments,
    }
    audit_record(
        event_type="privacy.subject_erased",
        action="erase",
        resource_type="data_subject",
        resource_id=tombstone,
        data=result,
        classification="restricted",
    )
    return {"tombstone": tombstone, **result}
