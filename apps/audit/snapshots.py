"""Plain, JSON-safe pictures of model rows for the before/after of audit events."""

from __future__ import annotations

import datetime
import uuid
from decimal import Decimal
from typing import Any

from django.db import models

from apps.audit.models import AuditEvent
from apps.audit.services import audit_record

# Stored secrets and their digests: the audit log never needs them, so they are left out
# rather than relying on masking by name alone.
EXCLUDED = frozenset({"key_hash", "token_hash", "api_key_encrypted", "password"})


def _plain(value: Any) -> Any:
    if isinstance(value, datetime.datetime | datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, Decimal):
        # Normalised so 1.0 given and 1.000000 read back compare as the same price.
        return format(value.normalize(), "f")
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def snapshot_of(instance: models.Model, *, exclude: frozenset[str] = frozenset()) -> dict:
    """Every concrete field of `instance` by name, foreign keys as the related id.

    Timestamps Django maintains itself (`updated_at`) are kept; callers comparing two
    snapshots for a change use `changed_fields`, which ignores them.
    """
    data: dict[str, Any] = {}
    for field in instance._meta.concrete_fields:
        if field.name in EXCLUDED or field.name in exclude:
            continue
        if field.is_relation:
            data[field.name] = _plain(getattr(instance, field.attname))
        else:
            data[field.name] = _plain(field.value_from_object(instance))
    return data


# Fields that change on every save and say nothing about what the actor changed.
VOLATILE = frozenset({"updated_at"})


def changed_fields(before: dict, after: dict) -> list[str]:
    """The names whose values differ between two snapshots, ignoring bookkeeping fields."""
    names = (set(before) | set(after)) - VOLATILE
    return sorted(n for n in names if before.get(n) != after.get(n))


def stored_snapshot(instance: models.Model) -> dict | None:
    """The snapshot of `instance`'s row as the database holds it now.

    Forms and serializers assign new values to the instance before the service runs, so
    the instance in hand cannot tell what the row was; the database can.
    """
    if instance.pk is None:
        return None
    stored = type(instance)._default_manager.filter(pk=instance.pk).first()
    return snapshot_of(stored) if stored is not None else None


# The verb recorded as an event's `action`, from the past tense ending its event type.
ACTIONS = {
    "created": "create",
    "updated": "update",
    "deleted": "delete",
    "revoked": "revoke",
    "rotated": "rotate",
}


def audit_change(
    *,
    event_type: str,
    resource_id: Any,
    before: dict | None = None,
    after: dict | None = None,
    tenant_id: Any = None,
    data: dict | None = None,
) -> AuditEvent | None:
    """Record a change to the resource named by the event type's prefix and `resource_id`.

    An update that changed nothing records nothing. Call it inside the transaction of the change, after the write, so the event commits or
    rolls back with it.
    """
    payload = dict(data or {})
    if before is not None and after is not None:
        changed = changed_fields(before, after)
        if not changed:
            return None
        payload.setdefault("changed", changed)
    resource_type, _, verb = event_type.rpartition(".")
    return audit_record(
        event_type=event_type,
        action=ACTIONS.get(verb, verb),
        tenant_id=tenant_id,
        resource_type=resource_type,
        resource_id=str(resource_id),
        data=payload,
        before=before,
        after=after,
    )
