"""Rows of the periodic jobs' runs: the console's Operations page and
GET /api/v1/jobs/scheduled/ (apps.audit.scheduled).

The runs are platform-wide records, not a tenant's: global holders of
audit.view_scheduledrun see them (platform-admin, read-only, super-admin, superusers).
"""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from tests.permission_matrix.rows import Row, row
from tests.permission_matrix.world import World


def extend_world(world: World) -> None:
    """A succeeded and a failed run of the hourly expiry job."""
    from apps.audit.models import ScheduledRun

    now = timezone.now()
    ScheduledRun.objects.create(
        task="audit.jobs_expire",
        status=ScheduledRun.Status.SUCCEEDED,
        started_at=now - timedelta(hours=1),
        finished_at=now - timedelta(hours=1),
        duration_ms=12,
        result={"expired": 0},
    )
    ScheduledRun.objects.create(
        task="audit.jobs_expire",
        status=ScheduledRun.Status.FAILED,
        started_at=now,
        finished_at=now,
        duration_ms=3,
        error="OperationalError: the database is unreachable",
        retry_in=30,
    )


A = "audit:"
API = "audit-api:"

# fmt: off
ROWS: list[Row] = [
    #    id                                URL name                         method  an  st  ro  tm  ta  au  co  se  pl  mg  sa  su
    row("scheduled jobs",                  A + "scheduledrun-list",         "get",  "302 403 200 403 403 403 403 403 200 403 200 200"),
    row("scheduled jobs failed htmx",      A + "scheduledrun-list",         "get",  "401 403 200 403 403 403 403 403 200 403 200 200", htmx=True, query={"status": "failed"}),
    row("scheduled runs api",              API + "scheduled-run-list",      "get",  "401 403 200 403 403 403 403 403 200 403 200 200"),
    row("scheduled runs api filtered",     API + "scheduled-run-list",      "get",  "401 403 200 403 403 403 403 403 200 403 200 200", query={"task": "audit.jobs_expire", "status": "failed"}),
    row("scheduled runs api bad status",   API + "scheduled-run-list",      "get",  "401 403 400 403 403 403 403 403 400 403 400 400", query={"status": "exploded"}),
]
# fmt: on
