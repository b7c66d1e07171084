"""Rows of the audit console pages (apps/audit/urls.py): search, verification, exports,
reports, data subjects, retention policies, auditor grants and background jobs.

Job pages answer 404, not 403, to whoever may not see the job: a job is an object scoped
by its tenants (apps.audit.jobs.job_visible).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.utils import timezone

from tests.permission_matrix.rows import Row, pk, row, seq, subject
from tests.permission_matrix.world import World


def extend_world(world: World) -> None:
    """Two finished jobs: an export of acme's events and a verification of the whole chain."""
    from apps.audit.models import Job

    now = timezone.now()
    finished = {
        "status": Job.Status.SUCCEEDED,
        "progress": 100,
        "result": {"rows": 0},
        "started_at": now,
        "finished_at": now,
        "expires_at": now + timedelta(hours=24),
    }
    world.extra["job_acme"] = Job.objects.create(
        kind="audit.export",
        parameters={"format": "csv", "filters": {"tenant_id": str(world.acme.pk)}},
        requested_by=world.user("auditor"),
        tenant_ids=[str(world.acme.pk)],
        permissions=["audit.auditevent:export"],
        **finished,
    )
    world.extra["job_all"] = Job.objects.create(
        kind="audit.verify",
        parameters={"full": False},
        requested_by=world.user("auditor"),
        tenant_ids=None,
        permissions=["audit.auditevent:verify"],
        **finished,
    )


def job(name: str):
    return lambda w, r: w.extra[name].pk


def revoke(w: World, r: str) -> dict[str, Any]:
    return {"tenant": "acme"}


def grantee(w: World, r: str) -> Any:
    return w.user("auditor").pk


A = "audit:"
ACME_CSV = {"tenant": "acme", "format": "csv"}
GLOBEX_CSV = {"tenant": "globex", "format": "csv"}
REPORT_ACME = {"tenant": "acme", "since": "2026-01-01", "until": "2026-01-31", "format": "json"}
REPORT_ALL = {"since": "2026-01-01", "until": "2026-01-31", "format": "json"}
NEW_POLICY = {"tenant": "acme", "classification": "bodies", "days": "30"}
ACME_POLICY = {"tenant": "acme", "classification": "requests", "days": "45"}
AUDIT_POLICY = {"tenant": "", "classification": "internal", "days": "500"}
GRANT = {"user": "m-outsider", "tenant": "acme"}

