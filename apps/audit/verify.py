"""Verifying the chain: walk every event, recompute, and name the first broken link."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

from apps.audit import chain
from apps.audit.models import AuditChainHead, AuditEvent


@dataclass(frozen=True, slots=True)
class Problem:
    """The first break found. `kind` is one of KINDS."""

    kind: str
    sequence: int
    detail: str


KINDS = ("modified", "deleted", "inserted", "reordered", "bad_signature")


@dataclass(frozen=True, slots=True)
class VerificationResult:
    ok: bool
    checked: int
    head_sequence: int
    head_hash: str
    head_key_id: str
    head_signature: str
    problem: Problem | None = None

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["status"] = "ok" if self.ok else "broken"
        return data


def _fields(event: AuditEvent) -> dict[str, Any]:
    return {name: getattr(event, name) for name in chain.HASHED_FIELDS}


def _events(batch_size: int) -> Iterator[AuditEvent]:
    return AuditEvent.objects.order_by("sequence").iterator(chunk_size=batch_size)


def _hash_exists(digest: str) -> bool:
    return AuditEvent.objects.filter(hash=digest).exists()


def _classify(
    pp: AuditEvent | None, p: AuditEvent | None, e: AuditEvent, nxt: AuditEvent | None
) -> Problem:
    """`e` does not link to `p`, the event before it: say what was done."""
    pp_hash = pp.hash if pp else chain.GENESIS_HASH
    p_hash = p.hash if p else chain.GENESIS_HASH
    if p is not None and e.prev_hash == pp_hash:
        return Problem(
            "inserted",
            p.sequence,
            f"event {p.sequence} is not part of the chain: event {e.sequence} "
            "links to the event before it",
        )
    if _hash_exists(e.prev_hash):
        return Problem(
            "reordered",
            e.sequence,
            f"event {e.sequence} links to an event that is not its predecessor",
        )
    if nxt is not None and nxt.prev_hash == p_hash:
        return Problem(
            "inserted",
            e.sequence,
            f"event {e.sequence} is not part of the chain: event {nxt.sequence} "
            "links to the event before it",
        )
    return Problem(
        "deleted",
        e.sequence,
        f"the event before {e.sequence} is missing (it linked to a hash no event has)",
    )


def _checkpoint_for(first: AuditEvent) -> AuditEvent | None:
    """The purge checkpoint that vouches for `first` being the chain's first event."""
    return (
        AuditEvent.objects.filter(
            event_type="audit.checkpoint",
            data__first_sequence=first.sequence,
            data__anchor_hash=first.prev_hash,
        )
        .order_by("-sequence")
        .first()
    )


def verify_chain(*, batch_size: int = 2000) -> VerificationResult:
    """Walk the whole chain in sequence order; stop at the first problem."""
    head = AuditChainHead.objects.get(pk=1)
    checked = 0
    pp: AuditEvent | None = None
    p: AuditEvent | None = None
    events = _events(batch_size)
    e = next(events, None)

    def result(problem: Problem | None) -> VerificationResult:
        last = p
        return VerificationResult(
            ok=problem is None,
            checked=checked,
            head_sequence=last.sequence if last else 0,
            head_hash=last.hash if last else chain.GENESIS_HASH,
            head_key_id=last.key_id if last else "",
            head_signature=last.signature if last else "",
            problem=problem,
        )

    anchor = chain.GENESIS_HASH
    if e is not None and (e.sequence != 1 or e.prev_hash != chain.GENESIS_HASH):
        checkpoint = _checkpoint_for(e)
        if checkpoint is not None:
            # The start of the chain was purged; a signed checkpoint vouches for the link.
            anchor = checkpoint.data["anchor_hash"]

    while e is not None:
        nxt = next(events, None)
        if chain.event_hash(_fields(e)) != e.hash:
            return result(
                Problem("modified", e.sequence, f"event {e.sequence} does not match its hash")
            )
        expected_prev = p.hash if p else anchor
        if e.prev_hash != expected_prev:
            return result(_classify(pp, p, e, nxt))
        expected_sequence = (p.sequence + 1) if p else e.sequence
        if p is None and e.sequence != 1 and anchor == chain.GENESIS_HASH:
            return result(Problem("reordered", e.sequence, "the chain does not start at 1"))
        if e.sequence != expected_sequence:
            return result(
                Problem(
                    "reordered",
                    e.sequence,
                    f"event {e.sequence} follows event {p.sequence if p else 0} "
                    "but is not numbered next",
                )
            )
        try:
            valid = chain.signature_valid(e.hash, e.key_id, e.signature)
        except chain.SigningKeyError:
            return result(
                Problem(
                    "bad_signature",
                    e.sequence,
                    f"event {e.sequence} is signed with unknown key '{e.key_id}'",
                )
            )
        if not valid:
            return result(
                Problem(
                    "bad_signature",
                    e.sequence,
                    f"event {e.sequence} has a signature that does not verify",
                )
            )
        checked += 1
        pp, p, e = p, e, nxt

    last_sequence = p.sequence if p else 0
    last_hash = p.hash if p else chain.GENESIS_HASH
    if last_sequence > head.sequence:
        return result(
            Problem(
                "inserted",
                head.sequence + 1,
                "events were added after the recorded head of the chain",
            )
        )
    if last_sequence < head.sequence or last_hash != head.hash:
        return result(
            Problem("deleted", last_sequence + 1, "events at the end of the chain are missing")
        )
    return result(None)
