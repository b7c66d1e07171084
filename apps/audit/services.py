"""Writing the audit log: append events to the chain, one at a time or in batches."""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

import orjson
from django.db import transaction
from django.utils import timezone

from apps.audit import chain
from apps.audit.context import AuditActor, current_actor
from apps.audit.guards import audit_escape
from apps.audit.models import AuditChainHead, AuditEvent
from atp_site.lib.bulk import RowInserter
from atp_site.lib.storable import clean_json
from atp_site.lib.uuids import uuid7_batch

MASK = "***"
# A field is secret when one of its words is one of these ("admin_token", "password",
# "client_secret") or it holds one of these word pairs ("api_key", "key_hash"). Whole
# words, so usage counters such as "input_tokens" stay readable.
SECRET_WORDS = frozenset(
    {
        "password",
        "passwd",
        "secret",
        "token",
        "credential",
        "credentials",
        "authorization",
        "cookie",
        "apikey",
        "encrypted",
        "ciphertext",
        "plaintext",
    }
)
SECRET_PAIRS = frozenset({("api", "key"), ("key", "hash"), ("private", "key"), ("access", "key")})
_WORDS = re.compile(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])")


@lru_cache(maxsize=4096)
def is_secret_name(name: str) -> bool:
    words = [w.lower() for w in _WORDS.findall(str(name))]
    if words and words[-1] == "env":
        return False  # the name of an environment variable holding a secret, not the secret
    if any(w in SECRET_WORDS for w in words):
        return True
    return any(pair in SECRET_PAIRS for pair in zip(words, words[1:], strict=False))


