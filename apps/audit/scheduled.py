"""The runs of periodic duties: recorded by atp_site.duties, listed by the console and the API.

Writes (best effort: a run whose row cannot be written still runs, and says so in the log):

    run_started(task=, attempt=, task_id=, hostname=, pid=) -> ScheduledRun | None
    run_succeeded(run, result=, duration_ms=)
    run_failed(run, exc=, duration_ms=, retry_in=)      also audits `job.failed`
    run_skipped(task=, ...)                             another run held the duty's lock
    runs_purge()                                        hourly, from audit.jobs_expire

Reads:

    duty_list() -> list[Duty]       every entry of the beat schedule with its latest runs
    run_list(task=, status=)        newest first
"""

from __future__ import annotations

import json
import logging
import re
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Count, Max, Q, QuerySet
from django.utils import timezone

from apps.audit.models import AuditEvent, ScheduledRun

logger = logging.getLogger(__name__)

FAILED_EVENT = "job.failed"
RESULT_CHARS = 4000
ERROR_CHARS = 1000
# A run still "running" this long after its duty's time limit was lost with its worker.
LOST_MARGIN = timedelta(minutes=5)


def run_days() -> int:
    return int(getattr(settings, "ATP_SCHEDULED_RUN_DAYS", 14))


# --- what is stored ----------------------------------------------------------------------------


