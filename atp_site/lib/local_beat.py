"""The periodic schedule run inside the web process when there is no Celery worker.

The embedded setup (no REDIS_URL, or ATP_CELERY_EAGER) has no broker, worker or beat, so
the gateway process runs `app.conf.beat_schedule` itself: each entry's schedule (seconds
or crontab, Celery's own objects) says when it is due, and the task runs eagerly in a
worker thread (the process's database thread) so the event loop keeps serving. One job at a time; a failing job is
logged and tried again at its next due time. With Redis, Celery beat and workers do this
instead and this loop does not start.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from asgiref.sync import sync_to_async

logger = logging.getLogger(__name__)

TICK_SECONDS = 1.0


@dataclass(slots=True)
class _Entry:
    name: str
    task: str
    schedule: Any  # celery.schedules.schedule | crontab
    last_run_at: datetime


def _entries(app) -> list[_Entry]:
    from celery.schedules import schedule as every

    out = []
    now = app.now()
    for name, spec in (app.conf.beat_schedule or {}).items():
        sched = spec["schedule"]
        if isinstance(sched, int | float):
            sched = every(sched, app=app)
        else:
            sched.app = app
        out.append(_Entry(name=name, task=spec["task"], schedule=sched, last_run_at=now))
    return out


def _run(app, entry: _Entry) -> None:
    try:
        app.tasks[entry.task].apply(throw=True)
    except Exception:
        logger.exception("periodic job %s (%s) failed", entry.name, entry.task)


async def run_forever(app=None) -> None:
    """Run due jobs until cancelled."""
    if app is None:
        from atp_site.celery import app
    # Import the apps' tasks modules, as a worker does at start.
    await sync_to_async(app.loader.import_default_modules, thread_sensitive=True)()
    entries = _entries(app)
    if entries:
        logger.info("running %d periodic jobs in process", len(entries))
    while True:
        for entry in entries:
            due, _ = entry.schedule.is_due(entry.last_run_at)
            if due:
                entry.last_run_at = app.now()
                # The thread every other database write of this process uses: an embedded
                # SQLite database then never sees two writers from one process.
                await sync_to_async(_run, thread_sensitive=True)(app, entry)
        await asyncio.sleep(TICK_SECONDS)