def mask_secrets(value: Any) -> Any:
    """A copy of `value` with every secret-looking field's value replaced by '***'."""
    if isinstance(value, Mapping):
        return {
            k: (MASK if is_secret_name(k) and v not in (None, "") else mask_secrets(v))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [mask_secrets(v) for v in value]
    return value


@dataclass(slots=True)
class PendingEvent:
    """An event not yet on the chain (what callers and the write-behind queue hold)."""

    event_type: str
    action: str
    outcome: str = AuditEvent.Outcome.SUCCESS
    tenant_id: str | uuid.UUID | None = None
    resource_type: str = ""
    resource_id: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    classification: str = "internal"
    retention_days: int | None = None
    occurred_at: datetime | None = None
    actor: AuditActor | None = None
    # Set by producers whose payload is built from known, secret-free, JSON-native fields
    # (the data plane), to skip the masking walk and the JSON normalisation.
    masked: bool = False


def _masked(value: Any, already: bool) -> Any:
    if value is None or already:
        return value
    return mask_secrets(value)


def _fields(
    pending: PendingEvent, sequence: int, prev_hash: str, event_id: uuid.UUID
) -> dict[str, Any]:
    actor = pending.actor or current_actor()
    return {
        "sequence": sequence,
        "event_id": event_id,
        "event_type": pending.event_type,
        "occurred_at": pending.occurred_at or timezone.now(),
        "tenant_id": uuid.UUID(str(pending.tenant_id)) if pending.tenant_id else None,
        "user_id": actor.user_id,
        "actor": actor.actor,
        "source": actor.source,
        "session_id": actor.session_id,
        "request_id": actor.request_id,
        "ip_address": actor.ip_address,
        "resource_type": pending.resource_type,
        "resource_id": str(pending.resource_id),
        "action": pending.action,
        "outcome": pending.outcome,
        "data": (pending.data or {}) if pending.masked else mask_secrets(pending.data or {}),
        "before": _masked(pending.before, pending.masked),
        "after": _masked(pending.after, pending.masked),
        "classification": pending.classification,
        "retention_days": pending.retention_days,
        "prev_hash": prev_hash,
    }


def _json_safe(value: Any) -> Any:
    """Round-trip through the canonical encoder so stored JSON equals what was hashed."""
    if value is None:
        return None
    try:
        return orjson.loads(orjson.dumps(value, default=str))
    except TypeError:  # lone surrogates, deep nesting, integers beyond 64 bits
        return orjson.loads(orjson.dumps(clean_json(value)))


def _storable(fields: dict[str, Any]) -> tuple[dict[str, Any], bytes]:
    """The event's fields as they will be stored, and their canonical serialisation.

    The hash must cover exactly what the database keeps, so values are made storable
    before hashing (atp_site.lib.storable): text cut to its column and cleared of NUL and
    lone surrogates here; JSON only when the canonical form shows a need (orjson refused
    a value, or it holds the NUL escape jsonb refuses), which costs nothing otherwise.
    """
    fields = _inserter.clean(fields, json=False)
    try:
        payload = chain.canonical(fields)
    except TypeError:
        payload = None
    if payload is None or (b"\\" in payload and b"\\u0000" in payload):
        for name in ("data", "before", "after"):
            if fields.get(name) is not None:
                fields[name] = clean_json(fields[name])
        payload = chain.canonical(fields)
    return fields, payload


_inserter = RowInserter("audit.AuditEvent")


def audit_append(events: Iterable[PendingEvent], *, returning: bool = True) -> list[AuditEvent]:
    """Append events to the chain in one transaction, in order.

    The chain head row is locked for the transaction, so appends from any number of
    threads and processes serialise into one gap-free sequence. Call it inside the
    transaction of the change being recorded, so the event commits (or not) with it.
    `returning=False` (the data plane's batches) skips building model instances and
    returns nothing.
    """
    pending = list(events)
    if not pending:
        return []
    with transaction.atomic():
        head = AuditChainHead.objects.select_for_update().get(pk=1)
        sequence, prev_hash = head.sequence, head.hash
        rows = []
        # Time-ordered ids: new events go to the unique index's last pages (atp_site.lib.uuids).
        for item, event_id in zip(pending, uuid7_batch(len(pending)), strict=True):
            sequence += 1
            fields = _fields(item, sequence, prev_hash, event_id)
            if not item.masked:
                # Trusted producers (masked=True) hand over JSON-native values already.
                for name in ("data", "before", "after"):
                    fields[name] = _json_safe(fields[name])
            fields, payload = _storable(fields)
            digest = hashlib.sha256(payload).hexdigest()  # chain.event_hash(fields)
            key_id, signature = chain.sign(digest)
            rows.append({**fields, "hash": digest, "key_id": key_id, "signature": signature})
            prev_hash = digest
        if returning:
            created = AuditEvent.objects.bulk_create([AuditEvent(**row) for row in rows])
        else:
            # Made storable by _storable (hash, key id and signature are short ASCII).
            _inserter.insert(rows, cleaned=True)
            created = []
        head.sequence, head.hash = sequence, prev_hash
        head.save(update_fields=["sequence", "hash"])
    return created


def audit_record(
    *,
    event_type: str,
    action: str,
    outcome: str = AuditEvent.Outcome.SUCCESS,
    tenant_id: str | uuid.UUID | None = None,
    resource_type: str = "",
    resource_id: str = "",
    data: dict[str, Any] | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    classification: str = "internal",
    retention_days: int | None = None,
    actor: AuditActor | None = None,
) -> AuditEvent:
    """Append one event (secrets in data/before/after masked) and return it."""
    return audit_append(
        [
            PendingEvent(
                event_type=event_type,
                action=action,
                outcome=outcome,
                tenant_id=tenant_id,
                resource_type=resource_type,
                resource_id=resource_id,
                data=data or {},
                before=before,
                after=after,
                classification=classification,
                retention_days=retention_days,
                actor=actor,
            )
        ]
    )[0]


@dataclass(frozen=True, slots=True)
class PurgeReport:
    purged: int
    first_sequence: int | None  # the chain's first event after the purge
    checkpoint: AuditEvent | None


def audit_purge_through(*, sequence: int, reason: str) -> PurgeReport:
    """Delete events 1..`sequence` (what is left of them) and record a signed checkpoint.

    Only a prefix of the chain can go, so what remains still verifies: the checkpoint,
    appended at the end like any event, carries the hash the first remaining event links
    to (`anchor_hash`) and that event's number, and the verifier starts from it.
    """
    with transaction.atomic():
        head = AuditChainHead.objects.select_for_update().get(pk=1)
        sequence = min(sequence, head.sequence)
        doomed = AuditEvent.objects.filter(sequence__lte=sequence)
        last = doomed.order_by("-sequence").first()
        if last is None:
            return PurgeReport(purged=0, first_sequence=None, checkpoint=None)
        first_purged = doomed.order_by("sequence").values_list("sequence", flat=True).first()
        # The database's append-only guards let the delete through for this block only.
        with audit_escape():
            purged, _ = doomed.delete()
        checkpoint = audit_record(
            event_type="audit.checkpoint",
            action="purge",
            resource_type="audit_chain",
            data={
                "first_sequence": last.sequence + 1,
                "anchor_hash": last.hash,
                "purged_from": first_purged,
                "purged_through": last.sequence,
                "purged_count": purged,
                "reason": reason,
            },
            classification="restricted",
        )
    return PurgeReport(purged=purged, first_sequence=last.sequence + 1, checkpoint=checkpoint)


def audit_purge_expired(
    *,
    now: datetime | None = None,
    default_days: int,
    days_for: Callable[[uuid.UUID | None, str], int] | None = None,
    min_days: int = 0,
) -> PurgeReport:
    """Purge the longest prefix of the chain whose events are all past retention.

    An event's retention is its own `retention_days`, else `days_for(tenant_id,
    classification)` (the retention policies), else `default_days`, and never less than
    `min_days` (the evidence floor). The prefix stops at the first event still to be kept,
    so a long-lived event protects the events after it until it expires too.
    """
    now = now or timezone.now()
    through = 0
    rows = AuditEvent.objects.order_by("sequence").values_list(
        "sequence", "occurred_at", "retention_days", "tenant_id", "classification"
    )
    for sequence, occurred_at, days, tenant_id, classification in rows.iterator(chunk_size=5000):
        if days is None:
            days = days_for(tenant_id, classification) if days_for else default_days
        days = max(days, min_days)
        if occurred_at + timedelta(days=days) > now:
            break
        through = sequence
    if not through:
        return PurgeReport(purged=0, first_sequence=None, checkpoint=None)
    return audit_purge_through(sequence=through, reason="retention")