def result_summary(result: Any) -> Any:
    """`result` as small JSON: as it is when short, else its start, marked truncated."""
    if result is None:
        return None
    try:
        text = json.dumps(result, default=str, sort_keys=True)
    except (TypeError, ValueError):
        text = json.dumps(repr(result))
    if len(text) <= RESULT_CHARS:
        value = json.loads(text)
        return value if isinstance(value, dict) else {"value": value}
    return {"truncated": True, "preview": text[: RESULT_CHARS // 4]}


_CREDENTIALS_IN_URL = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/@\s]+@")
_SECRET_WORDS = re.compile(
    r"(?i)\b(password|passwd|secret|token|api[_-]?key|authorization)\b(\s*[=:]\s*)\S+"
)


def error_text(exc: BaseException) -> str:
    """The exception's class and message, shortened; credentials in URLs and `key=value`
    secrets masked (a driver's message can quote its connection string)."""
    message = str(exc).strip()
    message = _CREDENTIALS_IN_URL.sub(r"\1***@", message)
    message = _SECRET_WORDS.sub(r"\1\2***", message)
    text = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    return text if len(text) <= ERROR_CHARS else text[: ERROR_CHARS - 1] + "…"


# --- writes ------------------------------------------------------------------------------------


def run_started(
    *, task: str, attempt: int = 1, task_id: str = "", hostname: str = "", pid: int | None = None
) -> ScheduledRun | None:
    try:
        return ScheduledRun.objects.create(
            task=task,
            attempt=attempt,
            task_id=task_id[:64],
            hostname=hostname[:200],
            pid=pid,
        )
    except Exception:
        logger.exception("periodic job %s: its run could not be recorded", task)
        return None


def _finish(run: ScheduledRun | None, **fields: Any) -> None:
    if run is None:
        return
    fields.setdefault("finished_at", timezone.now())
    try:
        ScheduledRun.objects.filter(pk=run.pk).update(**fields)
    except Exception:
        logger.exception("periodic job %s: the end of its run could not be recorded", run.task)
        return
    for name, value in fields.items():
        setattr(run, name, value)


def run_succeeded(run: ScheduledRun | None, *, result: Any, duration_ms: int) -> None:
    _finish(
        run,
        status=ScheduledRun.Status.SUCCEEDED,
        result=result_summary(result),
        duration_ms=duration_ms,
    )


def run_failed(
    run: ScheduledRun | None,
    *,
    task: str,
    exc: BaseException,
    duration_ms: int,
    attempt: int = 1,
    retry_in: int | None = None,
) -> None:
    """Record the failure and append a `job.failed` audit event (an alert for operators)."""
    error = error_text(exc)
    _finish(
        run,
        status=ScheduledRun.Status.FAILED,
        error=error,
        duration_ms=duration_ms,
        retry_in=retry_in,
    )
    try:
        from apps.audit.services import audit_record

        audit_record(
            event_type=FAILED_EVENT,
            action="run",
            outcome=AuditEvent.Outcome.FAILURE,
            resource_type="scheduled_job",
            resource_id=task,
            data={
                "task": task,
                "run": run.pk if run is not None else None,
                "attempt": attempt,
                "error": error,
                "retry_in": retry_in,
            },
        )
    except Exception:
        logger.exception("periodic job %s: its failure could not be audited", task)


def run_skipped(
    *, task: str, attempt: int = 1, task_id: str = "", hostname: str = "", pid: int | None = None
) -> ScheduledRun | None:
    run = run_started(task=task, attempt=attempt, task_id=task_id, hostname=hostname, pid=pid)
    _finish(
        run,
        status=ScheduledRun.Status.SKIPPED,
        duration_ms=0,
        result={"skipped": True, "reason": "another run of this job was in progress"},
    )
    return run


def runs_purge(*, now: datetime | None = None) -> dict[str, int]:
    """Delete runs older than ATP_SCHEDULED_RUN_DAYS; mark runs lost with their worker.

    A run still `running` well past its duty's time limit never finished: its worker was
    killed (the hard time limit, a crash, a deploy). It reads as failed from then on.
    """
    now = now or timezone.now()
    purged, _ = ScheduledRun.objects.filter(
        started_at__lt=now - timedelta(days=run_days())
    ).delete()
    lost = 0
    limits = _time_limits()
    for task in (
        ScheduledRun.objects.filter(status=ScheduledRun.Status.RUNNING)
        .values_list("task", flat=True)
        .distinct()
    ):
        limit = timedelta(seconds=limits.get(task, settings.CELERY_TASK_TIME_LIMIT))
        lost += ScheduledRun.objects.filter(
            task=task, status=ScheduledRun.Status.RUNNING, started_at__lt=now - limit - LOST_MARGIN
        ).update(
            status=ScheduledRun.Status.FAILED,
            finished_at=now,
            error="The run did not finish within its time limit (its worker stopped).",
        )
    return {"runs_purged": purged, "runs_lost": lost}


# --- reads -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Duty:
    """One entry of the beat schedule, as the console shows it."""

    name: str  # the schedule entry's name
    task: str
    cadence: str
    purpose: str
    time_limit: int | None
    last: ScheduledRun | None
    last_success_at: datetime | None
    failures_24h: int
    next_due: datetime | None

    @property
    def failing(self) -> bool:
        return self.last is not None and self.last.status == ScheduledRun.Status.FAILED


_tasks_imported = False


def _app() -> Any:
    """The Celery app with every app's tasks imported (their docstrings and time limits)."""
    global _tasks_imported
    from atp_site.celery import app

    if not _tasks_imported:
        app.loader.import_default_modules()
        _tasks_imported = True
    return app


def _time_limits() -> dict[str, int]:
    app = _app()
    limits = {}
    for spec in (app.conf.beat_schedule or {}).values():
        task = app.tasks.get(spec["task"])
        if task is not None:
            limits[spec["task"]] = int(task.time_limit or settings.CELERY_TASK_TIME_LIMIT)
    return limits


def _plural(n: int, unit: str) -> str:
    return f"{n} {unit}{'' if n == 1 else 's'}"


def cadence_words(schedule: Any) -> str:
    """`schedule` (seconds, a Celery schedule or a crontab) in words."""
    from celery.schedules import crontab
    from celery.schedules import schedule as every

    if isinstance(schedule, every):
        schedule = schedule.run_every.total_seconds()
    if isinstance(schedule, int | float):
        seconds = int(schedule)
        if seconds % 86400 == 0:
            days = seconds // 86400
            return "Daily" if days == 1 else f"Every {_plural(days, 'day')}"
        if seconds % 3600 == 0:
            hours = seconds // 3600
            return "Hourly" if hours == 1 else f"Every {_plural(hours, 'hour')}"
        if seconds % 60 == 0:
            minutes = seconds // 60
            return "Every minute" if minutes == 1 else f"Every {_plural(minutes, 'minute')}"
        return f"Every {_plural(seconds, 'second')}"
    if isinstance(schedule, crontab):
        fields = {
            name: getattr(schedule, f"_orig_{name}")
            for name in ("minute", "hour", "day_of_week", "day_of_month", "month_of_year")
        }
        zone = getattr(settings, "CELERY_TIMEZONE", "") or settings.TIME_ZONE or "UTC"
        simple = all(
            str(fields[k]) == "*" for k in ("day_of_week", "day_of_month", "month_of_year")
        )
        if simple and str(fields["hour"]).isdigit() and str(fields["minute"]).isdigit():
            return f"Daily at {int(fields['hour']):02d}:{int(fields['minute']):02d} {zone}"
        if simple and str(fields["hour"]) == "*" and str(fields["minute"]).isdigit():
            return f"Hourly at minute {int(fields['minute'])}"
        parts = " ".join(str(fields[k]) for k in fields)
        return f"Cron {parts} ({zone})"
    return str(schedule)


def _next_due(schedule: Any, last: ScheduledRun | None, now: datetime) -> datetime | None:
    """When beat sends the duty next, as far as these rows tell (beat keeps its own state)."""
    from celery.schedules import crontab

    if isinstance(schedule, crontab):
        # The estimate runs from `now` to the due minute less the microseconds of `now`.
        due = now + schedule.remaining_estimate(now)
        return due.replace(microsecond=0) + timedelta(seconds=due.microsecond >= 500_000)
    seconds = schedule if isinstance(schedule, int | float) else None
    if seconds is None and hasattr(schedule, "run_every"):
        seconds = schedule.run_every.total_seconds()
    if seconds is None or last is None:
        return None
    due = last.started_at + timedelta(seconds=seconds)
    return due if due > now else now


def _purpose(task: Any) -> str:
    """The first sentence of the task's docstring, without a leading cadence ("Hourly: ")
    that the page shows in a column of its own."""
    doc = (getattr(task, "__doc__", "") or "").strip() if task is not None else ""
    text = " ".join(doc.split("\n\n")[0].split())
    head, colon, rest = text.partition(": ")
    if colon and len(head) <= 40 and "." not in head and rest:
        text = rest[0].upper() + rest[1:]
    sentence, stop, _ = text.partition(". ")
    return sentence + "." if stop else text


def duty_list() -> list[Duty]:
    """Every periodic duty of the beat schedule with its latest run, in schedule order.

    Two queries whatever the number of duties: one aggregate per task (the latest run that
    was not skipped, by id, which follows the start; the last success; the day's failures),
    then those runs."""
    app = _app()
    now = timezone.now()
    schedule = app.conf.beat_schedule or {}
    names = sorted({spec["task"] for spec in schedule.values()})
    skipped, succeeded, failed = (
        ScheduledRun.Status.SKIPPED,
        ScheduledRun.Status.SUCCEEDED,
        ScheduledRun.Status.FAILED,
    )
    summary = {
        row["task"]: row
        for row in ScheduledRun.objects.filter(task__in=names)
        .values("task")
        .annotate(
            last_id=Max("pk", filter=~Q(status=skipped)),
            last_success_at=Max("finished_at", filter=Q(status=succeeded)),
            failures=Count(
                "pk", filter=Q(status=failed, started_at__gte=now - timedelta(hours=24))
            ),
        )
        .order_by()
    }
    last_ids = [row["last_id"] for row in summary.values() if row["last_id"] is not None]
    latest = {run.task: run for run in ScheduledRun.objects.filter(pk__in=last_ids)}
    duties = []
    for name, spec in schedule.items():
        task_name = spec["task"]
        task = app.tasks.get(task_name)
        row = summary.get(task_name, {})
        last = latest.get(task_name)
        duties.append(
            Duty(
                name=name,
                task=task_name,
                cadence=cadence_words(spec["schedule"]),
                purpose=_purpose(task.run if task is not None else None),
                time_limit=task.time_limit if task is not None else None,
                last=last,
                last_success_at=row.get("last_success_at"),
                failures_24h=row.get("failures", 0),
                next_due=_next_due(spec["schedule"], last, now),
            )
        )
    return duties


_alerts_cache: tuple[float, list[dict[str, str]]] = (0.0, [])
ALERTS_SECONDS = 15.0


def duty_alerts() -> list[dict[str, str]]:
    """The console overview's alerts: each periodic job whose latest run failed (read at
    most every ALERTS_SECONDS per process; the overview asks every second)."""
    global _alerts_cache
    at, cached = _alerts_cache
    if time.monotonic() - at < ALERTS_SECONDS:
        return list(cached)
    names = duty_task_names()
    latest = (
        ScheduledRun.objects.filter(task__in=names)
        .values("task")
        .annotate(last_id=Max("pk", filter=~Q(status=ScheduledRun.Status.SKIPPED)))
        .order_by()
        .values_list("last_id", flat=True)
    )
    failed = ScheduledRun.objects.filter(
        pk__in=[pk for pk in latest if pk is not None], status=ScheduledRun.Status.FAILED
    ).order_by("task")
    found = [
        {
            "level": "bad",
            "text": f"Periodic job {run.task} failed at "
            f"{timezone.localtime(run.started_at):%Y-%m-%d %H:%M}: {run.error[:120]}",
        }
        for run in failed
    ]
    _alerts_cache = (time.monotonic(), found)
    return list(found)


def duty_task_names() -> list[str]:
    """The tasks of the beat schedule, sorted (the console's and the API's filter choices)."""
    app = _app()
    return sorted({spec["task"] for spec in (app.conf.beat_schedule or {}).values()})


def run_list(*, task: str = "", status: str = "") -> QuerySet[ScheduledRun]:
    """Runs newest first, of one task and one status when given."""
    runs = ScheduledRun.objects.order_by("-started_at", "-pk")
    if task:
        runs = runs.filter(task=task)
    if status:
        runs = runs.filter(status=status)
    return runs
