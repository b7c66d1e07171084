"""The audit chain: appends link up, verification finds every kind of tampering."""

from __future__ import annotations

import io
import uuid
from datetime import UTC, datetime, timedelta, timezone

import orjson
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import IntegrityError, connection, transaction

from apps.audit import chain
from apps.audit.models import AuditChainHead, AuditEvent
from apps.audit.services import audit_record
from apps.audit.verify import verify_chain

pytestmark = pytest.mark.django_db


def record(n: int) -> list[AuditEvent]:
    return [
        audit_record(
            event_type="tenant.updated",
            action="update",
            resource_type="tenant",
            resource_id=str(i),
            data={"i": i},
            before={"name": f"old {i}"},
            after={"name": f"new {i}"},
        )
        for i in range(n)
    ]


def test_events_form_one_linked_signed_chain():
    events = record(5)
    assert [e.sequence for e in events] == [1, 2, 3, 4, 5]
    assert events[0].prev_hash == chain.GENESIS_HASH
    assert all(b.prev_hash == a.hash for a, b in zip(events, events[1:], strict=False))
    head = AuditChainHead.objects.get()
    assert (head.sequence, head.hash) == (5, events[-1].hash)
    result = verify_chain()
    assert result.ok and result.checked == 5
    assert result.head_hash == events[-1].hash and result.head_signature == events[-1].signature


def test_an_empty_chain_verifies():
    result = verify_chain()
    assert result.ok and result.checked == 0 and result.head_hash == chain.GENESIS_HASH


def test_secrets_are_masked_before_hashing():
    event = audit_record(
        event_type="provider.updated",
        action="update",
        before={"api_key": "sk-live-123", "name": "x"},
        after={"api_key": "sk-live-456", "nested": {"password": "p", "ok": 1}},
        data={"authorization": "Bearer abc"},
    )
    event.refresh_from_db()
    assert event.before == {"api_key": "***", "name": "x"}
    assert event.after == {"api_key": "***", "nested": {"password": "***", "ok": 1}}
    assert event.data == {"authorization": "***"}
    assert verify_chain().ok


def test_an_event_rolls_back_with_the_change_it_records():
    record(1)
    with pytest.raises(RuntimeError), transaction.atomic():
        audit_record(event_type="tenant.deleted", action="delete")
        raise RuntimeError("the change failed")
    assert AuditEvent.objects.count() == 1
    assert AuditChainHead.objects.get().sequence == 1
    assert verify_chain().ok


def test_modified_event_is_detected(tamper):
    record(5)
    with tamper() as cursor:
        cursor.execute("UPDATE audit_auditevent SET outcome = 'denied' WHERE sequence = 3")
    problem = verify_chain().problem
    assert (problem.kind, problem.sequence) == ("modified", 3)


def test_modified_json_is_detected(tamper):
    record(5)
    event = AuditEvent.objects.get(sequence=2)
    with tamper() as cursor:
        cursor.execute(
            "UPDATE audit_auditevent SET after = %s WHERE sequence = 2",
            ['{"name": "forged"}'],
        )
    event.refresh_from_db()
    assert event.after == {"name": "forged"}
    assert verify_chain().problem.kind == "modified"


def test_deleted_event_is_detected(tamper):
    record(5)
    with tamper() as cursor:
        cursor.execute("DELETE FROM audit_auditevent WHERE sequence = 3")
    problem = verify_chain().problem
    assert (problem.kind, problem.sequence) == ("deleted", 4)


def test_deleted_tail_is_detected(tamper):
    record(5)
    with tamper() as cursor:
        cursor.execute("DELETE FROM audit_auditevent WHERE sequence >= 4")
    assert verify_chain().problem.kind == "deleted"


def _forge_after(previous: AuditEvent, sequence: int, *, sign: bool = True) -> dict:
    fields = {name: getattr(previous, name) for name in chain.HASHED_FIELDS}
    fields.update(
        event_id=uuid.uuid4(), prev_hash=previous.hash, action="forged", data={"forged": True}
    )
    digest = chain.event_hash(fields)
    key_id, signature = chain.sign(digest) if sign else ("k1", "0" * 64)
    return {
        **fields,
        "sequence": sequence,
        "hash": digest,
        "key_id": key_id,
        "signature": signature,
    }


def test_inserted_event_is_detected_even_with_a_valid_signature(tamper):
    events = record(5)
    forged = _forge_after(events[1], 3)
    with tamper():
        # Make room at 3 by renumbering the rest, then insert a correctly signed event
        # that links to event 2: only the chain's structure gives it away.
        for event in reversed(events[2:]):
            AuditEvent.objects.filter(pk=event.pk).update(sequence=event.sequence + 1)
        AuditEvent.objects.bulk_create([AuditEvent(**forged)])
    problem = verify_chain().problem
    assert (problem.kind, problem.sequence) == ("inserted", 3)


def test_event_appended_behind_the_appenders_back_is_detected(tamper):
    events = record(3)
    with tamper():
        AuditEvent.objects.bulk_create([AuditEvent(**_forge_after(events[-1], 4))])
    assert verify_chain().problem.kind == "inserted"


def test_reordered_events_are_detected(tamper):
    events = record(5)
    with tamper():
        AuditEvent.objects.filter(pk=events[1].pk).update(sequence=100)
        AuditEvent.objects.filter(pk=events[2].pk).update(sequence=2)
        AuditEvent.objects.filter(pk=events[1].pk).update(sequence=3)
    problem = verify_chain().problem
    assert (problem.kind, problem.sequence) == ("reordered", 2)


