"""The daily backup job: scheduled, recorded and locked as every periodic duty."""

from __future__ import annotations

import pytest

from apps.audit.backup.services import _exclusive
from apps.audit.models import AuditEvent, ScheduledRun
from apps.audit.tasks import backup_task
from atp_site.lib import local_beat, locks

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_task_makes_a_backup_and_records_its_run(settings, tenant_factory):
    tenant_factory(slug="acme")
    outcome = backup_task.apply().get()
    [archive] = settings.ATP_BACKUP_DIR.glob("atp-backup-*.tar")
    assert outcome["file"] == archive.name and outcome["protection"] == "none"
    run = ScheduledRun.objects.get(task="audit.backup")
    assert run.status == ScheduledRun.Status.SUCCEEDED
    assert run.result["file"] == archive.name and run.duration_ms is not None
    event = AuditEvent.objects.get(event_type="backup.created")
    assert event.data["file"] == archive.name and event.data["sha256"] == outcome["sha256"]


def test_the_task_encrypts_with_the_configured_key(settings, tenant_factory):
    settings.ATP_BACKUP_ENCRYPTION_KEY = "a configured backup passphrase"
    tenant_factory(slug="acme")
    outcome = backup_task.apply().get()
    assert outcome["file"].endswith(".tar.enc")


def test_a_run_while_another_run_holds_the_duty_is_skipped(settings):
    lease = locks.lock_acquire("duty:audit.backup", 60)
    try:
        outcome = backup_task.apply().get()
    finally:
        locks.lock_release(lease)
    assert outcome["skipped"] is True
    assert ScheduledRun.objects.get(task="audit.backup").status == ScheduledRun.Status.SKIPPED
    assert not settings.ATP_BACKUP_DIR.exists()


def test_a_run_while_a_manual_backup_writes_does_nothing(settings):
    settings.ATP_BACKUP_DIR.mkdir(parents=True)
    with _exclusive(settings.ATP_BACKUP_DIR):  # what `manage.py atp_backup` holds
        outcome = backup_task.apply().get()
    assert outcome["skipped"] is True and outcome["reason"].startswith("another backup is")
    assert not list(settings.ATP_BACKUP_DIR.glob("atp-backup-*"))


def test_a_failed_backup_is_a_failed_run(settings, monkeypatch):
    from apps.audit.backup import database

    def broken(target, alias="default"):
        raise database.DatabaseCopyError("pg_dump failed: connection refused")

    monkeypatch.setattr(database, "dump", broken)
    with pytest.raises(Exception, match="pg_dump failed: connection refused"):
        backup_task.apply(throw=True)
    run = ScheduledRun.objects.get(task="audit.backup")
    assert run.status == ScheduledRun.Status.FAILED and "connection refused" in run.error
    assert AuditEvent.objects.filter(event_type="job.failed").exists()


def test_it_is_on_the_daily_schedule_and_the_embedded_one():
    from celery.schedules import crontab

    from atp_site.celery import app
    from atp_site.duties import Task

    entry = app.conf.beat_schedule["audit-backup"]
    assert entry["task"] == "audit.backup" and isinstance(entry["schedule"], crontab)
    app.loader.import_default_modules()
    assert "audit.backup" in {e.task for e in local_beat._entries(app)}
    assert isinstance(app.tasks["audit.backup"], Task)
