"""Indexes added to the big tables are built without blocking their writes on PostgreSQL."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.db import connection

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize(
    ("app", "migration", "index"),
    [
        ("routing", "0007", "reqlog_model_created"),
        ("audit", "0010", "audit_tenant_id"),
    ],
)
def test_big_table_indexes_are_built_concurrently_on_postgresql(app, migration, index):
    out = io.StringIO()
    call_command("sqlmigrate", app, migration, stdout=out)
    sql = out.getvalue()
    line = next(line for line in sql.splitlines() if f'"{index}"' in line)
    if connection.vendor == "postgresql":
        assert line.startswith("CREATE INDEX CONCURRENTLY"), line
        assert "BEGIN;" not in sql  # CONCURRENTLY cannot run in a transaction
    else:
        assert line.startswith("CREATE INDEX") and "CONCURRENTLY" not in line, line
