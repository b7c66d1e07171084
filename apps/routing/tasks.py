"""Periodic routing jobs."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="routing.persist_learning", time_limit=300, soft_time_limit=240)
def persist_learning_task() -> dict:
    """Every few minutes: copy the bandit statistics and task clusters to the database."""
    from apps.routing.engine.learning import learning_persist

    return learning_persist()
