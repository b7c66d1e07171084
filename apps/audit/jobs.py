"""Background jobs: long operations run by Celery with progress, results kept for a while.

Any app declares a kind once and starts runs of it from a view or a service:

    @job_kind("audit.export", title="Audit export", time_limit=3600)
    def run_export(job: Job, progress: Progress) -> Output:
        progress(10, "Counting events")
        return Output(chunks=..., filename="audit.csv", content_type="text/csv")

    job = job_start(kind="audit.export", parameters={...}, user=request.user,
                    tenant_ids=None, permissions=[(AuditEvent, "export")])

`job_start` writes the row and enqueues the run with `transaction.on_commit` (in the
embedded setup Celery runs it in process, eagerly). The run is idempotent: only a queued
job is claimed, so a redelivered task does nothing. It is time-limited (the kind's
`time_limit`, and a job left running past it reads as failed). A large result is written
to a file under ATP_DATA_DIR/jobs, never to the database; a small one is JSON. Results are
deleted ATP_JOB_RESULT_HOURS after the job ends (`jobs_expire`, periodic).

Who sees a job: `job_visible` — whoever holds every permission the job names on every
tenant its result covers (global holders only when it covers every tenant), the
requester included and judged the same way, so results never cross tenants and leave with
the role. The run acts as the requester: the audit events it writes name them.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.apps import apps as django_apps
from django.conf import settings
from django.db import transaction
from django.db.models import Model, QuerySet
from django.utils import timezone

from apps.audit.context import AuditActor, acting_as, current_actor
from apps.audit.models import Job
from apps.tenants import permissions

logger = logging.getLogger(__name__)

Progress = Callable[[int, str], None]


class JobError(Exception):
    """A job failed for a reason its requester should read (shown as the job's error)."""


@dataclass(frozen=True, slots=True)
class Output:
    """What a run produced: small JSON `data`, and/or a file streamed from `chunks`."""

    data: dict[str, Any] | None = None
    chunks: Iterable[str | bytes] | None = None
    filename: str = ""
    content_type: str = "application/octet-stream"


@dataclass(frozen=True, slots=True)
class JobKind:
    name: str
    title: str
    run: Callable[[Job, Progress], Output]
    time_limit: int = 3600


KINDS: dict[str, JobKind] = {}


def job_kind(
    name: str, *, title: str, time_limit: int = 3600
) -> Callable[[Callable[[Job, Progress], Output]], Callable[[Job, Progress], Output]]:
    """Register a job kind (decorator of its run function)."""

    def register(run: Callable[[Job, Progress], Output]) -> Callable[[Job, Progress], Output]:
        KINDS[name] = JobKind(name=name, title=title, run=run, time_limit=time_limit)
        return run

    return register


def result_hours() -> int:
    return int(getattr(settings, "ATP_JOB_RESULT_HOURS", 24))


def jobs_dir() -> Path:
    path = Path(settings.DATA_DIR) / "jobs"
    path.mkdir(parents=True, exist_ok=True)
    return path


def result_path(job: Job) -> Path | None:
    """The job's result file, if it has one (the name is ours: the job's id)."""
    if not job.result_file:
        return None
    return jobs_dir() / Path(job.result_file).name


# --- starting --------------------------------------------------------------------------------


def _requirement(model: type[Model] | str, action: str) -> str:
    label = model if isinstance(model, str) else model._meta.label_lower
    return f"{label}:{action}"


def job_start(
    *,
    kind: str,
    parameters: dict[str, Any],
    user: Any,
    tenant_ids: Iterable[uuid.UUID | str] | None,
    permissions: Iterable[tuple[type[Model] | str, str]],
) -> Job:
    """Queue a run of `kind` for `user`; it starts once the current transaction commits.

    `tenant_ids`: the tenants the result covers (None: every tenant). `permissions`: what
    a viewer of the result must hold on them ((model, action) pairs, as for
    apps.tenants.permissions). The caller has checked that `user` may start it.
    """
    if kind not in KINDS:
        raise ValueError(f"No job kind {kind!r}.")
    actor = current_actor()
    job = Job.objects.create(
        kind=kind,
        parameters={**parameters, "actor": asdict(actor)},
        requested_by=user if getattr(user, "pk", None) else None,
        tenant_ids=sorted(str(t) for t in tenant_ids) if tenant_ids is not None else None,
        permissions=[_requirement(model, action) for model, action in permissions],
        message="Waiting to start",
    )
    transaction.on_commit(lambda: _enqueue(job))
    return job


def _enqueue(job: Job) -> None:
    from apps.audit.tasks import job_run_task

    limit = KINDS[job.kind].time_limit
    job_run_task.apply_async(
        args=[str(job.pk)], time_limit=limit + 60, soft_time_limit=limit, expires=limit
    )


# --- running ---------------------------------------------------------------------------------


def _progress_of(job: Job) -> Progress:
    last = {"percent": -1, "message": ""}

    def report(percent: int, message: str = "") -> None:
        percent = max(0, min(99, int(percent)))
        message = message[:200]
        if (percent, message) == (last["percent"], last["message"]):
            return
        last.update(percent=percent, message=message)
        Job.objects.filter(pk=job.pk, status=Job.Status.RUNNING).update(
            progress=percent, message=message
        )

    return report


def _write(job: Job, chunks: Iterable[str | bytes]) -> tuple[str, int]:
    """Stream `chunks` to the job's result file (atomically renamed into place)."""
    name = f"{job.pk}.out"
    final = jobs_dir() / name
    partial = final.with_suffix(".part")
    size = 0
    with open(partial, "wb") as out:
        for chunk in chunks:
            data = chunk.encode() if isinstance(chunk, str) else chunk
            out.write(data)
            size += len(data)
        out.flush()
        os.fsync(out.fileno())
    partial.replace(final)
    return name, size


def job_run(job_id: str) -> Job | None:
    """Claim a queued job and run it to the end (the Celery task's body; idempotent)."""
    now = timezone.now()
    claimed = Job.objects.filter(pk=job_id, status=Job.Status.QUEUED).update(
        status=Job.Status.RUNNING, started_at=now, progress=0, message="Started"
    )
    if not claimed:
        return None
    job = Job.objects.get(pk=job_id)
    kind = KINDS.get(job.kind)
    actor = AuditActor(**job.parameters.get("actor", {}))
    fields: dict[str, Any]
    try:
        if kind is None:
            raise JobError(f"This ATP does not know jobs of kind {job.kind!r}.")
        with acting_as(actor):
            output = kind.run(job, _progress_of(job))
        fields = {"result": output.data}
        if output.chunks is not None:
            name, size = _write(job, output.chunks)
            fields.update(
                result_file=name,
                result_size=size,
                result_name=output.filename or name,
                result_type=output.content_type,
            )
        fields.update(status=Job.Status.SUCCEEDED, progress=100, message="Done")
    except JobError as exc:
        fields = {"status": Job.Status.FAILED, "error": str(exc), "message": "Failed"}
    except Exception as exc:
        from celery.exceptions import SoftTimeLimitExceeded

        if isinstance(exc, SoftTimeLimitExceeded):
            error = f"Stopped: it ran longer than {kind.time_limit if kind else '?'} seconds."
        else:
            logger.exception("job %s (%s) failed", job.pk, job.kind)
            error = "The job failed unexpectedly; the error is in the server log."
        fields = {"status": Job.Status.FAILED, "error": error, "message": "Failed"}
    finished = timezone.now()
    fields.update(finished_at=finished, expires_at=finished + timedelta(hours=result_hours()))
    Job.objects.filter(pk=job.pk).update(**fields)
    job.refresh_from_db()
    return job


def job_refresh(job: Job) -> Job:
    """`job`, marked failed if it has run past its time limit (its worker died)."""
    kind = KINDS.get(job.kind)
    limit = (kind.time_limit if kind else 3600) + 120
    overdue = job.started_at and timezone.now() - job.started_at > timedelta(seconds=limit)
    if job.status == Job.Status.RUNNING and overdue:
        finished = timezone.now()
        Job.objects.filter(pk=job.pk, status=Job.Status.RUNNING).update(
            status=Job.Status.FAILED,
            error="The job did not finish within its time limit.",
            message="Failed",
            finished_at=finished,
            expires_at=finished + timedelta(hours=result_hours()),
        )
        job.refresh_from_db()
    return job


# --- reading ---------------------------------------------------------------------------------


def _holds(user: Any, requirement: str, tenant_ids: list[str] | None) -> bool:
    label, _, action = requirement.partition(":")
    try:
        model = django_apps.get_model(label)
    except (LookupError, ValueError):
        return False
    allowed = permissions.tenant_ids(user, model, action)
    if allowed is None:
        return True
    if tenant_ids is None:
        return False
    wanted = set()
    for tenant in tenant_ids:
        try:
            wanted.add(uuid.UUID(str(tenant)))
        except ValueError:
            return False
    return wanted <= allowed


def job_visible(user: Any, job: Job) -> bool:
    """Whether `user` may see `job` and download its result (see the module docstring)."""
    if user is None or not user.is_authenticated or not user.is_active:
        return False
    if not job.permissions:
        return bool(user.is_superuser)
    return all(_holds(user, need, job.tenant_ids) for need in job.permissions)


def job_list(*, user: Any, kinds: Iterable[str] | None = None, limit: int = 20) -> list[Job]:
    """The latest jobs `user` may see (of `kinds`), newest first."""
    jobs: QuerySet[Job] = Job.objects.select_related("requested_by").order_by("-created_at")
    if kinds is not None:
        jobs = jobs.filter(kind__in=list(kinds))
    shown = []
    # Scoping is per row (tenant sets); read a bounded window of recent jobs.
    for job in jobs[: limit * 10]:
        if job_visible(user, job):
            shown.append(job_refresh(job))
            if len(shown) >= limit:
                break
    return shown


def job_get(*, user: Any, pk: Any) -> Job | None:
    """One job `user` may see, or None (the caller answers 404)."""
    try:
        job = Job.objects.select_related("requested_by").get(pk=pk)
    except (Job.DoesNotExist, ValueError, TypeError):
        return None
    if not job_visible(user, job):
        return None
    return job_refresh(job)


# --- expiry ----------------------------------------------------------------------------------


def jobs_expire(*, now: Any = None) -> int:
    """Delete the results of jobs that ended more than ATP_JOB_RESULT_HOURS ago.

    The rows stay (a record of what ran, by whom); their result files and JSON go.
    """
    now = now or timezone.now()
    expired = Job.objects.filter(expires_at__lt=now).exclude(result_file="", result__isnull=True)
    count = 0
    for job in expired:
        path = result_path(job)
        if path is not None:
            path.unlink(missing_ok=True)
        # A data subject's id is personal data: it goes with the result.
        parameters = {k: v for k, v in job.parameters.items() if k != "subject"}
        Job.objects.filter(pk=job.pk).update(
            result=None,
            result_file="",
            result_size=None,
            parameters=parameters,
            message="Result expired",
        )
        count += 1
    return count
