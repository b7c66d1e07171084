"""The daily backup job: scheduled, run as a recorded job, never twice at once."""

from __future__ import annotations

import pytest

from apps.audit.backup.services import _exclusive
from apps.audit.models import AuditEvent, Job
from apps.audit.tasks import backup_task
from atp_site.lib import local_beat

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_task_makes_a_backup_and_records_its_run(settings, tenant_factory):
    tenant_factory(slug="acme")
    outcome = backup_task.apply().get()
    assert outcome["status"] == "succeeded", outcome
    job = Job.objects.get(pk=outcome["job"])
    assert (job.kind, job.status, job.progress) == ("audit.backup", "succeeded", 100)
    assert job.started_at <= job.finished_at
    [archive] = settings.ATP_BACKUP_DIR.glob("atp-backup-*.tar")
    assert job.result["file"] == archive.name and job.result["protection"] == "none"
    event = AuditEvent.objects.get(event_type="backup.created")
    assert event.actor == "job:audit.backup" and event.data["file"] == archive.name


def test_the_task_encrypts_with_the_configured_key(settings, tenant_factory):
    settings.ATP_BACKUP_ENCRYPTION_KEY = "a configured backup passphrase"
    tenant_factory(slug="acme")
    outcome = backup_task.apply().get()
    assert outcome["result"]["file"].endswith(".tar.enc")


def test_a_run_while_another_backup_runs_does_nothing(settings):
    settings.ATP_BACKUP_DIR.mkdir(parents=True)
    with _exclusive(settings.ATP_BACKUP_DIR):
        outcome = backup_task.apply().get()
    assert outcome["status"] == "skipped"
    assert not Job.objects.filter(kind="audit.backup").exists()
    assert not list(settings.ATP_BACKUP_DIR.glob("atp-backup-*"))


def test_a_failed_backup_is_a_failed_job(settings, monkeypatch):
    from apps.audit.backup import database

    def broken(target, alias="default"):
        raise database.DatabaseCopyError("pg_dump failed: connection refused")

    monkeypatch.setattr(database, "dump", broken)
    outcome = backup_task.apply().get()
    assert outcome["status"] == "failed"
    assert outcome["error"] == "No backup was made: pg_dump failed: connection refused."


def test_it_is_on_the_daily_schedule_and_the_embedded_one():
    from celery.schedules import crontab

    from atp_site.celery import app

    entry = app.conf.beat_schedule["audit-backup"]
    assert entry["task"] == "audit.backup" and isinstance(entry["schedule"], crontab)
    app.loader.import_default_modules()
    assert "audit.backup" in {e.task for e in local_beat._entries(app)}
    assert "audit.backup" in app.tasks
