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
from datetime import datetime
from typing import Any

from django.db.models import QuerySet

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
