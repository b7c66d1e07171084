"""The database's guards on the audit tables, and the one escape that lifts them.

Triggers (apps/audit/migrations/0003 and 0007) keep the audit tables append-only:
events and signed heads are never updated, nothing is deleted or truncated, and the
chain-head row only moves forward. Inside `audit_escape()`, deletes (and on PostgreSQL
TRUNCATE) and a rewind of the head are let through for the rest of that block only.

The escape is the retention purge's (and the test suite's table flush's). It is not a
security boundary against whoever can run SQL as the application's database role: they
can open it too. What catches them is verification against heads signed outside the
database (docs/security.md).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connections, transaction

# PostgreSQL: a custom setting the triggers read with current_setting(..., true).
PG_SETTING = "atp.audit_purge"
# SQLite: a table the triggers check for a row. Triggers cannot read temporary tables, so
# it is a real one; the row is inserted and deleted in the same transaction and so never
# committed.
SQLITE_TABLE = "audit_purge_escape"


@contextmanager
def audit_escape(using: str = "default") -> Iterator[None]:
    """Lift the append-only guards for the block, inside one transaction.

    If the block raises, the transaction (or savepoint) rolls back and takes the escape
    with it: SET LOCAL is undone with its savepoint, the SQLite row with its insert.
    """
    connection = connections[using]
    with transaction.atomic(using=using):
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute("SELECT current_setting(%s, true)", [PG_SETTING])
                before = cursor.fetchone()[0] or "off"
                cursor.execute("SELECT set_config(%s, 'on', true)", [PG_SETTING])
            elif connection.vendor == "sqlite":
                cursor.execute(f"INSERT INTO {SQLITE_TABLE} DEFAULT VALUES")
                row = cursor.lastrowid
        yield
        with connection.cursor() as cursor:
            # Closed again for the rest of an enclosing transaction (nested escapes keep
            # the outer one open).
            if connection.vendor == "postgresql":
                cursor.execute("SELECT set_config(%s, %s, true)", [PG_SETTING, before])
            elif connection.vendor == "sqlite":
                cursor.execute(f"DELETE FROM {SQLITE_TABLE} WHERE id = %s", [row])
