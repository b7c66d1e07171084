"""Background jobs: run to completion with progress, scoped results, expiry, limits, failures."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.test import Client
from django.utils import timezone

from apps.audit import jobs
from apps.audit.jobs import JobError, Output, job_kind, job_run, job_start, jobs_expire
from apps.audit.models import AuditEvent, Job
from apps.audit.services import audit_record
from tests.console.audit_cast import *  # noqa: F403 - the cast's fixtures
from tests.console.audit_cast import tenant_auditor

pytestmark = pytest.mark.django_db


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_verification_runs_to_completion_and_the_page_stops_polling(auditor, events, eager_jobs):
    client = signed_in(auditor)
    with eager_jobs():
        response = client.post("/audit/verify/", {})
    job = Job.objects.get(kind="audit.verify")
    assert response.status_code == 303 and response["Location"] == f"/audit/jobs/{job.pk}/"
    assert job.status == "succeeded" and job.progress == 100
    assert job.result["ok"] is True and job.result["head_sequence"] >= len(events)
    page = client.get(f"/audit/jobs/{job.pk}/")
    assert b"Chain OK" in page.content
    fragment = client.get(
        f"/audit/jobs/{job.pk}/", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="job-status"
    )
    assert b"<html" not in fragment.content and b"hx-trigger" not in fragment.content
    assert b"Chain OK" in fragment.content


def test_a_running_job_polls_with_its_progress(auditor):
    job = job_start(
        kind="audit.verify",
        parameters={},
        user=auditor,
        tenant_ids=None,
        permissions=[(AuditEvent, "verify")],
    )
    Job.objects.filter(pk=job.pk).update(status="running", progress=42, message="Checked #42")
    fragment = signed_in(auditor).get(
        f"/audit/jobs/{job.pk}/", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="job-status"
    )
    body = fragment.content.decode()
    assert 'hx-trigger="every 1s"' in body and "data-poll" in body
    assert 'value="42"' in body and "Checked #42" in body


def test_full_verification_of_a_tampered_chain_shows_where_it_breaks(auditor, events, eager_jobs):
    from tests.audit.conftest import tampering

    broken = events[3].sequence
    with tampering() as cursor:
        cursor.execute(
            "UPDATE audit_auditevent SET actor = 'mallory' WHERE sequence = %s", [broken]
        )
    client = signed_in(auditor)
    with eager_jobs():
        client.post("/audit/verify/", {"full": "on"})
    job = Job.objects.get(kind="audit.verify")
    assert job.status == "succeeded"
    assert job.result["ok"] is False and job.result["problem"]["sequence"] == broken
    page = client.get(f"/audit/jobs/{job.pk}/").content.decode()
    assert "Chain broken" in page and f"#{broken}" in page


def test_report_downloads_for_the_requester_and_is_404_for_another_tenant(acme, globex, eager_jobs):
    requester = tenant_auditor("acme-reporter", acme)
    audit_record(event_type="key.created", action="create", tenant_id=acme.pk)
    client = signed_in(requester)
    today = timezone.now().date()
    with eager_jobs():
        response = client.post(
            "/audit/reports/",
            {
                "tenant": "acme",
                "since": today - timedelta(days=1),
                "until": today,
                "format": "pdf",
            },
        )
    assert response.status_code == 303
    job = Job.objects.get(kind="audit.report")
    assert job.status == "succeeded", job.error
    assert job.tenant_ids == [str(acme.pk)]
    download = client.get(f"/audit/jobs/{job.pk}/download/")
    assert download.status_code == 200
    assert download["Content-Type"] == "application/pdf"
    assert b"".join(download.streaming_content).startswith(b"%PDF")
    assert "attachment" in download["Content-Disposition"]
    # The result file lives under ATP_DATA_DIR, not in the database.
    assert jobs.result_path(job).exists() and job.result_size > 0
    outsider = signed_in(tenant_auditor("globex-reporter", globex))
    assert outsider.get(f"/audit/jobs/{job.pk}/").status_code == 404
    assert outsider.get(f"/audit/jobs/{job.pk}/download/").status_code == 404
    # A peer holding the same permission on the same tenant may download it.
    peer = signed_in(tenant_auditor("acme-peer", acme))
    assert peer.get(f"/audit/jobs/{job.pk}/download/").status_code == 200
    assert AuditEvent.objects.filter(
        event_type="audit.report_exported", actor="acme-reporter", tenant_id=acme.pk
    ).exists()


def test_a_tenant_auditor_must_name_their_tenant_for_a_report(acme_auditor, acme):
    response = signed_in(acme_auditor).post(
        "/audit/reports/", {"since": "2026-01-01", "until": "2026-01-31", "format": "json"}
    )
    assert response.status_code == 200
    assert "tenant" in response.context["form"].errors
    assert not Job.objects.exists()


def test_an_all_tenant_report_is_not_visible_to_a_tenant_auditor(auditor, acme, eager_jobs):
    client = signed_in(auditor)
    with eager_jobs():
        client.post(
            "/audit/reports/", {"since": "2026-01-01", "until": "2026-01-31", "format": "csv"}
        )
    job = Job.objects.get()
    assert job.tenant_ids is None and job.status == "succeeded"
    narrow = signed_in(tenant_auditor("narrow", acme))
    assert narrow.get(f"/audit/jobs/{job.pk}/download/").status_code == 404
    assert client.get(f"/audit/jobs/{job.pk}/download/").status_code == 200


def test_a_requester_who_loses_the_role_loses_the_result(acme, eager_jobs):
    from guardian.shortcuts import remove_perm

    requester = tenant_auditor("leaver", acme)
    client = signed_in(requester)
    with eager_jobs():
        client.post("/audit/verify/", {})
    job = Job.objects.get()
    assert client.get(f"/audit/jobs/{job.pk}/").status_code == 200
    remove_perm("tenants.audit_tenant", requester, acme)
    assert client.get(f"/audit/jobs/{job.pk}/").status_code == 404


def test_job_pages_refuse_unknown_ids_and_signed_out_users(auditor):
    import uuid

    assert signed_in(auditor).get(f"/audit/jobs/{uuid.uuid4()}/").status_code == 404
    assert Client().get(f"/audit/jobs/{uuid.uuid4()}/").status_code == 302


def test_a_run_is_idempotent(auditor):
    job = job_start(
        kind="audit.verify",
        parameters={},
        user=auditor,
        tenant_ids=None,
        permissions=[(AuditEvent, "verify")],
    )
    first = job_run(str(job.pk))
    assert first.status == "succeeded"
    finished_at = first.finished_at
    assert job_run(str(job.pk)) is None
    job.refresh_from_db()
    assert job.finished_at == finished_at


def test_results_expire_after_the_configured_hours(auditor, settings, eager_jobs):
    settings.ATP_JOB_RESULT_HOURS = 2
    client = signed_in(auditor)
    with eager_jobs():
        client.post("/audit/export/", {"format": "csv"})
    job = Job.objects.get()
    path = jobs.result_path(job)
    assert path.exists()
    assert job.expires_at - job.finished_at == timedelta(hours=2)
    assert jobs_expire() == 0
    with time_machine.travel(timezone.now() + timedelta(hours=3)):
        assert jobs_expire() == 1
        # Signed in again: sessions expire too.
        assert signed_in(auditor).get(f"/audit/jobs/{job.pk}/download/").status_code == 404
    assert not path.exists()
    job.refresh_from_db()
    assert job.result_file == "" and job.message == "Result expired"


def test_a_failing_job_records_a_readable_error(auditor, eager_jobs):
    @job_kind("test.fails", title="Fails")
    def fails(job, progress):
        progress(30, "Trying")
        raise JobError("The thing could not be done.")

    @job_kind("test.crashes", title="Crashes")
    def crashes(job, progress):
        raise RuntimeError("secret internals")

    try:
        with eager_jobs():
            a = job_start(
                kind="test.fails",
                parameters={},
                user=auditor,
                tenant_ids=None,
                permissions=[(AuditEvent, "verify")],
            )
            b = job_start(
                kind="test.crashes",
                parameters={},
                user=auditor,
                tenant_ids=None,
                permissions=[(AuditEvent, "verify")],
            )
        a.refresh_from_db()
        b.refresh_from_db()
        assert a.status == "failed" and a.error == "The thing could not be done."
        assert b.status == "failed" and "secret" not in b.error
        page = signed_in(auditor).get(f"/audit/jobs/{b.pk}/")
        assert b"failed unexpectedly" in page.content
    finally:
        jobs.KINDS.pop("test.fails", None)
        jobs.KINDS.pop("test.crashes", None)


def test_a_job_left_running_past_its_time_limit_reads_as_failed(auditor):
    @job_kind("test.slow", title="Slow", time_limit=60)
    def slow(job, progress):
        return Output(data={})

    try:
        job = job_start(
            kind="test.slow",
            parameters={},
            user=auditor,
            tenant_ids=None,
            permissions=[(AuditEvent, "verify")],
        )
        Job.objects.filter(pk=job.pk).update(
            status="running", started_at=timezone.now() - timedelta(minutes=10)
        )
        page = signed_in(auditor).get(f"/audit/jobs/{job.pk}/")
        job.refresh_from_db()
        assert job.status == "failed" and "time limit" in job.error
        assert b"time limit" in page.content
    finally:
        jobs.KINDS.pop("test.slow", None)


def test_the_job_runs_as_its_requester(auditor, eager_jobs):
    client = signed_in(auditor)
    with eager_jobs():
        client.post("/audit/export/", {"format": "json"})
    exported = AuditEvent.objects.get(event_type="audit.exported")
    assert exported.actor == "auditor" and exported.source == "console"
    assert exported.user_id == str(auditor.pk)
