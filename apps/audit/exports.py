"""Audit exports: events as CSV, JSON or JSON Lines, safe to open and checkable offline.

CSV is for people and spreadsheets: every cell that a spreadsheet would read as a formula
(OWASP's CSV injection: a leading `=`, `+`, `-`, `@`, tab or carriage return) gets a
leading single quote, in plain cells and in the strings inside JSON-encoded cells.

JSON and JSON Lines are for machines and auditors: events exactly as hashed, followed by
one signed manifest record `{"atp_export": <signed statement>}` (apps.audit.heads) naming
the filters, the number of events, a digest of their (sequence, hash) pairs, the last
event's hash and the chain verification at export time. With the public key alone,
`python -m apps.audit.offline_verify` checks it (docs/security.md).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser
from django.db.models import Max, QuerySet
from django.utils import timezone

from apps.audit import heads
from apps.audit.api.serializers import AuditEventSerializer
from apps.audit.csvsafe import csv_row
from apps.audit.sealing import head_key
from apps.audit.verify import verify_chain

CHUNK = 2000
MANIFEST = "atp_export"


def events_digest_line(sequence: int, digest: str) -> bytes:
    return f"{sequence}:{digest}\n".encode()


def export_manifest(
    *, fmt: str, filters: dict[str, str], complete: bool, exported_at: datetime
) -> dict[str, Any]:
    """What the signed manifest says before the events are counted (verifies the chain)."""
    result = verify_chain()
    problem = result.problem
    return {
        "type": heads.EXPORT,
        "v": heads.VERSION,
        "exported_at": heads.timestamp(exported_at),
        "format": fmt,
        "filters": filters,
        "complete": complete,
        "chain_verified": result.ok,
        "chain_verified_through": result.head_sequence,
        "chain_problem": (
            f"{problem.kind} at event {problem.sequence}: {problem.detail}" if problem else None
        ),
    }


def export_stream(
    events: QuerySet, fmt: str, *, manifest: dict[str, Any] | None = None
) -> Iterator[str]:
    """Serialise events in chain order, a chunk at a time, without holding them all.

    For JSON and JSON Lines, `manifest` is completed with the counts and digest of what
    was streamed, signed, and appended as the last record.
    """
    names = AuditEventSerializer.Meta.fields
    digest = hashlib.sha256()
    count = 0
    first: tuple[int, str] | None = None
    last: tuple[int, str] | None = None
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    if fmt == "csv":
        writer.writerow(names)
    elif fmt == "json":
        yield "["
    for event in events.iterator(chunk_size=CHUNK):
        row = AuditEventSerializer(event).data
        if fmt == "csv":
            writer.writerow(csv_row([row[n] for n in names]))
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
        elif fmt == "json":
            yield ("" if count == 0 else ",") + "\n" + json.dumps(row)
        else:
            yield json.dumps(row) + "\n"
        digest.update(events_digest_line(event.sequence, event.hash))
        last = (event.sequence, event.hash)
        first = first or last
        count += 1
    if fmt == "csv":
        return
    record = None
    if manifest is not None:
        statement = {
            **manifest,
            "rows": count,
            "first_sequence": first[0] if first else None,
            "last_sequence": last[0] if last else None,
            "last_hash": last[1] if last else None,
            "events_digest": digest.hexdigest(),
        }
        record = json.dumps({MANIFEST: heads.sign(head_key(), statement)})
    if fmt == "json":
        tail = ("" if count == 0 else ",") + "\n" + record if record else ""
        yield tail + "\n]\n"
    elif record:
        yield record + "\n"


@dataclass
class Export:
    """An export fixed at one moment: the events, how many, and the file to name."""

    events: QuerySet
    rows: int
    last: int
    fmt: str
    manifest: dict[str, Any] | None
    exported_at: datetime

    @property
    def filename(self) -> str:
        return f"atp-audit-{self.exported_at.strftime('%Y%m%dT%H%M%SZ')}.{self.fmt}"

    def stream(self) -> Iterator[str]:
        return export_stream(self.events, self.fmt, manifest=self.manifest)


def prepare_export(*, user: AbstractBaseUser, filters: Any, fmt: str, actor: Any = None) -> Export:
    """The events `user` may export under `filters`, fixed to what exists now, with the
    manifest to sign (JSON formats) and the `audit.exported` event recorded.

    The API's streamed export and the console's export job both start here."""
    from apps.audit.selectors import audit_event_filter, audit_event_scope, audit_tenant_ids
    from apps.audit.services import audit_record

    # Before the set is fixed: a head signed before this moment is covered by it.
    exported_at = timezone.now()
    events = audit_event_filter(audit_event_scope(user=user, action="export"), filters)
    # Fix the exported set to what exists now, so the row count recorded below is exactly
    # what is streamed, and the export's own event is not part of it.
    last = events.aggregate(last=Max("sequence"))["last"] or 0
    events = events.filter(sequence__lte=last).order_by("sequence")
    rows = events.count()
    manifest = None
    if fmt != "csv":
        complete = not filters.as_dict() and audit_tenant_ids(user=user, action="export") is None
        manifest = export_manifest(
            fmt=fmt, filters=filters.as_dict(), complete=complete, exported_at=exported_at
        )
    audit_record(
        event_type="audit.exported",
        action="export",
        resource_type="audit_event",
        data={"filters": filters.as_dict(), "format": fmt, "rows": rows, "last": last},
        actor=actor,
    )
    return Export(events, rows, last, fmt, manifest, exported_at)
