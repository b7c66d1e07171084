"""Purging the start of the chain leaves a signed checkpoint; what remains still verifies."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.audit.services import (
    PendingEvent,
    audit_append,
    audit_purge_expired,
    audit_purge_through,
    audit_record,
)
from apps.audit.verify import verify_chain

pytestmark = pytest.mark.django_db


def record(n: int, **fields) -> list[AuditEvent]:
    return [
        audit_record(event_type="test.event", action="write", data={"i": i}, **fields)
        for i in range(n)
    ]


def test_purged_prefix_is_replaced_by_a_checkpoint_and_the_rest_verifies():
    events = record(6)
    report = audit_purge_through(sequence=3, reason="retention")
    assert report.purged == 3 and report.first_sequence == 4
    remaining = list(AuditEvent.objects.values_list("sequence", flat=True))
    assert remaining == [4, 5, 6, 7]
    checkpoint = report.checkpoint
    assert checkpoint.sequence == 7 and checkpoint.event_type == "audit.checkpoint"
    assert checkpoint.data["anchor_hash"] == events[2].hash
    assert checkpoint.data["purged_through"] == 3
    result = verify_chain()
    assert result.ok, result.problem
    assert result.checked == 4


def test_two_purges_chain_their_checkpoints():
    record(4)
    audit_purge_through(sequence=2, reason="retention")
    record(2)
    audit_purge_through(sequence=5, reason="retention")
    assert verify_chain().ok


def test_deleting_the_start_without_a_checkpoint_is_detected(tamper):
    record(5)
    with tamper() as cursor:
        cursor.execute("DELETE FROM audit_auditevent WHERE sequence <= 2")
    problem = verify_chain().problem
    assert (problem.kind, problem.sequence) == ("deleted", 3)


def test_a_forged_checkpoint_anchor_is_detected(tamper):
    record(5)
    report = audit_purge_through(sequence=2, reason="retention")
    with tamper() as cursor:
        cursor.execute(
            "UPDATE audit_auditevent SET data = %s WHERE sequence = %s",
            [
                '{"first_sequence": 3, "anchor_hash": "' + "0" * 64 + '"}',
                report.checkpoint.sequence,
            ],
        )
    assert not verify_chain().ok


def test_tampering_after_a_purge_is_still_detected(tamper):
    record(6)
    audit_purge_through(sequence=2, reason="retention")
    with tamper() as cursor:
        cursor.execute("DELETE FROM audit_auditevent WHERE sequence = 4")
    assert verify_chain().problem.kind == "deleted"


def test_only_the_expired_prefix_is_purged():
    now = timezone.now()
    long_ago = now - timedelta(days=400)
    audit_append(
        [
            PendingEvent(event_type="test.event", action="write", occurred_at=long_ago)
            for _ in range(3)
        ]
        + [
            PendingEvent(
                event_type="test.event", action="write", occurred_at=long_ago, retention_days=3650
            )
        ]
    )
    record(2)
    report = audit_purge_expired(now=now, default_days=365)
    assert report.purged == 3 and report.first_sequence == 4
    assert verify_chain().ok
    assert audit_purge_expired(now=now, default_days=365).purged == 0
