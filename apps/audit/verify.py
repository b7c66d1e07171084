"""Verifying the chain: recompute, follow the links, and hold the end to the signed heads.

An incremental verification (the default) starts from the latest trusted checkpoint: the
newest signed head recording a passed verification, when no verification has failed
since. A full one walks from the chain's start. Both then check that the chain reaches
the newest signed head no restore superseded (kept in the database, the heads file and
the sink): a chain that ends before it, or differs at it, was truncated.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from apps.audit import chain, sealing
from apps.audit.heads import Standing, timestamp
from apps.audit.models import AuditChainHead, AuditEvent, AuditSignedHead
from apps.audit.walk import KINDS, Event, Problem, end_problem, walk

__all__ = ["KINDS", "Problem", "VerificationResult", "verify_chain"]

EVENT_VALUES = (*chain.HASHED_FIELDS, "sequence", "hash", "key_id", "signature")


@dataclass(frozen=True, slots=True)
class VerificationResult:
    ok: bool
    checked: int
    head_sequence: int
    head_hash: str
    head_key_id: str
    head_signature: str
    problem: Problem | None = None
    full: bool = True
    # The verified position the walk started from (0: the chain's start).
    start_sequence: int = 0
    # The newest standing signed head the chain's end was held to, if any.
    signed_head: dict[str, Any] | None = None
    restores: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["status"] = "ok" if self.ok else "broken"
        return data


def _event(sequence: int) -> Event | None:
    return AuditEvent.objects.filter(sequence=sequence).values(*EVENT_VALUES).first()


def _hash_exists(digest: str) -> bool:
    return AuditEvent.objects.filter(hash=digest).exists()


def _purge_anchor(first: Event) -> str | None:
    """The anchor a purge checkpoint gives for `first` being the chain's first event."""
    checkpoint = (
        AuditEvent.objects.filter(
            event_type="audit.checkpoint",
            data__first_sequence=first["sequence"],
            data__anchor_hash=first["prev_hash"],
        )
        .order_by("-sequence")
        .values_list("data", flat=True)
        .first()
    )
    return checkpoint["anchor_hash"] if checkpoint else None


def _signature_problem(event: Event) -> Problem | None:
    sequence = event["sequence"]
    try:
        valid = chain.signature_valid(event["hash"], event["key_id"], event["signature"])
    except chain.SigningKeyError:
        return Problem(
            "bad_signature",
            sequence,
            f"event {sequence} is signed with unknown key '{event['key_id']}'",
        )
    if not valid:
        return Problem(
            "bad_signature", sequence, f"event {sequence} has a signature that does not verify"
        )
    return None


def _latest_outcome() -> AuditSignedHead | None:
    return AuditSignedHead.objects.filter(verified__isnull=False).order_by("-id").first()


def _checkpoint() -> tuple[Event, Event | None] | None:
    """(event at the trusted checkpoint, the event before it), or None: walk it all.

    Trusted: the newest verification outcome passed, its row is signed by the head key,
    and the event there is still intact (same hash, recomputed, validly signed).
    """
    outcome = _latest_outcome()
    if outcome is None or not outcome.verified or not sealing.row_trusted(outcome):
        return None
    event = _event(outcome.sequence)
    if (
        event is None
        or event["hash"] != outcome.hash
        or chain.event_hash({n: event[n] for n in chain.HASHED_FIELDS}) != event["hash"]
        or _signature_problem(event) is not None
    ):
        return None
    before = (
        AuditEvent.objects.filter(sequence__lt=outcome.sequence)
        .order_by("-sequence")
        .values(*EVENT_VALUES)
        .first()
    )
    return event, before


def _head_row_problem(last: Event | None) -> Problem | None:
    """The chain's end against the chain-head row the appenders keep."""
    head = AuditChainHead.objects.get(pk=1)
    last_sequence = last["sequence"] if last else 0
    last_hash = last["hash"] if last else chain.GENESIS_HASH
    if last_sequence > head.sequence:
        return Problem(
            "inserted",
            head.sequence + 1,
            "events were added after the recorded head of the chain",
        )
    if last_sequence < head.sequence or last_hash != head.hash:
        return Problem("deleted", last_sequence + 1, "events at the end of the chain are missing")
    return None


