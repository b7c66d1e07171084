"""The base class of every Celery task of ATP: periodic duties are locked, recorded, retried.

A task named in the beat schedule (atp_site.celery) is a periodic duty. Each call of one:

- takes a lock named after the task for the task's time limit (atp_site.lib.locks: a Redis
  key shared by every worker, beat and web process; in process when embedded). A call that
  finds it held is recorded as `skipped` and does nothing, so two workers (or a retry and
  the next scheduled run) never run one duty at once;
- records its run (apps.audit.scheduled): started, finished, status, duration, attempt, a
  summary of the result, the error;
- on failure logs an error, appends a `job.failed` audit event and, in a worker, retries
  with exponential backoff and jitter (30 s doubling up to 10 minutes, the task's
  `max_retries`, 3 by default) when the retry comes before the next scheduled run and the
  error is not one of ATP's own marked not retryable (an invalid price catalog). An eager
  call (the embedded schedule, tests, a direct call) raises instead: the embedded schedule
  tries again at the next due time.

Every other task (user-started jobs, notifications) runs exactly as Celery runs it.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
import time
from typing import Any

from celery import Task as CeleryTask
from celery.exceptions import Retry

logger = logging.getLogger(__name__)

RETRY_BASE_SECONDS = 30
RETRY_MAX_SECONDS = 600
DEFAULT_TIME_LIMIT = 300

# The duties this thread is running: a duty calling itself again (an eager retry) runs
# inside the outer call's lock and record.
_running = threading.local()


def retry_countdown(retries: int, *, rng: random.Random | None = None) -> int:
    """Seconds before retry number `retries + 1`: 30 s doubling up to 10 minutes, with
    jitter (between half and all of it) so failed duties of many workers do not retry at
    once."""
    ceiling = min(RETRY_MAX_SECONDS, RETRY_BASE_SECONDS * 2 ** max(0, retries))
    draw = (rng or random).uniform(0, ceiling / 2)
    return max(1, int(ceiling / 2 + draw))


def schedule_entry(app: Any, task_name: str) -> Any | None:
    """The beat schedule's entry for `task_name` (its schedule), or None: not a duty."""
    for spec in (app.conf.beat_schedule or {}).values():
        if spec.get("task") == task_name:
            return spec["schedule"]
    return None


def seconds_until_next(app: Any, schedule: Any) -> float | None:
    """Seconds from now until the duty is due again (None when unknown)."""
    from celery.schedules import schedule as every

    if isinstance(schedule, int | float):
        return float(schedule)
    try:
        if isinstance(schedule, every):
            return schedule.run_every.total_seconds()
        schedule.app = app
        return schedule.remaining_estimate(app.now()).total_seconds()
    except Exception:
        return None


class Task(CeleryTask):
    """Celery's Task; periodic duties get the lock, the run record and the retries."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        schedule = schedule_entry(self.app, self.name)
        held = getattr(_running, "names", None)
        if held is None:
            held = _running.names = set()
        if schedule is None or self.name in held:
            return self._invoke(args, kwargs)
        held.add(self.name)
        try:
            return self._run_duty(schedule, args, kwargs)
        finally:
            held.discard(self.name)

    def _invoke(self, args: tuple, kwargs: dict) -> Any:
        """Run the body. Inside Celery's tracer (a worker, `apply`) the request is already
        pushed and must stay the body's `self.request` (its id, retries, eagerness), so the
        body is called as Celery calls one without a custom __call__; a direct call pushes
        its own, as Celery's __call__ does."""
        if self.request_stack.top is None:
            return super().__call__(*args, **kwargs)
        return self.run(*args, **kwargs)

    # --- the duty's run ---------------------------------------------------------------------

    def duty_time_limit(self) -> float:
        """The lock's lifetime: this call's hard time limit, the task's, or the app's."""
        limits = self.request.timelimit or (None, None)
        return float(
            limits[0] or self.time_limit or self.app.conf.task_time_limit or DEFAULT_TIME_LIMIT
        )

    def _is_eager(self) -> bool:
        request = self.request
        return bool(request.is_eager or request.called_directly)

    def _where(self) -> dict[str, Any]:
        request = self.request
        return {
            "attempt": (request.retries or 0) + 1,
            "task_id": request.id or "",
            "hostname": request.hostname or socket.gethostname(),
            "pid": os.getpid(),
        }

    def _run_duty(self, schedule: Any, args: tuple, kwargs: dict) -> Any:
        from apps.audit import scheduled
        from atp_site.lib.locks import lock_acquire, lock_release

        where = self._where()
        lease = lock_acquire(f"duty:{self.name}", self.duty_time_limit())
        if lease is None:
            logger.info("periodic job %s skipped: another run is in progress", self.name)
            scheduled.run_skipped(task=self.name, **where)
            return {"skipped": True, "reason": "another run of this job is in progress"}
        try:
            run = scheduled.run_started(task=self.name, **where)
            started = time.monotonic()
            try:
                result = self._invoke(args, kwargs)
            except Retry as retry:  # the task scheduled its own retry
                cause = retry.exc if isinstance(retry.exc, BaseException) else retry
                when = retry.when if isinstance(retry.when, int | float) else None
                self._failed(run, cause, started, where, retry_in=when)
                raise
            except Exception as exc:
                retry_in = None if self._is_eager() else self._retry_in(schedule, exc)
                self._failed(run, exc, started, where, retry_in=retry_in)
                if retry_in is None:
                    raise
                raise self.retry(exc=exc, countdown=retry_in, expires=None) from exc
            scheduled.run_succeeded(run, result=result, duration_ms=_elapsed_ms(started))
            return result
        finally:
            lock_release(lease)

    def _retry_in(self, schedule: Any, exc: BaseException) -> int | None:
        """Seconds until a retry, or None: the error says retrying will not help (a project
        error not marked `retryable`, atp_site.lib.errors), no retries are left, or the next
        scheduled run comes first (it does the same work)."""
        if getattr(exc, "retryable", True) is False:
            return None
        retries = self.request.retries or 0
        if self.max_retries is not None and retries >= self.max_retries:
            return None
        countdown = retry_countdown(retries)
        until_next = seconds_until_next(self.app, schedule)
        if until_next is not None and countdown >= until_next:
            return None
        return countdown

    def _failed(
        self,
        run: Any,
        exc: BaseException,
        started: float,
        where: dict[str, Any],
        *,
        retry_in: int | None,
    ) -> None:
        from apps.audit import scheduled

        then = f"; retried in {retry_in} s" if retry_in is not None else ""
        logger.error(
            "periodic job %s failed (attempt %d)%s",
            self.name,
            where["attempt"],
            then,
            exc_info=(type(exc), exc, exc.__traceback__),
        )
        scheduled.run_failed(
            run,
            task=self.name,
            exc=exc,
            duration_ms=_elapsed_ms(started),
            attempt=where["attempt"],
            retry_in=retry_in,
        )


def _elapsed_ms(started: float) -> int:
    return max(0, int((time.monotonic() - started) * 1000))
