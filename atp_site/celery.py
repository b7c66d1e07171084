"""The Celery app; in the embedded setup tasks run in-process (eager)."""

from __future__ import annotations

import os

from celery import Celery, signals
from celery.schedules import crontab
from django.conf import settings

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "atp_site.settings")

# Every task's base class (atp_site.duties): the beat schedule's tasks are locked against
# running twice at once, recorded run by run and retried with backoff.
app = Celery("atp", task_cls="atp_site.duties:Task")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(
    lambda: [
        "apps.tenants",
        "apps.providers",
        "apps.routing",
        "apps.policies",
        "apps.costs",
        "apps.audit",
    ]
)


@signals.worker_init.connect
@signals.beat_init.connect
def _refuse_without_secrets(**kwargs) -> None:
    """A worker or beat of a configured deployment does not start without its secrets."""
    from atp_site.lib.startup import celery_startup_check

    celery_startup_check(**kwargs)


# The periodic schedule lives here, one entry per job with its cadence and purpose.
app.conf.beat_schedule = {
    # Nightly at 03:17 UTC: walk the audit chain; a break is logged and audited as an alert.
    "audit-verify-chain": {
        "task": "audit.verify_chain",
        "schedule": crontab(hour=3, minute=17),
    },
    # Every ATP_AUDIT_SEAL_SECONDS (5 minutes by default): sign the audit chain's end into
    # the heads file outside the database, so events cannot be cut off the end unseen.
    "audit-seal-head": {
        "task": "audit.seal_head",
        "schedule": float(settings.ATP_AUDIT_SEAL_SECONDS),
        "options": {"expires": max(30.0, settings.ATP_AUDIT_SEAL_SECONDS - 5)},
    },
    # Daily at 01:47 UTC, before the purge: back up the database with the audit chain's
    # signed heads into ATP_BACKUP_DIR and rotate old backups (docs/backups.md).
    "audit-backup": {
        "task": "audit.backup",
        "schedule": crontab(hour=1, minute=47),
    },
    # Daily at 02:41 UTC, before the verification: purge what retention policies expired.
    "audit-retention-run": {
        "task": "audit.retention_run",
        "schedule": crontab(hour=2, minute=41),
    },
    # Hourly: delete background-job results older than ATP_JOB_RESULT_HOURS (apps.audit.jobs).
    "audit-jobs-expire": {
        "task": "audit.jobs_expire",
        "schedule": 3600.0,
        "options": {"expires": 3000},
    },
    # Every minute: probe each enabled provider; results feed the circuit breakers.
    "providers-health-check": {
        "task": "providers.health_check",
        "schedule": 60.0,
        "options": {"expires": 55},
    },
    # Every 5 minutes: copy the routing bandit statistics and task clusters the serving
    # processes share to BanditArm / LearnedState, so a restart or Redis flush forgets nothing.
    "routing-persist-learning": {
        "task": "routing.persist_learning",
        "schedule": 300.0,
    },
    # Every 5 minutes: roll the usage ledger up into hourly and daily buckets (what the
    # spend pages and GET /api/v1/usage read); late ledger rows re-roll their hours.
    "costs-rollup-usage": {
        "task": "costs.rollup_usage",
        "schedule": 300.0,
        "options": {"expires": 290},
    },
    # Every 15 minutes, from the rollups: alert on tenants whose spend this hour is far
    # above the same hour on past days (apps.costs.anomalies); once per tenant and hour.
    "costs-detect-anomalies": {
        "task": "costs.detect_anomalies",
        "schedule": 900.0,
        "options": {"expires": 850},
    },
    # Daily at 04:23 UTC: read the price catalog (ATP_PRICE_CATALOG), record changed prices,
    # flag large changes, put due price versions in force and warn of stale prices.
    "costs-refresh-prices": {
        "task": "costs.refresh_prices",
        "schedule": crontab(hour=4, minute=23),
    },
}
