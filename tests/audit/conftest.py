"""Helpers for audit tests: write to the audit tables behind the application's back."""

from __future__ import annotations

import importlib
from contextlib import contextmanager

import pytest
from django.db import connection

GUARDS = importlib.import_module("apps.audit.migrations.0007_database_guards")
AUDIT_TABLES = ("audit_auditevent", "audit_auditchainhead", "audit_auditsignedhead")


@contextmanager
def tampering():
    """Let raw SQL change audit rows as a database superuser could: the guards are lifted.

    PostgreSQL disables the tables' triggers; SQLite, which cannot, drops them and
    creates them again afterwards.
    """
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            for table in AUDIT_TABLES:
                cursor.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")
        else:
            for name in GUARDS.SQLITE_TRIGGERS:
                cursor.execute(f"DROP TRIGGER IF EXISTS {name}")
        try:
            yield cursor
        finally:
            if connection.vendor == "postgresql":
                for table in AUDIT_TABLES:
                    cursor.execute(f"ALTER TABLE {table} ENABLE TRIGGER USER")
            else:
                for statement in GUARDS.SQLITE_CREATE:
                    cursor.execute(statement)


@pytest.fixture
def tamper():
    return tampering
