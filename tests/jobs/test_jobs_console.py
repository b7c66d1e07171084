"""The console's Operations > Scheduled jobs page and GET /api/v1/jobs/scheduled/.

Access per role is declared in tests/permission_matrix/console_jobs.py; these tests look
at what the page and the API show.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from apps.audit.models import ScheduledRun
from apps.audit.scheduled import cadence_words, duty_list
from apps.tenants import roles

pytestmark = pytest.mark.django_db


def _user(role: str):
    user = get_user_model().objects.create_user(f"jobs-{role}")
    roles.user_roles_set(user=user, roles=[role], actor=None, source="cli")
    return user


def _client(role: str) -> APIClient:
    client = APIClient()
    client.force_login(_user(role))
    return client


@pytest.fixture
def runs():
    now = timezone.now()
    ok = ScheduledRun.objects.create(
        task="costs.rollup_usage",
        status="succeeded",
        started_at=now - timedelta(minutes=5),
        finished_at=now - timedelta(minutes=5),
        duration_ms=41,
        result={"hours": 2},
    )
    failed = ScheduledRun.objects.create(
        task="providers.health_check",
        status="failed",
        started_at=now - timedelta(minutes=1),
        finished_at=now - timedelta(minutes=1),
        duration_ms=7,
        error="OperationalError: could not connect",
    )
    skipped = ScheduledRun.objects.create(
        task="costs.rollup_usage", status="skipped", started_at=now, duration_ms=0
    )
    return ok, failed, skipped


def test_the_page_lists_every_duty_with_cadence_and_its_runs(runs):
    response = _client(roles.PLATFORM_ADMIN).get(reverse("audit:scheduledrun-list"))
    assert response.status_code == 200
    page = response.content.decode()
    for task in ("audit.verify_chain", "providers.health_check", "costs.rollup_usage"):
        assert task in page
    assert "Daily at 03:17 UTC" in page and "Every minute" in page
    assert "OperationalError: could not connect" in page
    assert 'class="badge status-failed"' in page  # the failure stands out
    assert "Scheduled jobs" in page  # the menu entry


def test_filters_narrow_the_runs(runs):
    client = _client(roles.READ_ONLY)
    url = reverse("audit:scheduledrun-list")
    response = client.get(
        url, {"status": "failed"}, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="console-table"
    )
    table = response.content.decode()
    assert "OperationalError" in table and "{&quot;hours&quot;: 2}" not in table
    assert "1 result" in table
    response = client.get(
        url, {"task": "costs.rollup_usage"}, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="console-table"
    )
    assert "2 results" in response.content.decode()


def test_an_auditor_may_not_open_the_page():
    response = _client(roles.AUDITOR).get(reverse("audit:scheduledrun-list"))
    assert response.status_code == 403


def test_the_api_lists_runs_newest_first_and_filters_them(runs):
    ok, failed, skipped = runs
    client = _client(roles.PLATFORM_ADMIN)
    url = reverse("audit-api:scheduled-run-list")
    body = client.get(url).json()
    assert [r["id"] for r in body["results"]] == [skipped.pk, failed.pk, ok.pk]
    assert body["results"][1]["error"] == "OperationalError: could not connect"
    only = client.get(url, {"task": "costs.rollup_usage", "status": "succeeded"}).json()
    assert [r["id"] for r in only["results"]] == [ok.pk]
    assert only["results"][0]["result"] == {"hours": 2}


def test_duty_list_tells_the_last_run_and_failures(runs):
    duties = {d.task: d for d in duty_list()}
    health = duties["providers.health_check"]
    assert health.failing and health.failures_24h == 1 and health.cadence == "Every minute"
    rollup = duties["costs.rollup_usage"]
    assert rollup.last.status == "succeeded"  # a skipped run is not the last run
    assert rollup.next_due is not None
    assert duties["audit.verify_chain"].last is None
    nightly = duties["audit.verify_chain"].next_due  # from its crontab: 03:17 UTC
    assert (nightly.hour, nightly.minute, nightly.second) == (3, 17, 0)
    assert rollup.purpose.startswith("Roll the usage ledger up")


@pytest.mark.parametrize(
    ("schedule", "words"),
    [
        (60.0, "Every minute"),
        (300.0, "Every 5 minutes"),
        (3600.0, "Hourly"),
        (45, "Every 45 seconds"),
    ],
)
def test_cadence_in_words(schedule, words):
    assert cadence_words(schedule) == words


def test_the_page_costs_a_fixed_number_of_queries(runs, django_assert_max_num_queries):
    client = _client(roles.PLATFORM_ADMIN)
    url = reverse("audit:scheduledrun-list")
    client.get(url)  # warm: the session, the user's permissions
    for n in range(30):
        ScheduledRun.objects.create(task="audit.seal_head", status="failed", error=f"e{n}")
    # Session, user, permissions and the menu's; two for the jobs, two for the runs (the
    # page and its count): ten on SQLite and PostgreSQL alike, however many runs there are.
    with django_assert_max_num_queries(10):
        response = client.get(url)
    assert response.status_code == 200


@pytest.fixture
def fresh_alerts():
    from apps.audit import scheduled

    scheduled._alerts_cache = (0.0, [])
    yield
    scheduled._alerts_cache = (0.0, [])


def test_a_failing_job_is_an_alert_on_the_overview(runs, fresh_alerts):
    from atp_site.console.live import figures

    platform_admin = _user(roles.PLATFORM_ADMIN)
    shown = figures.figures_for(figures.viewer_scope(platform_admin))["alerts"]
    texts = [a["text"] for a in shown if "Periodic job" in a["text"]]
    assert len(texts) == 1
    assert texts[0].startswith("Periodic job providers.health_check failed at ")
    assert texts[0].endswith("OperationalError: could not connect")
    # Viewers who may not see the runs are not told.
    auditor = figures.viewer_scope(_user(roles.AUDITOR))
    assert not any(
        "Periodic job" in a["text"] for a in figures.figures_for(auditor).get("alerts", [])
    )


def test_a_job_that_succeeded_since_its_failure_is_no_alert(runs, fresh_alerts):
    from apps.audit.scheduled import duty_alerts

    ScheduledRun.objects.create(task="providers.health_check", status="succeeded")
    assert duty_alerts() == []
