"""Data-subject requests: export everything held about a person, and erase it.

A subject is a (tenant, id) pair: the id a tenant's application sends as `user` on /v1
requests (or a console user's id or user name in that tenant's audit events). The same id
at another tenant is another person and is never touched. The export includes the
subject's stored prompt and response bodies only when the caller may read that tenant's
bodies, each one revealed leaving an `exchange.viewed` event. Erasure deletes those bodies,
replaces the subject in the request log with a tombstone and drops free text that may quote
them; usage and cost stay for accounting. Audit events are append-only and are kept as the
legal record of what happened: the export lists them, erasure does not touch them, and the
erasure itself is audited under the same tombstone.

The tombstone is an HMAC of (tenant, id) under a key derived from SECRET_KEY, so nobody
without the server's secret can test a guessed id against it.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.crypto import salted_hmac

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
from apps.tenants.models import Tenant

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


TOMBSTONE_PURPOSE = "atp.audit.privacy.tombstone"


def tombstone_for(tenant: Tenant, subject: str) -> str:
    """The stand-in for a subject's id: a keyed digest that cannot be tested offline."""
    digest = salted_hmac(TOMBSTONE_PURPOSE, f"{tenant.pk}:{subject}", algorithm="sha256")
    return "erased:" + digest.hexdigest()[:32]


def _audit_events_about(tenant: Tenant, subject: str) -> list[dict[str, Any]]:
    about = Q(user_id=subject) | Q(actor=subject) | Q(resource_type="user", resource_id=subject)
    events = AuditEvent.objects.filter(about, tenant_id=tenant.pk).order_by("sequence")
    return list(events.values(*AUDIT_EXPORT_FIELDS))


def subject_export(*, tenant: Tenant, subject: str, bodies: bool = False) -> dict[str, Any]:
    """Everything `tenant` holds about `subject`, as one JSON-ready document (audited).

    `bodies`: the caller may read the tenant's stored bodies (callers check it with
    apps.audit.selectors.subject_bodies_allowed); each body revealed is audited.
    """
    document = {
        "tenant": {"id": str(tenant.pk), "slug": tenant.slug},
        "subject": subject,
        "generated_at": timezone.now().isoformat(),
        "requests": request_log_for_subject(tenant_id=tenant.pk, subject=subject),
        "exchanges": exchanges_for_subject(tenant_id=tenant.pk, subject=subject, bodies=bodies),
        "feedback": feedback_for_subject(tenant_id=tenant.pk, subject=subject),
        "audit_events": _audit_events_about(tenant, subject),
        "notes": [
            "Prompt and response bodies are stored only for tenants that turned it on; "
            + (
                "'exchanges' lists the subject's, decrypted."
                if bodies
                else "'exchanges' lists the subject's without bodies: reading them needs "
                "the body permission for this tenant."
            ),
            "Audit events are kept as the legal record and are not erased.",
        ],
    }
    audit_record(
        event_type="privacy.subject_exported",
        action="export",
        tenant_id=tenant.pk,
        resource_type="data_subject",
        resource_id=tombstone_for(tenant, subject),
        data={
            "requests": len(document["requests"]),
            "exchanges": len(document["exchanges"]),
            "bodies": bodies,
            "feedback": len(document["feedback"]),
            "audit_events": len(document["audit_events"]),
        },
        classification="restricted",
    )
    return document


@transaction.atomic
def subject_erase(*, tenant: Tenant, subject: str) -> dict[str, Any]:
    """Delete `subject`'s stored bodies at `tenant`, erase them from its request log; audit a
    tombstone. Nothing of another tenant's subject with the same id is touched."""
    tombstone = tombstone_for(tenant, subject)
    deleted = exchanges_erase_subject(tenant_id=tenant.pk, subject=subject)
    # While the requests still name them.
    comments = feedback_erase_subject(tenant_id=tenant.pk, subject=subject)
    changed = request_log_erase_subject(tenant_id=tenant.pk, subject=subject, tombstone=tombstone)
    # Rows still waiting in this instance's spill files (the database was unreachable).
    changed += spill_erase_subject(tenant_id=str(tenant.pk), end_user=subject, tombstone=tombstone)
    result = {
        "requests_anonymised": changed,
        "exchanges_deleted": deleted,
        "feedback_comments_erased": comments,
    }
    audit_record(
        event_type="privacy.subject_erased",
        action="erase",
        tenant_id=tenant.pk,
        resource_type="data_subject",
        resource_id=tombstone,
        data=result,
        classification="restricted",
    )
    return {"tombstone": tombstone, **result}
