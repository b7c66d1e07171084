"""Periodic audit jobs."""

from __future__ import annotations

import logging

from celery import shared_task

from apps.audit.services import audit_record
from apps.audit.verify import verify_chain

logger = logging.getLogger(__name__)


@shared_task(name="audit.verify_chain", time_limit=3600, soft_time_limit=3300)
def verify_chain_task() -> dict:
    """Nightly: verify the chain; a break is logged as an error and audited as an alert."""
    result = verify_chain()
    if not result.ok:
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
    return result.as_dict()


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
