"""The database guards the audit tables, on SQLite and PostgreSQL, with one escape."""

from __future__ import annotations

import pytest
from django.core.management.color import no_style
from django.db import DatabaseError, connection, transaction

from apps.audit import chain
from apps.audit.models import AuditChainHead, AuditEvent
from apps.audit.services import audit_record

pytestmark = pytest.mark.django_db

AUDIT_TABLES = ["audit_auditevent", "audit_auditchainhead", "audit_auditsignedhead"]


def record(n: int) -> list[AuditEvent]:
    return [audit_record(event_type="test.event", action="write", data={"i": i}) for i in range(n)]


def refused(statement: str, params: list | None = None) -> str:
    """Run `statement` in a savepoint and return the database's refusal."""
    with (
        pytest.raises(DatabaseError) as info,
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(statement, params)
    return str(info.value)


def test_events_cannot_be_updated_or_deleted():
    record(2)
    assert "append-only" in refused("UPDATE audit_auditevent SET action = 'x' WHERE sequence = 1")
    assert "append-only" in refused("DELETE FROM audit_auditevent WHERE sequence = 2")
    with pytest.raises(DatabaseError), transaction.atomic():
        AuditEvent.objects.filter(sequence=2).delete()
    assert AuditEvent.objects.count() == 2


def test_events_are_never_updated_even_inside_the_escape():
    from apps.audit.guards import audit_escape

    record(1)
    with pytest.raises(DatabaseError), audit_escape():
        AuditEvent.objects.filter(sequence=1).update(action="x")


def test_the_escape_lets_deletes_through_for_its_block_only():
    from apps.audit.guards import audit_escape

    record(3)
    with audit_escape():
        AuditEvent.objects.filter(sequence=3).delete()
    assert "append-only" in refused("DELETE FROM audit_auditevent WHERE sequence = 2")
    with audit_escape(), audit_escape():
        pass  # nested escapes close cleanly
    assert "append-only" in refused("DELETE FROM audit_auditevent WHERE sequence = 2")


def test_an_escape_that_fails_is_rolled_back_with_its_block():
    from apps.audit.guards import audit_escape

    record(2)
    with pytest.raises(RuntimeError), audit_escape():
        AuditEvent.objects.filter(sequence=2).delete()
        raise RuntimeError("the purge failed")
    assert AuditEvent.objects.count() == 2
    assert "append-only" in refused("DELETE FROM audit_auditevent WHERE sequence = 2")


def test_the_chain_head_only_moves_forward():
    events = record(3)
    head = "UPDATE audit_auditchainhead SET sequence = %s, hash = %s WHERE id = 1"
    assert "only moves forward" in refused(head, [1, events[0].hash])
    assert "only moves forward" in refused(head, [3, "f" * 64])  # same position, other hash
    assert "only moves forward" in refused("DELETE FROM audit_auditchainhead")
    record(1)  # appends still move it
    assert AuditChainHead.objects.get().sequence == 4
    from apps.audit.guards import audit_escape

    with audit_escape():
        AuditChainHead.objects.filter(pk=1).update(sequence=0, hash=chain.GENESIS_HASH)
    assert AuditChainHead.objects.get().sequence == 0


def test_signed_heads_cannot_be_changed_or_deleted(settings):
    from apps.audit.guards import audit_escape
    from apps.audit.models import AuditSignedHead
    from apps.audit.sealing import audit_head_seal

    record(2)
    row = audit_head_seal(reason="sealed")
    assert "append-only" in refused(
        "UPDATE audit_auditsignedhead SET sequence = 99 WHERE id = %s", [row.pk]
    )
    assert "append-only" in refused("DELETE FROM audit_auditsignedhead")
    with audit_escape():
        AuditSignedHead.objects.all().delete()
    assert not AuditSignedHead.objects.exists()


@pytest.mark.postgres
@pytest.mark.skipif(connection.vendor != "postgresql", reason="TRUNCATE is PostgreSQL's")
@pytest.mark.parametrize("table", AUDIT_TABLES)
def test_postgres_rejects_truncate_outside_the_escape(table):
    from apps.audit.guards import audit_escape
    from apps.audit.sealing import audit_head_seal

    record(2)
    if table == "audit_auditsignedhead":
        audit_head_seal(reason="sealed")
    assert "append-only" in refused(f"TRUNCATE {table} CASCADE")
    with audit_escape(), connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {table} CASCADE")


@pytest.mark.django_db(transaction=True)
def test_djangos_table_flush_needs_the_escape():
    """The test suite's flush (TRUNCATE on PostgreSQL, DELETE on SQLite) is refused by the
    guards as it is, and goes through inside the escape, which is how tests/conftest.py
    runs it."""
    record(2)
    sql = connection.ops.sql_flush(no_style(), AUDIT_TABLES)
    # The statements in one transaction, as Django's flush runs them, without the escape.
    with (
        pytest.raises(DatabaseError, match="append-only|only moves forward"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        for statement in sql:
            cursor.execute(statement)
    assert AuditEvent.objects.count() == 2
    connection.ops.execute_sql_flush(sql)
    assert AuditEvent.objects.count() == 0
