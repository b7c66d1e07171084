"""The in-process periodic schedule of the embedded setup."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from celery import Celery
from celery.schedules import crontab

from atp_site.lib import local_beat

pytestmark = pytest.mark.django_db(transaction=True)


async def test_due_jobs_run_and_failures_do_not_stop_the_loop(monkeypatch):
    app = Celery("beat-test")
    app.conf.task_always_eager = True
    calls: list[str] = []

    @app.task(name="t.tick")
    def tick():
        calls.append("tick")

    @app.task(name="t.broken")
    def broken():
        calls.append("broken")
        raise RuntimeError("this job fails")

    app.conf.beat_schedule = {
        "tick": {"task": "t.tick", "schedule": 0.05},
        "broken": {"task": "t.broken", "schedule": 0.05},
        "nightly": {"task": "t.tick", "schedule": crontab(hour=3, minute=17)},
    }
    monkeypatch.setattr(local_beat, "TICK_SECONDS", 0.02)
    runner = asyncio.ensure_future(local_beat.run_forever(app))
    await asyncio.sleep(0.5)
    runner.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await runner
    assert calls.count("tick") >= 3  # ran repeatedly, the nightly entry not at all
    assert calls.count("broken") >= 3  # a failing job is retried at its next due time


def test_the_project_schedule_is_understood():
    from atp_site.celery import app

    app.loader.import_default_modules()
    names = {e.task for e in local_beat._entries(app)}
    assert {"providers.health_check", "routing.persist_learning", "audit.verify_chain"} <= names
    assert all(name in app.tasks for name in names)