# fmt: off
ROWS: list[Row] = [
    #    id                                URL name                         method  an  st  ro  tm  ta  au  co  se  pl  mg  sa  su
    row("audit events",                    A + "event-list",               "get",  "302 403 200 403 200 200 403 200 403 200 200 200"),
    row("audit events htmx",               A + "event-list",               "get",  "401 403 200 403 200 200 403 200 403 200 200 200", htmx=True, query={"tenant": "acme"}),
    row("audit events other tenant",       A + "event-list",               "get",  "302 403 200 403 200 200 403 200 403 200 200 200", query={"tenant": "globex"}),
    row("audit event own tenant",          A + "event-detail",             "get",  "302 403 200 403 200 200 403 200 403 200 200 200", target=seq("event_a"), lookup="sequence"),
    row("audit event other tenant",        A + "event-detail",             "get",  "302 403 200 403 404 200 403 200 403 200 200 200", target=seq("event_b"), lookup="sequence"),
    row("audit event no tenant",           A + "event-detail",             "get",  "302 403 200 403 404 200 403 200 403 200 200 200", target=seq("event_none"), lookup="sequence"),
    row("audit verify page",               A + "verify",                   "get",  "302 403 403 403 200 200 403 200 403 200 200 200"),
    row("audit verify start",              A + "verify",                   "post", "401 403 403 403 303 303 403 303 403 303 303 303"),
    row("audit verify start htmx",         A + "verify",                   "post", "401 403 403 403 204 204 403 204 403 204 204 204", htmx=True, data={"full": "on"}),
    row("audit export page",               A + "export",                   "get",  "302 403 403 403 200 200 403 403 403 200 200 200", query={"tenant": "acme"}),
    row("audit export own tenant",         A + "export",                   "post", "401 403 403 403 303 303 403 403 403 303 303 303", data=ACME_CSV),
    row("audit export other tenant",       A + "export",                   "post", "401 403 403 403 200 303 403 403 403 303 303 303", data=GLOBEX_CSV),
    row("audit report page",               A + "report",                   "get",  "302 403 403 403 200 200 403 403 403 200 200 200"),
    row("audit report own tenant",         A + "report",                   "post", "401 403 403 403 303 303 403 403 403 303 303 303", data=REPORT_ACME),
    row("audit report every tenant",       A + "report",                   "post", "401 403 403 403 200 303 403 403 403 303 303 303", data=REPORT_ALL),
    row("subject export page",             A + "subject-export",           "get",  "302 403 403 403 200 200 403 403 403 200 200 200"),
    row("subject export own tenant",       A + "subject-export",           "post", "401 403 403 403 303 303 403 403 403 303 303 303", data=subject("acme")),
    row("subject export other tenant",     A + "subject-export",           "post", "401 403 403 403 200 303 403 403 403 303 303 303", data=subject("globex")),
    row("subject erase page",              A + "subject-erase",            "get",  "302 403 403 403 403 403 403 403 403 403 403 200"),
    row("subject erase review",            A + "subject-erase",            "post", "401 403 403 403 403 403 403 403 403 403 403 200", data=subject("acme")),
    row("subject erase confirmed",         A + "subject-erase",            "post", "401 403 403 403 403 403 403 403 403 403 403 303", data={**subject("acme"), "confirm": "user-42"}),
    row("job own tenant",                  A + "job-detail",               "get",  "302 404 404 404 200 200 404 404 404 200 200 200", target=job("job_acme")),
    row("job own tenant htmx",             A + "job-detail",               "get",  "401 404 404 404 200 200 404 404 404 200 200 200", target=job("job_acme"), htmx=True),
    row("job every tenant",                A + "job-detail",               "get",  "302 404 404 404 404 200 404 200 404 200 200 200", target=job("job_all")),
    row("job download own tenant",         A + "job-download",             "get",  "302 404 404 404 200 200 404 404 404 200 200 200", target=job("job_acme")),
    row("job download every tenant",       A + "job-download",             "get",  "302 404 404 404 404 200 404 200 404 200 200 200", target=job("job_all")),
    row("retention policies",              A + "retentionpolicy-list",     "get",  "302 403 200 200 200 403 200 200 200 200 200 200"),
    row("retention add page",              A + "retentionpolicy-add",      "get",  "302 403 403 403 200 403 403 200 403 200 200 200"),
    row("retention add",                   A + "retentionpolicy-add",      "post", "401 403 403 403 303 403 403 303 403 303 303 303", data=NEW_POLICY),
    row("retention edit own tenant",       A + "retentionpolicy-edit",     "get",  "302 403 403 403 200 403 403 200 403 200 200 200", target=pk("policy_a")),
    row("retention edit other tenant",     A + "retentionpolicy-edit",     "get",  "302 403 403 403 404 403 403 200 403 200 200 200", target=pk("policy_b")),
    row("retention save own tenant",       A + "retentionpolicy-edit",     "post", "401 403 403 403 303 403 403 303 403 303 303 303", target=pk("policy_a"), data=ACME_POLICY),
    row("retention save audit class",      A + "retentionpolicy-edit",     "post", "401 403 403 403 404 403 403 200 403 200 200 303", target=pk("policy_audit"), data=AUDIT_POLICY),
    row("retention delete confirm",        A + "retentionpolicy-delete",   "get",  "302 403 403 403 200 403 403 200 403 200 200 200", target=pk("policy_a")),
    row("retention delete own tenant",     A + "retentionpolicy-delete",   "post", "401 403 403 403 303 403 403 303 403 303 303 303", target=pk("policy_a")),
    row("retention delete other tenant",   A + "retentionpolicy-delete",   "post", "401 403 403 403 404 403 403 303 403 303 303 303", target=pk("policy_b")),
    row("retention delete audit class",    A + "retentionpolicy-delete",   "post", "401 403 403 403 404 403 403 403 403 403 403 303", target=pk("policy_audit")),
    row("auditor grants",                  A + "auditor-list",             "get",  "302 403 403 403 403 403 403 200 403 403 200 200"),
    row("auditor grant",                   A + "auditor-list",             "post", "401 403 403 403 403 403 403 303 403 403 303 303", data=GRANT),
    row("auditor revoke confirm",          A + "auditor-revoke",           "get",  "302 403 403 403 403 403 403 200 403 403 200 200", target=grantee, kwargs=revoke),
    row("auditor revoke",                  A + "auditor-revoke",           "post", "401 403 403 403 403 403 403 303 403 403 303 303", target=grantee, kwargs=revoke),
]
# fmt: on
