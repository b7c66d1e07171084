"""A periodic duty of the tests' own: a task registered on the project's Celery app and
put in its beat schedule, whose body the test decides."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest


@dataclass
class FakeDuty:
    """The task, its name and what its body does (`body(task, *args, **kwargs)`)."""

    task: Any
    name: str
    body: Callable[..., Any] = lambda task, *a, **k: {"done": True}
    calls: list[tuple] = field(default_factory=list)


@pytest.fixture
def fake_duty() -> Iterator[Callable[..., FakeDuty]]:
    """`fake_duty(body, schedule=3600.0, **task_options)`: a new duty in the beat schedule."""
    from atp_site.celery import app

    made: list[str] = []
    before = app.conf.beat_schedule

    def make(
        body: Callable[..., Any] | None = None, *, schedule: Any = 3600.0, **options: Any
    ) -> FakeDuty:
        name = f"tests.duty_{uuid.uuid4().hex[:10]}"
        duty = FakeDuty(task=None, name=name)
        if body is not None:
            duty.body = body
        options.setdefault("time_limit", 30)

        @app.task(name=name, bind=True, **options)
        def run(self, *args, **kwargs):
            duty.calls.append((args, kwargs))
            return duty.body(self, *args, **kwargs)

        duty.task = app.tasks[name]
        schedule_now = dict(app.conf.beat_schedule)
        schedule_now[f"test-{name}"] = {"task": name, "schedule": schedule}
        app.conf.beat_schedule = schedule_now
        made.append(name)
        return duty

    yield make
    app.conf.beat_schedule = before
    for name in made:
        app.tasks.pop(name, None)
