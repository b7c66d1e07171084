"""Helpers for audit tests: write to the audit table behind the application's back."""

from __future__ import annotations

from contextlib import contextmanager

import pytest
from django.db import connection


@contextmanager
def tampering():
    """Let raw SQL change audit rows: on PostgreSQL the append-only trigger is lifted."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("ALTER TABLE audit_auditevent DISABLE TRIGGER audit_event_append_only")
        try:
            yield cursor
        finally:
            if connection.vendor == "postgresql":
                cursor.execute(
                    "ALTER TABLE audit_auditevent ENABLE TRIGGER audit_event_append_only"
                )


@pytest.fixture
def tamper():
    return tampering
