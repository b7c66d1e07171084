"""In a worker, a failed duty is retried with exponential backoff and jitter."""

from __future__ import annotations

import random
from typing import Any

import pytest
from celery.exceptions import Retry

from apps.audit.models import ScheduledRun
from atp_site.duties import retry_countdown

pytestmark = pytest.mark.django_db


def test_the_countdown_doubles_from_30_seconds_up_to_10_minutes_with_jitter():
    rng = random.Random(7)
    for retries, ceiling in [(0, 30), (1, 60), (2, 120), (3, 240), (4, 480), (5, 600), (9, 600)]:
        values = {retry_countdown(retries, rng=rng) for _ in range(200)}
        assert min(values) >= ceiling // 2 and max(values) <= ceiling, (retries, values)
        assert len(values) > 3, "no jitter"


def _as_worker(task: Any, *, retries: int) -> Any:
    """Call `task` as a worker would: a request that is not eager, with its retry count."""
    task.push_request(
        id=f"worker-call-{retries}",
        retries=retries,
        is_eager=False,
        called_directly=False,
        hostname="worker@test",
        delivery_info={},
    )
    try:
        return task()
    finally:
        task.pop_request()


@pytest.fixture
def sent(monkeypatch):
    """What a retry would have sent to the broker (nothing leaves the process)."""
    from celery.canvas import Signature

    calls: list[dict[str, Any]] = []

    def apply_async(self, args=None, kwargs=None, **options):
        calls.append({**self.options, **options})

    monkeypatch.setattr(Signature, "apply_async", apply_async)
    return calls


@pytest.mark.parametrize(("retries", "low", "high"), [(0, 15, 30), (1, 30, 60), (2, 60, 120)])
def test_a_failed_run_in_a_worker_is_retried_with_backoff(fake_duty, sent, retries, low, high):
    def broken(task):
        raise ConnectionError("the upstream is down")

    duty = fake_duty(broken, schedule=86400.0)

    with pytest.raises(Retry) as raised:
        _as_worker(duty.task, retries=retries)

    assert low <= raised.value.when <= high
    assert len(sent) == 1
    assert sent[0]["countdown"] == raised.value.when
    assert sent[0]["retries"] == retries + 1
    assert sent[0]["expires"] is None  # a retry outlives the scheduled send's expiry
    run = ScheduledRun.objects.get(task=duty.name)
    assert run.status == ScheduledRun.Status.FAILED
    assert run.attempt == retries + 1
    assert run.retry_in == raised.value.when
    assert run.hostname == "worker@test"


def test_no_retry_once_the_retries_are_spent(fake_duty, sent):
    def broken(task):
        raise ConnectionError("still down")

    duty = fake_duty(broken, schedule=86400.0, max_retries=3)

    with pytest.raises(ConnectionError):
        _as_worker(duty.task, retries=3)
    assert sent == []
    assert ScheduledRun.objects.get(task=duty.name).retry_in is None


def test_no_retry_when_the_next_scheduled_run_comes_first(fake_duty, sent):
    def broken(task):
        raise ConnectionError("down")

    duty = fake_duty(broken, schedule=10.0)  # every 10 s: sooner than any retry

    with pytest.raises(ConnectionError):
        _as_worker(duty.task, retries=0)
    assert sent == []


def test_a_retry_the_duty_schedules_itself_is_recorded(fake_duty, sent):
    def retrying(task):
        raise task.retry(exc=ConnectionError("catalog unreachable"), countdown=300)

    duty = fake_duty(retrying, schedule=86400.0)

    with pytest.raises(Retry):
        _as_worker(duty.task, retries=0)
    run = ScheduledRun.objects.get(task=duty.name)
    assert run.status == "failed" and run.retry_in == 300
    assert run.error == "ConnectionError: catalog unreachable"
    assert len(sent) == 1 and sent[0]["countdown"] == 300
