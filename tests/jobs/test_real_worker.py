"""A real Celery worker and beat, as separate processes, on the machine's Redis.

They share this test's database (committed rows: a transactional test) and Redis key
prefix, so they and this process act as one deployment; they consume and send on a queue
of their own (ATP_CELERY_QUEUE), so nothing else on that Redis takes their tasks or sends
them any. Beat runs the project's schedule with the audit seal every 10 seconds (its
shortest allowed interval); the test waits for the worker to have recorded one of those
runs, then shows a duty whose lock another process holds being skipped by the worker.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection

from apps.audit.models import ScheduledRun
from atp_site.lib import locks
from tests.e2e.conftest import throwaway_secrets

pytestmark = [
    pytest.mark.redis,
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(240),
]

ROOT = Path(__file__).resolve().parents[2]
DEADLINE = 60.0


def _database_url() -> str:
    """This test's database (the test database, not the configured one) as a URL."""
    db = connection.settings_dict
    credentials = quote(db.get("USER") or "")
    if db.get("PASSWORD"):
        credentials += ":" + quote(db["PASSWORD"])
    host = db.get("HOST") or "127.0.0.1"
    port = f":{db['PORT']}" if db.get("PORT") else ""
    return f"postgres://{credentials}@{host}{port}/{db['NAME']}"


class Celery:
    """The worker and beat processes, their logs, and how to stop them."""

    def __init__(self, data_dir: Path, queue: str, node: str) -> None:
        self.data_dir, self.queue, self.node = data_dir, queue, node
        self.processes: dict[str, subprocess.Popen] = {}
        keep = ("PATH", "HOME", "LANG", "TMPDIR", "REDIS_URL", "ATP_REDIS_PREFIX")
        self.env = {k: v for k, v in os.environ.items() if k in keep}
        self.env.update(throwaway_secrets(data_dir))
        self.env.update(
            {
                "DJANGO_SETTINGS_MODULE": "atp_site.settings",
                "DATABASE_URL": _database_url(),
                "ATP_DATA_DIR": str(data_dir),
                "ATP_CELERY_QUEUE": queue,
                "ATP_CELERY_EAGER": "false",
                "ATP_AUDIT_SEAL_SECONDS": "10",
                "PYTHONUNBUFFERED": "1",
            }
        )

    def start(self, name: str, *args: str) -> None:
        log = open(self.data_dir / f"{name}.log", "w")  # noqa: SIM115 - the process owns it
        self.processes[name] = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "atp_site", *args],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def logs(self) -> str:
        return "\n".join(
            f"--- {name} ---\n"
            + (self.data_dir / f"{name}.log").read_text(errors="replace")[-3000:]
            for name in self.processes
        )

    def check_alive(self) -> None:
        for name, process in self.processes.items():
            assert process.poll() is None, f"celery {name} exited\n{self.logs()}"

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)


@pytest.fixture
def celery_processes(tmp_path) -> Iterator[Celery]:
    if not settings.REDIS_URL:
        pytest.skip("needs Redis (REDIS_URL): a real worker and beat consume from it")
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (DATABASE_URL): the worker shares this test's database")
    suffix = uuid.uuid4().hex[:10]
    celery = Celery(tmp_path, queue=f"atp-test-jobs-{suffix}", node=f"jobs-test-{suffix}@127.0.0.1")
    celery.start(
        "worker",
        "worker",
        "--pool=solo",
        "--loglevel=INFO",
        "--without-gossip",
        "--without-mingle",
        "-n",
        celery.node,
        "-Q",
        celery.queue,
    )
    celery.start(
        "beat",
        "beat",
        "--loglevel=INFO",
        "--max-interval=1",
        f"--schedule={tmp_path / 'beat-schedule'}",
    )
    try:
        yield celery
    finally:
        celery.stop()


def _wait_for(celery: Celery, what: str, found: Callable[[], bool]) -> None:
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        if found():
            return
        celery.check_alive()
        time.sleep(0.25)
    pytest.fail(f"{what} within {DEADLINE:.0f} s\n{celery.logs()}")


def test_a_real_worker_and_beat_run_the_schedule_and_skip_a_locked_duty(celery_processes):
    celery = celery_processes
    from atp_site.celery import app

    # Beat sends the audit seal every 10 s on the queue; the worker runs and records it.
    _wait_for(
        celery,
        "no run of audit.seal_head sent by beat was recorded by the worker",
        lambda: ScheduledRun.objects.filter(
            task="audit.seal_head", status="succeeded", hostname=celery.node
        ).exists(),
    )
    run = ScheduledRun.objects.filter(task="audit.seal_head", hostname=celery.node).first()
    assert run.pid != os.getpid() and run.duration_ms is not None
    assert run.result["sealed"] in (True, False)

    # Another process (this one) holds the duty's lock: the worker skips the duty.
    lease = locks.lock_acquire("duty:audit.jobs_expire", 120)
    assert lease is not None and lease.shared
    try:
        app.send_task("audit.jobs_expire", queue=celery.queue)
        _wait_for(
            celery,
            "the worker did not skip a duty whose lock was held",
            lambda: ScheduledRun.objects.filter(
                task="audit.jobs_expire", status="skipped", hostname=celery.node
            ).exists(),
        )
    finally:
        locks.lock_release(lease)

    # Released: the next run runs.
    app.send_task("audit.jobs_expire", queue=celery.queue)
    _wait_for(
        celery,
        "the worker did not run the duty once its lock was free",
        lambda: ScheduledRun.objects.filter(
            task="audit.jobs_expire", status="succeeded", hostname=celery.node
        ).exists(),
    )
    celery.check_alive()
