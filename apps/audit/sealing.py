"""Signing the chain's head, and keeping signed heads where the database cannot rewrite them.

`audit_head_seal` (the nightly job, shutdown, `manage.py audit_seal`) signs the chain's
last event with the head key and writes the signed head to the database, to the heads
file in ATP_DATA_DIR and, when set, to the ATP_AUDIT_HEAD_SINK directory.
`audit_restored` is the one legitimate rewind, after a database restore. The
verifier reads every signed head back through `signed_heads_standing`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any

from asgiref.sync import sync_to_async
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.conf import settings
from django.utils import timezone

from apps.audit import chain, heads
from apps.audit.models import AuditEvent, AuditSignedHead

logger = logging.getLogger(__name__)

RESTORED = "audit.restored"


@lru_cache(maxsize=4)
def _key(text: str) -> Ed25519PrivateKey:
    return heads.private_key_from(text)


def head_key() -> Ed25519PrivateKey:
    """The private key that signs heads (ATP_AUDIT_HEAD_KEY); raises HeadKeyError if unusable."""
    return _key(settings.ATP_AUDIT_HEAD_KEY)


def chain_end() -> tuple[int, str]:
    """(sequence, hash) of the chain's last event, or (0, genesis) when it is empty."""
    last = AuditEvent.objects.order_by("-sequence").values_list("sequence", "hash").first()
    return last if last is not None else (0, chain.GENESIS_HASH)


def head_sign(
    *,
    sequence: int,
    digest: str,
    reason: str,
    verified: bool | None,
    publish: bool = False,
) -> AuditSignedHead:
    """Sign (sequence, digest), keep it in the database and, with `publish`, outside it.

    Publishing writes outside the database at once: call it with committed events only
    (outside a transaction), or a head could outlive the events it vouches for.
    """
    now = timezone.now()
    statement = heads.head_statement(
        sequence=sequence, digest=digest, signed_at=now, reason=reason, verified=verified
    )
    record = heads.sign(head_key(), statement)
    row = AuditSignedHead.objects.create(
        sequence=sequence,
        hash=digest,
        signed_at=heads.parse_timestamp(statement["signed_at"]),
        reason=reason,
        verified=verified,
        statement=heads.canonical(statement).decode(),
        key=record["key"],
        signature=record["signature"],
    )
    if publish:
        head_publish(record)
    return row


def head_publish(record: dict[str, Any]) -> None:
    """Append a signed record to the heads file and, when configured, the sink directory."""
    path = Path(settings.ATP_AUDIT_HEAD_FILE)
    path.parent.mkdir(parents=True, exist_ok=True)
    heads.append_line(path, record)
    if settings.ATP_AUDIT_HEAD_SINK:
        heads.write_new_file(Path(settings.ATP_AUDIT_HEAD_SINK), record)


def audit_head_seal(*, reason: str, verified: bool | None = None) -> AuditSignedHead | None:
    """Sign the chain's current end and publish it; nothing to sign on an empty chain."""
    sequence, digest = chain_end()
    if sequence == 0:
        return None
    return head_sign(
        sequence=sequence, digest=digest, reason=reason, verified=verified, publish=True
    )


async def audit_head_seal_at_shutdown() -> None:
    """The graceful shutdown's seal (apps.routing.lifecycle): never fails the shutdown."""
    try:
        await sync_to_async(audit_head_seal, thread_sensitive=True)(
            reason=AuditSignedHead.Reason.SHUTDOWN
        )
    except Exception:
        logger.exception("audit: the chain head was not sealed at shutdown")


def row_record(row: AuditSignedHead) -> dict[str, Any] | None:
    """A database row as a signed record, or None when its columns disagree with it."""
    try:
        statement = json.loads(row.statement)
    except ValueError:
        return None
    if (
        not isinstance(statement, dict)
        or statement.get("sequence") != row.sequence
        or statement.get("hash") != row.hash
        or statement.get("verified") != row.verified
    ):
        return None
    return {"statement": statement, "key": row.key, "signature": row.signature}


def row_trusted(row: AuditSignedHead) -> bool:
    """Whether a database row is a head signed by our key, as its columns say."""
    record = row_record(row)
    if record is None:
        return False
    try:
        return heads.verified_statement(record, head_key().public_key()) is not None
    except heads.Unverifiable:
        return False