def test_bad_signature_is_detected(tamper):
    record(4)
    with tamper() as cursor:
        cursor.execute("UPDATE audit_auditevent SET signature = %s WHERE sequence = 2", ["ab" * 32])
    problem = verify_chain().problem
    assert (problem.kind, problem.sequence) == ("bad_signature", 2)


def test_unknown_signing_key_is_a_bad_signature(tamper):
    record(2)
    with tamper() as cursor:
        cursor.execute("UPDATE audit_auditevent SET key_id = 'gone' WHERE sequence = 1")
    assert verify_chain().problem.kind == "bad_signature"


def test_rotated_signing_keys_keep_old_events_verifiable(settings):
    record(2)
    settings.ATP_AUDIT_SIGNING_KEYS = ["k2:new-secret", *settings.ATP_AUDIT_SIGNING_KEYS]
    newer = record(1)[0]
    assert newer.key_id == "k2"
    assert verify_chain().ok
    settings.ATP_AUDIT_SIGNING_KEYS = ["k2:new-secret"]
    # The events before the last verified checkpoint are checked again by a full walk only.
    assert verify_chain().ok
    assert verify_chain(full=True).problem.kind == "bad_signature"


def test_verify_command_reports_ok_and_broken(tamper):
    record(3)
    out = io.StringIO()
    call_command("audit_verify", stdout=out)
    assert out.getvalue().startswith("OK: 3 events")
    with tamper() as cursor:
        cursor.execute("UPDATE audit_auditevent SET action = 'x' WHERE sequence = 2")
    # The first run left a verified checkpoint at event 3: only a full walk looks behind it.
    call_command("audit_verify", stdout=io.StringIO())
    with pytest.raises(CommandError, match="BROKEN at event 2: modified") as info:
        call_command("audit_verify", "--full")
    assert info.value.returncode == 1


def test_verify_api_reports_the_head(admin_client):
    record(2)
    body = admin_client.get("/api/v1/audit/verify/").json()
    last = AuditEvent.objects.order_by("-sequence").first()
    assert body["status"] == "ok" and body["head_hash"] == last.hash
    assert body["head_sequence"] == last.sequence >= 2 and body["problem"] is None


def test_verify_api_needs_staff(client):
    assert client.get("/api/v1/audit/verify/").status_code in (401, 403)


def test_nightly_job_audits_a_broken_chain(tamper):
    from apps.audit.tasks import verify_chain_task

    record(3)
    with tamper() as cursor:
        cursor.execute("DELETE FROM audit_auditevent WHERE sequence = 2")
    result = verify_chain_task.apply().get()
    assert result["status"] == "broken"
    alert = AuditEvent.objects.get(event_type="audit.chain_broken")
    assert alert.outcome == "failure" and alert.data["kind"] == "deleted"


@pytest.mark.postgres
@pytest.mark.skipif(connection.vendor != "postgresql", reason="the trigger is PostgreSQL's")
def test_postgres_rejects_update_and_delete():
    record(2)
    for statement in (
        "UPDATE audit_auditevent SET action = 'x' WHERE sequence = 1",
        "DELETE FROM audit_auditevent WHERE sequence = 1",
    ):
        with (
            pytest.raises(Exception, match="append-only"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(statement)
    assert verify_chain().ok


def test_sequence_numbers_are_unique():
    event = record(1)[0]
    duplicate = {
        f.attname: getattr(event, f.attname)
        for f in AuditEvent._meta.concrete_fields
        if not f.primary_key
    }
    duplicate.update(event_id=uuid.uuid4(), hash="f" * 64)
    with pytest.raises(IntegrityError), transaction.atomic():
        AuditEvent.objects.create(**duplicate)


def test_event_ids_follow_the_sequence():
    # Time-ordered ids keep the unique index's inserts at its end (atp_site.lib.uuids).
    events = list(AuditEvent.objects.filter(pk__in=[e.pk for e in record(5)]).order_by("sequence"))
    assert all(e.event_id.version == 7 for e in events)
    assert [e.event_id for e in events] == sorted(e.event_id for e in events)


@pytest.mark.parametrize(
    "when",
    [
        datetime(2026, 12, 5, 0, 15, 3, 638007, tzinfo=UTC),
        datetime(2026, 12, 5, tzinfo=UTC),  # no microseconds
        datetime(2026, 12, 5, 1, tzinfo=timezone(timedelta(hours=1))),  # not UTC
        "2026-12-05T00:15:03.5+00:00",  # as text, as an export gives it back
        datetime(999, 1, 1, tzinfo=UTC),
        None,
    ],
    ids=str,
)
def test_canonical_form_is_the_normalised_fields_whatever_their_types(when):
    for event_id in (uuid.uuid4(), str(uuid.uuid4()), None):
        fields = {"occurred_at": when, "event_id": event_id, "tenant_id": uuid.uuid4().hex,
                  "data": {"b": 1, "a": [1, "x"]}, "actor": "api_key:1"}  # fmt: skip
        normalised = {
            name: chain._normalise(name, fields.get(name)) for name in chain.HASHED_FIELDS
        }
        assert chain.canonical(fields) == orjson.dumps(normalised, option=orjson.OPT_SORT_KEYS)
