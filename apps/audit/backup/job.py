"""The daily backup as a background job: its runs are recorded like every other job's.

The Celery task (`audit.backup`) starts one run; apps.audit.jobs records it (started,
finished or failed, how long, what it wrote) in the job table, where superusers see it.
A run that finds another backup running on the same directory does nothing.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from apps.audit.backup import services
from apps.audit.context import AuditActor
from apps.audit.jobs import JobError, Output, Progress, job_kind, job_run
from apps.audit.models import Job

BACKUP = "audit.backup"
ACTOR = AuditActor(actor=f"job:{BACKUP}")


@job_kind(BACKUP, title="Database backup", time_limit=6 * 3600)
def run_backup(job: Job, progress: Progress) -> Output:
    steps = iter(range(10, 95, 15))
    try:
        result = services.backup_create(
            passphrase=services.configured_passphrase() or None,
            progress=lambda message: progress(next(steps, 95), message),
        )
    except services.BackupError as exc:
        raise JobError(f"No backup was made: {exc}.") from None
    return Output(
        data={
            "file": result.path.name,
            "bytes": result.size,
            "sha256": result.sha256,
            "protection": "aes-256-gcm" if result.encrypted else "none",
            "chain_sequence": result.chain_sequence,
            "rotated_out": [p.name for p in result.rotated_out],
        }
    )


def backup_run() -> dict[str, Any]:
    """Make one backup as a recorded job run; skipped while another backup runs."""
    if services.backup_running():
        return {"status": "skipped", "reason": "another backup is running"}
    job = Job.objects.create(
        kind=BACKUP,
        parameters={"actor": asdict(ACTOR)},
        tenant_ids=None,
        permissions=[],
        message="Waiting to start",
    )
    finished = job_run(str(job.pk))
    if finished is None:
        return {"status": "skipped", "job": str(job.pk)}
    return {
        "status": finished.status,
        "job": str(finished.pk),
        "result": finished.result,
        "error": finished.error,
    }
