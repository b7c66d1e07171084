"""The embedded setup runs the beat schedule in process, and its runs are recorded too."""

from __future__ import annotations

import asyncio
import contextlib
import time

import pytest
from asgiref.sync import sync_to_async
from django.db import connections

from apps.audit.models import ScheduledRun
from atp_site.lib import local_beat

pytestmark = pytest.mark.django_db(transaction=True)


async def test_the_in_process_schedule_runs_duties_and_records_their_runs(
    fake_duty, monkeypatch, eager_jobs
):
    from atp_site.celery import app

    ticks = fake_duty(lambda task: {"tick": True}, schedule=0.05)

    def broken(task):
        raise RuntimeError("this duty fails")

    failing = fake_duty(broken, schedule=0.05)
    # Only the two test duties: the project's would run for real.
    app.conf.beat_schedule = {
        key: spec
        for key, spec in app.conf.beat_schedule.items()
        if spec["task"] in (ticks.name, failing.name)
    }
    monkeypatch.setattr(local_beat, "TICK_SECONDS", 0.02)

    runner = asyncio.ensure_future(local_beat.run_forever(app))
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            counts = await sync_to_async(_counts)(ticks.name, failing.name)
            if counts[0] >= 2 and counts[1] >= 2:
                break
            await asyncio.sleep(0.05)
    finally:
        runner.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await runner

    succeeded, failed = await sync_to_async(_counts)(ticks.name, failing.name)
    # The thread the schedule ran in keeps its connection: close it, or the test database
    # cannot be dropped.
    await sync_to_async(connections.close_all)()
    assert succeeded >= 2, "the in-process schedule did not run the duty repeatedly"
    assert failed >= 2, "a failing duty stopped being run"


def _counts(ok: str, failing: str) -> tuple[int, int]:
    return (
        ScheduledRun.objects.filter(task=ok, status="succeeded").count(),
        ScheduledRun.objects.filter(task=failing, status="failed").count(),
    )
