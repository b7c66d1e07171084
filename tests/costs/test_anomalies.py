"""Spend anomalies: a spike is flagged once, audited and notified once; steady, cyclic or
young histories are left alone."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from apps.audit.models import AuditEvent
from apps.costs.anomalies import (
    Z_THRESHOLD,
    anomalies_detect,
    robust_score,
    spend_anomaly_score,
)
from apps.costs.models import Notifier, SpendAnomaly, UsageRecord, UsageRollup
from apps.costs.rollups import rollup_run
from apps.costs.tasks import detect_anomalies

D = Decimal
NOW = datetime(2026, 11, 20, 10, 40, tzinfo=UTC)  # 40 minutes into the 10:00 hour
HOUR = timedelta(hours=1)
THIS_HOUR = NOW.replace(minute=0)


# --- the rule -------------------------------------------------------------------------------


def test_a_flat_history_flags_nothing_at_its_usual_level():
    assert spend_anomaly_score(10.0, [10.0] * 14) is None
    # A 30% rise over perfectly steady spend is within the 10%-of-median scale floor.
    assert spend_anomaly_score(13.0, [10.0] * 14) is None


def test_a_spike_over_a_flat_history_is_flagged():
    score = spend_anomaly_score(50.0, [10.0] * 14)
    assert score is not None
    assert score.median == 10.0 and score.z == pytest.approx(40.0)


def test_the_score_is_robust_to_a_past_outlier():
    history = [10.0, 11.0, 9.0, 10.5, 9.5, 10.0, 200.0, 10.2, 9.8, 10.1]
    score = robust_score(14.0, history)
    # The 200 moves neither the median nor the MAD much.
    assert score.median == pytest.approx(10.05)
    assert score.z > Z_THRESHOLD
    assert spend_anomaly_score(10.8, history) is None


def test_too_little_history_small_excess_or_a_drop_are_not_anomalies():
    assert spend_anomaly_score(50.0, [10.0] * 6) is None  # under a week of history
    assert spend_anomaly_score(0.5, [0.01] * 14) is None  # fifty times, but 49 cents
    assert spend_anomaly_score(0.0, [10.0] * 14) is None  # spend dropped


# --- detection on the rollups ---------------------------------------------------------------


def spend_at(hour: datetime, *, day=10.0, night=0.5) -> float:
    """A tenant busy from 08:00 to 18:00 UTC."""
    return day if 8 <= hour.hour < 18 else night


def fill(tenant, *, days=14, now_spend=None, seed=3, **kwargs):
    """Hourly rollups for `days` days before THIS_HOUR (with some noise), and THIS_HOUR."""
    rng = random.Random(seed)
    rows = []
    hour = THIS_HOUR - timedelta(days=days)
    while hour < THIS_HOUR:
        value = spend_at(hour, **kwargs) * rng.uniform(0.85, 1.15)
        rows.append((hour, value))
        hour += HOUR
    rows.append((THIS_HOUR, spend_at(THIS_HOUR, **kwargs) if now_spend is None else now_spend))
    UsageRollup.objects.bulk_create(
        UsageRollup(
            grain="hour",
            bucket_start=start,
            tenant_id=tenant.pk,
            model="m",
            requests=1,
            cost_usd=D(str(round(value, 6))),
        )
        for start, value in rows
    )


@pytest.fixture
def acme(tenant_factory):
    return tenant_factory(slug="acme")


@pytest.fixture
def notifiers(acme, tenant_factory):
    return [
        Notifier.objects.create(
            name="acme-ops", kind="email", target="ops@acme.example", tenant=acme
        ),
        Notifier.objects.create(name="platform", kind="email", target="noc@atp.example"),
        Notifier.objects.create(
            name="other", kind="email", target="x@else.example", tenant=tenant_factory()
        ),
    ]


@pytest.mark.django_db
def test_a_daily_cycle_raises_no_alert(acme):
    fill(acme)  # 10:00 is busy every day: the busy hour is compared with past busy hours
    assert anomalies_detect(now=NOW) == []


@pytest.mark.django_db
def test_a_spike_is_recorded_audited_and_notified_once(
    acme, notifiers, mailoutbox, django_capture_on_commit_callbacks, eager_jobs
):
    fill(acme, now_spend=80.0)
    with django_capture_on_commit_callbacks(execute=True):
        found = anomalies_detect(now=NOW)
    assert len(found) == 1
    anomaly = found[0]
    assert (anomaly.tenant_id, anomaly.hour_start) == (acme.pk, THIS_HOUR)
    assert anomaly.spent_usd == D("80")
    assert D("8.5") < anomaly.median_usd < D("11.5")
    assert anomaly.score > Z_THRESHOLD and anomaly.history_days == 14

    event = AuditEvent.objects.get(event_type="budget.spend_anomaly")
    assert event.tenant_id == acme.pk and event.resource_id == str(anomaly.pk)
    assert event.data["spent_usd"] == "80.00000000"
    # The tenant's notifier and the platform's, not another tenant's.
    assert sorted(m.to[0] for m in mailoutbox) == ["noc@atp.example", "ops@acme.example"]
    assert "acme" in mailoutbox[0].subject and "$80.00000000" in mailoutbox[0].body
    anomaly.refresh_from_db()
    assert anomaly.notified_at is not None and len(anomaly.delivered_to) == 2

    # Later runs in the same hour (and the spend growing) alert no more.
    UsageRollup.objects.filter(bucket_start=THIS_HOUR).update(cost_usd=D("120"))
    with django_capture_on_commit_callbacks(execute=True):
        assert anomalies_detect(now=NOW + timedelta(minutes=15)) == []
        assert detect_anomalies.apply().get() == {"anomalies": 0}
    assert SpendAnomaly.objects.count() == 1
    assert AuditEvent.objects.filter(event_type="budget.spend_anomaly").count() == 1
    assert len(mailoutbox) == 2


@pytest.mark.django_db
def test_a_spike_in_an_hour_that_just_ended_is_still_caught(acme):
    fill(acme)
    UsageRollup.objects.filter(bucket_start=THIS_HOUR - HOUR).update(cost_usd=D("90"))
    found = anomalies_detect(now=NOW)
    assert [a.hour_start for a in found] == [THIS_HOUR - HOUR]


@pytest.mark.django_db
def test_a_tenant_with_less_than_a_week_of_history_is_not_judged(acme):
    fill(acme, days=5, now_spend=500.0)
    assert anomalies_detect(now=NOW) == []


@pytest.mark.django_db
def test_from_the_ledger_through_the_rollups_to_an_anomaly(acme):
    rows = []
    for day in range(1, 11):
        rows.append(
            UsageRecord(
                request_id=f"r{day}",
                created_at=THIS_HOUR - timedelta(days=day) + timedelta(minutes=5),
                tenant_id=acme.pk,
                cost_usd=D("2"),
            )
        )
    rows += [
        UsageRecord(
            request_id=f"now{i}",
            created_at=THIS_HOUR + timedelta(minutes=i),
            tenant_id=acme.pk,
            cost_usd=D("5"),
        )
        for i in range(6)
    ]
    UsageRecord.objects.bulk_create(rows)
    rollup_run(now=NOW)
    found = anomalies_detect(now=NOW)
    assert len(found) == 1 and found[0].spent_usd == D("30")
    assert found[0].history_days == 10
