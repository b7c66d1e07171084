"""A duty never runs twice at once: the second call finds the lock held and is skipped.

With REDIS_URL set the lock is a Redis key (atp_site.lib.locks), otherwise it lives in
this process; both are exercised by the suite's two runs.
"""

from __future__ import annotations

import threading
import time

import pytest
from django.conf import settings
from django.db import connection

from apps.audit.models import ScheduledRun
from atp_site.lib import locks

pytestmark = pytest.mark.django_db(transaction=True)

TIMEOUT = 20


def test_two_concurrent_runs_one_runs_the_other_is_skipped(fake_duty):
    inside = threading.Event()
    release = threading.Event()

    def slow(task):
        inside.set()
        assert release.wait(TIMEOUT), "the test never let the first run finish"
        return {"finished": True}

    duty = fake_duty(slow)
    outcome: dict[str, object] = {}

    def first() -> None:
        try:
            outcome["first"] = duty.task.apply().get()
        finally:
            connection.close()

    thread = threading.Thread(target=first, daemon=True)
    thread.start()
    try:
        assert inside.wait(TIMEOUT), "the first run did not start"
        assert locks.lock_held(f"duty:{duty.name}")
        second = duty.task.apply().get()
    finally:
        release.set()
        thread.join(TIMEOUT)
    assert not thread.is_alive()

    assert second == {"skipped": True, "reason": "another run of this job is in progress"}
    assert outcome["first"] == {"finished": True}
    assert len(duty.calls) == 1  # the skipped call never reached the body
    statuses = sorted(ScheduledRun.objects.filter(task=duty.name).values_list("status", flat=True))
    assert statuses == ["skipped", "succeeded"]
    # Released by its holder: the next run runs.
    assert not locks.lock_held(f"duty:{duty.name}")
    assert duty.task.apply().get() == {"finished": True}


def test_a_failed_run_releases_the_lock(fake_duty):
    def broken(task):
        raise RuntimeError("fails")

    duty = fake_duty(broken)
    with pytest.raises(RuntimeError):
        duty.task.apply(throw=True)
    assert not locks.lock_held(f"duty:{duty.name}")


def test_only_the_holder_releases_a_lock():
    lease = locks.lock_acquire("tests:owner-only", 30)
    assert lease is not None
    try:
        assert locks.lock_acquire("tests:owner-only", 30) is None
        forged = locks.Lease(lease.key, "somebody-else", lease.shared)
        assert locks.lock_release(forged) is False
        assert locks.lock_held("tests:owner-only")
    finally:
        assert locks.lock_release(lease) is True
    assert not locks.lock_held("tests:owner-only")
    assert locks.lock_release(lease) is False  # already released


def test_a_lock_expires_after_its_time_limit():
    lease = locks.lock_acquire("tests:expiry", 0.2)
    assert lease is not None
    deadline = time.monotonic() + 10
    while locks.lock_held("tests:expiry") and time.monotonic() < deadline:
        time.sleep(0.05)
    again = locks.lock_acquire("tests:expiry", 30)
    assert again is not None, "the expired lock was not taken again"
    assert locks.lock_release(lease) is False  # the old holder cannot free the new one's
    assert locks.lock_held("tests:expiry")
    assert locks.lock_release(again) is True


def test_the_lock_is_shared_through_redis_when_configured():
    lease = locks.lock_acquire("tests:where", 30)
    try:
        assert lease.shared is bool(settings.REDIS_URL)
        if settings.REDIS_URL:
            from django_redis import get_redis_connection

            assert get_redis_connection("default").get(lease.key) == lease.token.encode()
    finally:
        locks.lock_release(lease)


def test_lock_keys_are_per_deployment_prefix_and_database(monkeypatch):
    key = locks.lock_key("duty:x")
    monkeypatch.setitem(connection.settings_dict, "NAME", "another-database")
    assert locks.lock_key("duty:x") != key
    assert key.endswith(":duty:x") and ":lock:" in key
