"""Periodic audit jobs."""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial

from celery import shared_task

from apps.audit.models import AuditSignedHead
from apps.audit.sealing import audit_head_seal, chain_end, head_sign
from apps.audit.services import audit_record
from apps.audit.verify import verify_chain

logger = logging.getLogger(__name__)


@shared_task(name="audit.verify_chain", time_limit=3600, soft_time_limit=3300)
def verify_chain_task() -> dict:
    """Nightly: walk the whole chain and seal its head outside the database.

    A break is logged as an error and audited as an alert. The seal is a signed head
    appended to the heads file (and the sink): of the verified end when the chain is
    intact, else of the chain's end as found, marked unverified, after the alert.
    """
    result = verify_chain(full=True, record=False)
    if result.ok and result.head_sequence:
        _seal(
            partial(
                head_sign,
                sequence=result.head_sequence,
                digest=result.head_hash,
                reason=AuditSignedHead.Reason.NIGHTLY,
                verified=True,
                publish=True,
            )
        )
    elif not result.ok:
        problem = result.problem
        logger.error(
            "audit chain broken at event %s: %s (%s)",
            problem.sequence,
            problem.kind,
            problem.detail,
        )
        audit_record(
            event_type="audit.chain_broken",
            action="verify",
            outcome="failure",
            resource_type="audit_chain",
            data={"kind": problem.kind, "sequence": problem.sequence, "detail": problem.detail},
            classification="restricted",
        )
        _seal(partial(audit_head_seal, reason=AuditSignedHead.Reason.NIGHTLY, verified=False))
    return result.as_dict()


def _seal(seal: Callable[[], object]) -> None:
    try:
        seal()
    except OSError:
        # The signed head is in the database; only its copy outside could not be written.
        logger.exception("audit: the nightly signed head was not written outside the database")


@shared_task(name="audit.seal_head", time_limit=300, soft_time_limit=240)
def seal_head_task() -> dict:
    """Every ATP_AUDIT_SEAL_SECONDS: sign the chain's end outside the database if it moved.

    Events appended after the latest signed head could be cut off without a trace; this
    bounds that window to the seal interval. An idle chain is not sealed again.
    """
    sequence, _ = chain_end()
    latest = AuditSignedHead.objects.order_by("-sequence").values_list("sequence", flat=True)
    if sequence == 0 or sequence <= (latest.first() or 0):
        return {"sealed": False, "sequence": sequence}
    _seal(partial(audit_head_seal, reason=AuditSignedHead.Reason.PERIODIC))
    return {"sealed": True, "sequence": sequence}


@shared_task(name="audit.retention_run", time_limit=3600, soft_time_limit=3300)
def retention_run_task() -> dict:
    """Daily: purge request logs, stored bodies and the audit chain's prefix past retention."""
    from apps.audit.retention import retention_run

    report = retention_run()
    return {
        "request_logs_purged": report.request_logs_purged,
        "audit_events_purged": report.audit_events_purged,
        "exchanges_purged": report.exchanges_purged,
    }


@shared_task(name="audit.job_run", acks_late=True)
def job_run_task(job_id: str) -> str:
    """Run one background job (apps.audit.jobs); a job already claimed is left alone.

    The time limits come with each call (the job kind's); `acks_late` redelivers a job
    whose worker died, and the claim makes that redelivery harmless.
    """
    from apps.audit import job_kinds  # noqa: F401 - registers the audit job kinds
    from apps.audit.jobs import job_run

    job = job_run(job_id)
    return job.status if job else "skipped"


@shared_task(name="audit.jobs_expire", time_limit=600, soft_time_limit=540)
def jobs_expire_task() -> dict:
    """Hourly: delete background-job results older than ATP_JOB_RESULT_HOURS, and runs of
    periodic jobs older than ATP_SCHEDULED_RUN_DAYS (apps.audit.scheduled)."""
    from apps.audit.jobs import jobs_expire
    from apps.audit.scheduled import runs_purge

    return {"expired": jobs_expire(), **runs_purge()}


@shared_task(name="audit.backup", time_limit=6 * 3600 + 120, soft_time_limit=6 * 3600)
def backup_task() -> dict:
    """Daily: back up the database with the audit chain's signed heads and rotate old
    backups (apps.audit.backup, docs/backups.md). Locked, recorded and retried as every
    periodic duty (atp_site.duties)."""
    from apps.audit.backup.services import backup_scheduled

    return backup_scheduled()