def _signed_head_problem(last: Event | None, standing: Standing) -> Problem | None:
    """The chain's end against the newest standing signed head."""
    if standing.bad is not None:
        return Problem(
            "bad_signature",
            int(standing.bad.sequence),
            f"a signed head for event {standing.bad.sequence} in {standing.bad.source} "
            "does not verify",
        )
    if standing.head is None:
        return None

    def hash_at(sequence: int) -> str | None:
        if last and last["sequence"] == sequence:
            return last["hash"]
        return AuditEvent.objects.filter(sequence=sequence).values_list("hash", flat=True).first()

    return end_problem(standing.head, last["sequence"] if last else 0, hash_at)


def _record_outcome(*, last: Event | None, ok: bool, previous: AuditSignedHead | None) -> None:
    """Leave a signed verification outcome: a passed one is the next walk's checkpoint."""
    if last is None:
        return
    if ok and previous is not None and previous.verified and last["sequence"] <= previous.sequence:
        return  # nothing new was verified
    if not ok and previous is not None and previous.verified is False:
        return  # already known to be broken; the next walk is a full one anyway
    sealing.head_sign(
        sequence=last["sequence"],
        digest=last["hash"],
        reason=AuditSignedHead.Reason.VERIFIED,
        verified=ok,
    )


def _reporting(
    events: Iterable[Event], progress: Callable[[int], None], every: int
) -> Iterator[Event]:
    """`events`, calling `progress` with the sequence reached every `every` events."""
    for count, event in enumerate(events, 1):
        if count % every == 0:
            progress(event["sequence"])
        yield event


def verify_chain(
    *,
    full: bool = False,
    record: bool = True,
    batch_size: int = 2000,
    progress: Callable[[int], None] | None = None,
) -> VerificationResult:
    """Verify the chain; stop at the first problem.

    `full` walks every event; otherwise the walk starts at the latest trusted checkpoint.
    `record` leaves the outcome as a signed head in the database (a passed one becomes
    the next checkpoint). `progress`, if given, is called with the sequence number reached
    after every `batch_size` events (a background job shows it).
    """
    start = None if full else _checkpoint()
    previous = _latest_outcome() if record else None
    events = AuditEvent.objects.order_by("sequence").values(*EVENT_VALUES)
    if start is not None:
        events = events.filter(sequence__gt=start[0]["sequence"])
    stream: Iterable[Event] = events.iterator(chunk_size=batch_size)
    if progress is not None:
        stream = _reporting(stream, progress, batch_size)
    walked = walk(
        stream,
        hash_exists=_hash_exists,
        anchor_for=_purge_anchor,
        previous=start[0] if start else None,
        before_previous=start[1] if start else None,
        signature_problem=_signature_problem,
    )
    last = walked.last
    problem = walked.problem
    if problem is None:
        problem = _head_row_problem(last)
    standing = sealing.signed_heads_standing()
    restores = [
        {"sequence": r.sequence, "hash": r.hash, "at": timestamp(r.at)} for r in sealing.restores()
    ]
    if problem is None:
        problem = _signed_head_problem(last, standing)
    start_sequence = start[0]["sequence"] if start else 0
    if record:
        _record_outcome(last=last, ok=problem is None, previous=previous)
    head = standing.head
    return VerificationResult(
        ok=problem is None,
        checked=walked.checked,
        head_sequence=last["sequence"] if last else 0,
        head_hash=last["hash"] if last else chain.GENESIS_HASH,
        head_key_id=last["key_id"] if last else "",
        head_signature=last["signature"] if last else "",
        problem=problem,
        full=start is None,
        start_sequence=start_sequence,
        signed_head=(
            {
                "sequence": head.sequence,
                "hash": head.hash,
                "signed_at": timestamp(head.signed_at),
                "reason": head.reason,
                "source": head.source,
            }
            if head
            else None
        ),
        restores=restores,
    )
