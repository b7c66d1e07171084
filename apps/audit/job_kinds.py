"""The audit log's background jobs: verification, exports, compliance reports, subject exports.

Each does what the management API's view does (apps/audit/api/views.py), through the same
services and selectors, as the user who asked: their scope is read again when the job runs,
and the audit events name them.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from django.utils import timezone
from django.utils.dateparse import parse_datetime

from apps.audit import reports
from apps.audit.exports import prepare_export
from apps.audit.jobs import JobError, Output, Progress, job_kind
from apps.audit.models import AuditChainHead, AuditEvent, Job
from apps.audit.privacy import subject_export
from apps.audit.selectors import (
    AuditEventFilters,
    audit_tenant_ids,
    subject_bodies_allowed,
)
from apps.audit.services import audit_record
from apps.audit.verify import verify_chain
from apps.tenants.models import Tenant

VERIFY = "audit.verify"
EXPORT = "audit.export"
REPORT = "audit.report"
SUBJECT_EXPORT = "audit.subject_export"
AUDIT_KINDS = (VERIFY, EXPORT, REPORT, SUBJECT_EXPORT)

EXPORT_CONTENT_TYPES = {
    "csv": "text/csv",
    "json": "application/json",
    "jsonl": "application/x-ndjson",
}


def _requester(job: Job) -> Any:
    user = job.requested_by
    if user is None or not user.is_active:
        raise JobError("The user who asked for this job no longer exists or is inactive.")
    return user


def filters_from(data: dict[str, str]) -> AuditEventFilters:
    """AuditEventFilters from what `AuditEventFilters.as_dict` wrote."""

    def when(name: str) -> datetime | None:
        return parse_datetime(data[name]) if data.get(name) else None

    return AuditEventFilters(
        since=when("since"),
        until=when("until"),
        tenant_id=uuid.UUID(data["tenant_id"]) if data.get("tenant_id") else None,
        **{
            name: data.get(name, "")
            for name in (
                "user",
                "event_type",
                "event_type_prefix",
                "outcome",
                "source",
                "resource_type",
                "resource_id",
                "request_id",
                "actor",
                "action",
                "classification",
            )
        },
    )


# --- verification ----------------------------------------------------------------------------


@job_kind(VERIFY, title="Chain verification", time_limit=3 * 3600)
def run_verify(job: Job, progress: Progress) -> Output:
    """Verify the chain (from the latest trusted checkpoint, or `full`), with progress."""
    _requester(job)
    head = AuditChainHead.objects.values_list("sequence", flat=True).first() or 0
    first = AuditEvent.objects.order_by("sequence").values_list("sequence", flat=True).first()
    start = first or 0

    def reached(sequence: int) -> None:
        span = max(1, head - start)
        progress(int(99 * (sequence - start) / span), f"Checked through event {sequence:,}")

    progress(1, "Walking the chain" + (" from its start" if job.parameters.get("full") else ""))
    result = verify_chain(full=bool(job.parameters.get("full")), progress=reached)
    data = result.as_dict()
    if result.problem is not None:
        data["problem"] = {
            "kind": result.problem.kind,
            "sequence": result.problem.sequence,
            "detail": result.problem.detail,
        }
    return Output(data=json.loads(json.dumps(data, default=str)))


# --- export ----------------------------------------------------------------------------------


def _counting(events: Iterator[str], progress: Progress, total: int) -> Iterator[str]:
    """The export stream, reporting progress by the number of records written."""
    written = 0
    for chunk in events:
        written += chunk.count("\n")
        if total and written % 2000 == 0:
            progress(5 + int(94 * min(written, total) / total), f"{written:,} of {total:,} events")
        yield chunk


@job_kind(EXPORT, title="Audit export", time_limit=3 * 3600)
def run_export(job: Job, progress: Progress) -> Output:
    """The API's export (apps.audit.api.views.AuditExportView) written to a result file."""
    user = _requester(job)
    fmt = job.parameters["format"]
    filters = filters_from(job.parameters.get("filters", {}))
    progress(2, "Counting events and verifying the chain for the manifest")
    export = prepare_export(user=user, filters=filters, fmt=fmt)
    return Output(
        data={"rows": export.rows, "last": export.last, "format": fmt},
        chunks=_counting(export.stream(), progress, export.rows),
        filename=export.filename,
        content_type=EXPORT_CONTENT_TYPES[fmt],
    )


# --- compliance report -----------------------------------------------------------------------


@job_kind(REPORT, title="Compliance report", time_limit=3 * 3600)
def run_report(job: Job, progress: Progress) -> Output:
    """The API's compliance report (AuditReportView) as a result file."""
    user = _requester(job)
    params = job.parameters
    fmt = params["format"]
    tenant = None
    if params.get("tenant_id"):
        tenant = Tenant.objects.filter(pk=params["tenant_id"]).first()
        if tenant is None:
            raise JobError("The tenant of this report no longer exists.")
    elif audit_tenant_ids(user=user, action="report") is not None:
        raise JobError("A report of every tenant needs the permission on every tenant.")
    since, until = parse_datetime(params["since"]), parse_datetime(params["until"])
    progress(5, "Verifying the chain and counting")
    report = reports.report_build(tenant=tenant, since=since, until=until, full=params["full"])
    progress(80, f"Rendering {fmt.upper()}")
    body = reports.report_render(report, fmt)
    audit_record(
        event_type="audit.report_exported",
        action="export",
        tenant_id=report.tenant["id"] if report.tenant else None,
        resource_type="compliance_report",
        data={
            "format": fmt,
            "since": since.isoformat(),
            "until": until.isoformat(),
            "tenant": report.tenant["slug"] if report.tenant else "",
            "head_sequence": report.verification["head_sequence"],
            "head_hash": report.verification["head_hash"],
        },
    )
    return Output(
        data={"verification": report.verification["status"], "format": fmt},
        chunks=[body],
        filename=reports.report_filename(report, fmt),
        content_type=reports.CONTENT_TYPES[fmt],
    )


# --- data-subject export ---------------------------------------------------------------------


@job_kind(SUBJECT_EXPORT, title="Data-subject export", time_limit=3600)
def run_subject_export(job: Job, progress: Progress) -> Output:
    """Everything held about a data subject (SubjectExportView) as a JSON file.

    Bodies only if the requester may read the tenant's bodies now (each reveal audited by
    the service); the job then also requires that permission of whoever downloads it.
    """
    user = _requester(job)
    tenant = Tenant.objects.filter(pk=job.parameters["tenant_id"]).first()
    if tenant is None:
        raise JobError("The tenant no longer exists.")
    bodies = bool(job.parameters.get("bodies")) and subject_bodies_allowed(user=user, tenant=tenant)
    progress(10, "Collecting requests, exchanges, feedback and audit events")
    document = subject_export(tenant=tenant, subject=job.parameters["subject"], bodies=bodies)
    counts = {
        name: len(document[name]) for name in ("requests", "exchanges", "feedback", "audit_events")
    }
    return Output(
        data={"counts": counts, "bodies": bodies},
        chunks=[json.dumps(document, indent=1, default=str)],
        filename=f"atp-subject-{tenant.slug}-{timezone.now():%Y%m%dT%H%M%SZ}.json",
        content_type="application/json",
    )