# --- reading signed heads back ------------------------------------------------------------------


def restores() -> list[heads.Restore]:
    """The restores recorded on the chain whose statements verify under the head key."""
    public = head_key().public_key()
    found = []
    rows = AuditEvent.objects.filter(event_type=RESTORED).values_list("data", flat=True)
    for data in rows.iterator():
        try:
            statement = heads.verified_statement(data.get("signed"), public)
            if statement is not None:
                found.append(heads.Restore.from_statement(statement))
        except (heads.Unverifiable, AttributeError):
            continue
    return found


# Where a head was found, as verification results name it: no server paths in the API.
FILE_LABEL = "the heads file"
SINK_LABEL = "the head sink, file"


def _outside_records() -> Iterator[tuple[Any, str]]:
    yield from heads.read_records(Path(settings.ATP_AUDIT_HEAD_FILE), FILE_LABEL)
    if settings.ATP_AUDIT_HEAD_SINK:
        yield from heads.read_records(Path(settings.ATP_AUDIT_HEAD_SINK), SINK_LABEL)


def _database_standing(
    public: Any, known_restores: list[heads.Restore], batch: int = 200
) -> heads.Standing:
    """The database's newest standing head, reading rows from the highest sequence down."""
    rows = AuditSignedHead.objects.order_by("-sequence", "-id").iterator(chunk_size=batch)
    ignored = 0
    for row in rows:
        record = row_record(row)
        if record is None:
            ignored += 1
            continue
        source = f"the database, row {row.pk}"
        standing = heads.standing_head([(record, source)], public, known_restores)
        if standing.bad is not None or standing.head is not None:
            return heads.Standing(standing.head, standing.bad, ignored + standing.ignored)
        ignored += standing.ignored
    return heads.Standing(None, None, ignored)


def signed_heads_standing() -> heads.Standing:
    """The newest signed head no restore superseded, across the database, file and sink."""
    public = head_key().public_key()
    known_restores = restores()
    outside = heads.standing_head(_outside_records(), public, known_restores)
    inside = _database_standing(public, known_restores)
    bad = outside.bad or inside.bad
    candidates = [h for h in (outside.head, inside.head) if h is not None]
    best = max(candidates, key=lambda h: (h.sequence, h.signed_at), default=None)
    return heads.Standing(best, bad, outside.ignored + inside.ignored)


# --- restoring a backup -------------------------------------------------------------------------


class RestoreRefused(Exception):
    """The restored chain is broken in a way a restore does not explain."""


def audit_restored(*, note: str) -> tuple[AuditEvent, AuditSignedHead]:
    """Record that the database was restored from a backup: the one legitimate rewind.

    Run after the restore, before serving. The restored chain must verify up to its end;
    the only break allowed is the truncation the restore itself caused. Appends an
    `audit.restored` event carrying a signed restore statement (the restored head, and the
    newest signed head it supersedes), then seals a head over that event. Heads signed
    before now beyond the restored point are superseded from then on.
    """
    from apps.audit.services import audit_record
    from apps.audit.verify import verify_chain

    result = verify_chain(full=True, record=False)
    if not result.ok and result.problem.kind != "truncated":
        problem = result.problem
        raise RestoreRefused(
            f"the restored chain is broken at event {problem.sequence} ({problem.kind}: "
            f"{problem.detail}); a restore does not explain that"
        )
    sequence, digest = result.head_sequence, result.head_hash
    superseded = signed_heads_standing().head
    if superseded is not None and superseded.sequence <= sequence:
        superseded = None
    statement = heads.restore_statement(
        sequence=sequence, digest=digest, at=timezone.now(), note=note, supersedes=superseded
    )
    event = audit_record(
        event_type=RESTORED,
        action="restore",
        resource_type="audit_chain",
        data={
            "restored_sequence": sequence,
            "restored_hash": digest,
            "superseded_sequence": superseded.sequence if superseded else None,
            "superseded_hash": superseded.hash if superseded else None,
            "note": note,
            "signed": heads.sign(head_key(), statement),
        },
        classification="restricted",
    )
    head = head_sign(
        sequence=event.sequence,
        digest=event.hash,
        reason=AuditSignedHead.Reason.RESTORED,
        verified=True,
        publish=True,
    )
    return event, head
