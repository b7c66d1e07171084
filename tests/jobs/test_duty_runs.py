"""Each run of a periodic duty is recorded: succeeded, failed (and audited), skipped."""

from __future__ import annotations

import os
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.audit.models import AuditEvent, ScheduledRun
from apps.audit.scheduled import error_text, result_summary, runs_purge
from atp_site.lib.errors import ATPError

pytestmark = pytest.mark.django_db


def test_a_successful_run_is_recorded_with_its_result_and_duration(fake_duty):
    duty = fake_duty(lambda task: {"rows": 3})

    assert duty.task.apply().get() == {"rows": 3}

    run = ScheduledRun.objects.get(task=duty.name)
    assert run.status == ScheduledRun.Status.SUCCEEDED
    assert run.result == {"rows": 3}
    assert run.finished_at >= run.started_at
    assert run.duration_ms is not None and run.duration_ms >= 0
    assert run.attempt == 1
    assert run.pid == os.getpid() and run.hostname
    assert run.task_id  # Celery's id of the call
    assert run.error == ""


def test_a_failed_run_is_recorded_audited_and_raised_when_eager(fake_duty):
    def broken(task):
        raise OSError("disk full at postgres://atp:hunter2@db/atp")

    duty = fake_duty(broken)

    with pytest.raises(OSError):
        duty.task.apply(throw=True)

    run = ScheduledRun.objects.get(task=duty.name)
    assert run.status == ScheduledRun.Status.FAILED
    assert run.error.startswith("OSError: disk full")
    assert "hunter2" not in run.error and "postgres://***@db/atp" in run.error
    assert run.retry_in is None  # eager: the next due time is the retry
    event = AuditEvent.objects.get(event_type="job.failed", resource_id=duty.name)
    assert event.outcome == AuditEvent.Outcome.FAILURE
    assert event.resource_type == "scheduled_job"
    assert event.source == AuditEvent.Source.SYSTEM
    assert event.data["task"] == duty.name and event.data["run"] == run.pk
    assert "hunter2" not in str(event.data)


def test_a_direct_call_is_recorded_too_and_returns_the_result(fake_duty):
    duty = fake_duty(lambda task, n: {"n": n})
    assert duty.task(7) == {"n": 7}
    assert ScheduledRun.objects.get(task=duty.name).result == {"n": 7}


def test_tasks_outside_the_schedule_are_not_recorded():
    from atp_site.celery import app

    @app.task(name="tests.not_a_duty")
    def plain():
        return "plain"

    try:
        assert app.tasks["tests.not_a_duty"].apply().get() == "plain"
    finally:
        app.tasks.pop("tests.not_a_duty", None)
    assert not ScheduledRun.objects.filter(task="tests.not_a_duty").exists()


def test_the_project_duties_use_the_base_class_and_record_their_runs():
    from atp_site.celery import app
    from atp_site.duties import Task

    app.loader.import_default_modules()
    for spec in app.conf.beat_schedule.values():
        assert isinstance(app.tasks[spec["task"]], Task), spec["task"]

    result = app.tasks["audit.jobs_expire"].apply().get()

    assert result == {"expired": 0, "runs_purged": 0, "runs_lost": 0}
    run = ScheduledRun.objects.get(task="audit.jobs_expire")
    assert run.status == ScheduledRun.Status.SUCCEEDED and run.result == result


def test_a_big_result_is_stored_as_a_truncated_preview():
    summary = result_summary({"rows": list(range(5000))})
    assert summary["truncated"] is True and len(summary["preview"]) <= 1000
    assert result_summary("ok") == {"value": "ok"}
    assert result_summary(None) is None


def test_error_text_masks_secrets_and_is_short():
    text = error_text(RuntimeError("login failed: password=s3cr3t token: abc " + "x" * 5000))
    assert "s3cr3t" not in text and "abc" not in text
    assert text.startswith("RuntimeError: login failed: password=***")
    assert len(text) <= 1000


def test_old_runs_are_purged_and_lost_ones_marked_failed(settings):
    settings.ATP_SCHEDULED_RUN_DAYS = 14
    now = timezone.now()
    old = ScheduledRun.objects.create(
        task="audit.jobs_expire", status="succeeded", started_at=now - timedelta(days=15)
    )
    recent = ScheduledRun.objects.create(
        task="audit.jobs_expire", status="succeeded", started_at=now - timedelta(days=13)
    )
    # audit.jobs_expire's time limit is 600 s: a run started an hour ago was lost.
    lost = ScheduledRun.objects.create(
        task="audit.jobs_expire", status="running", started_at=now - timedelta(hours=1)
    )
    running = ScheduledRun.objects.create(task="audit.jobs_expire", status="running")

    assert runs_purge(now=now) == {"runs_purged": 1, "runs_lost": 1}

    assert not ScheduledRun.objects.filter(pk=old.pk).exists()
    assert ScheduledRun.objects.filter(pk=recent.pk).exists()
    lost.refresh_from_db()
    running.refresh_from_db()
    assert lost.status == "failed" and "time limit" in lost.error
    assert running.status == "running"


class _Invalid(ATPError):
    """An error of ATP's own, not retryable (the default)."""


def test_a_project_error_not_marked_retryable_is_not_retried(fake_duty):
    def invalid(task):
        raise _Invalid("the catalog is not valid")

    duty = fake_duty(invalid)
    assert duty.task._retry_in(3600.0, _Invalid("x")) is None
    assert duty.task._retry_in(3600.0, OSError("x")) is not None
