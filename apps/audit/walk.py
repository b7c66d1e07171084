"""Walking a run of audit events: recompute each hash, follow the links, check the numbering.

Events are plain mappings (the ORM's `.values()` rows, or the rows of a JSON export), so
the verifier and the offline verifier (which runs without Django) share this one walk.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from apps.audit import chain
from apps.audit.heads import SignedHead, timestamp

Event = Mapping[str, Any]

# What a break can be. `truncated`: the chain ends before, or differs at, a position a
# signed head vouches for; `bad_signature` also covers a signed head that does not verify.
KINDS = ("modified", "deleted", "inserted", "reordered", "bad_signature", "truncated")


@dataclass(frozen=True, slots=True)
class Problem:
    """The first break found. `kind` is one of KINDS."""

    kind: str
    sequence: int
    detail: str


@dataclass(frozen=True, slots=True)
class Walk:
    """How far a walk got: the events it checked, the last good one and the break, if any."""

    checked: int
    last: Event | None
    problem: Problem | None


def fields_of(event: Event) -> dict[str, Any]:
    return {name: event.get(name) for name in chain.HASHED_FIELDS}


def _classify(
    pp: Event | None,
    p: Event | None,
    e: Event,
    nxt: Event | None,
    hash_exists: Callable[[str], bool],
) -> Problem:
    """`e` does not link to `p`, the event before it: say what was done."""
    pp_hash = pp["hash"] if pp else chain.GENESIS_HASH
    p_hash = p["hash"] if p else chain.GENESIS_HASH
    if p is not None and e["prev_hash"] == pp_hash:
        return Problem(
            "inserted",
            p["sequence"],
            f"event {p['sequence']} is not part of the chain: event {e['sequence']} "
            "links to the event before it",
        )
    if hash_exists(e["prev_hash"]):
        return Problem(
            "reordered",
            e["sequence"],
            f"event {e['sequence']} links to an event that is not its predecessor",
        )
    if nxt is not None and nxt["prev_hash"] == p_hash:
        return Problem(
            "inserted",
            e["sequence"],
            f"event {e['sequence']} is not part of the chain: event {nxt['sequence']} "
            "links to the event before it",
        )
    return Problem(
        "deleted",
        e["sequence"],
        f"the event before {e['sequence']} is missing (it linked to a hash no event has)",
    )


def walk(
    events: Iterator[Event],
    *,
    hash_exists: Callable[[str], bool],
    anchor_for: Callable[[Event], str | None] | None = None,
    previous: Event | None = None,
    before_previous: Event | None = None,
    signature_problem: Callable[[Event], Problem | None] | None = None,
) -> Walk:
    """Walk `events` in sequence order and stop at the first problem.

    From the start of the chain (`previous` None) the first event links to the genesis
    hash, or, after a retention purge, to the anchor a signed purge checkpoint names
    (`anchor_for(first)`). From a verified position, `previous` is the event there (and
    `before_previous` the one before it, to tell an insertion from a deletion).
    `signature_problem` checks an event's HMAC where the key is at hand.
    """
    checked = 0
    pp, p = before_previous, previous
    e = next(events, None)
    anchor = chain.GENESIS_HASH
    if (
        p is None
        and e is not None
        and (e["sequence"] != 1 or e["prev_hash"] != chain.GENESIS_HASH)
        and anchor_for is not None
    ):
        # The start of the chain was purged; a signed checkpoint vouches for the link.
        anchor = anchor_for(e) or chain.GENESIS_HASH

    def stop(problem: Problem) -> Walk:
        return Walk(checked, p, problem)

    while e is not None:
        nxt = next(events, None)
        sequence = e["sequence"]
        if chain.event_hash(fields_of(e)) != e["hash"]:
            return stop(Problem("modified", sequence, f"event {sequence} does not match its hash"))
        expected_prev = p["hash"] if p else anchor
        if e["prev_hash"] != expected_prev:
            return stop(_classify(pp, p, e, nxt, hash_exists))
        if p is None and sequence != 1 and anchor == chain.GENESIS_HASH:
            return stop(Problem("reordered", sequence, "the chain does not start at 1"))
        expected_sequence = (p["sequence"] + 1) if p else sequence
        if sequence != expected_sequence:
            return stop(
                Problem(
                    "reordered",
                    sequence,
                    f"event {sequence} follows event {p['sequence'] if p else 0} "
                    "but is not numbered next",
                )
            )
        if signature_problem is not None:
            problem = signature_problem(e)
            if problem is not None:
                return stop(problem)
        checked += 1
        pp, p, e = p, e, nxt
    return Walk(checked, p, None)


def describe_head(head: SignedHead) -> str:
    return f"the head signed at {timestamp(head.signed_at)} ({head.reason}, in {head.source})"


def end_problem(
    head: SignedHead, last_sequence: int, hash_at: Callable[[int], str | None]
) -> Problem | None:
    """The chain's end (its last event, `last_sequence`) held to a standing signed head.

    `hash_at(sequence)` is the hash of the chain's event there, None when there is none.
    """
    if head.sequence > last_sequence:
        return Problem(
            "truncated",
            last_sequence + 1,
            f"the chain ends at event {last_sequence}, but {describe_head(head)} vouches "
            f"for event {head.sequence}: events at the end were removed",
        )
    found = hash_at(head.sequence)
    if found is None:
        return None  # purged by retention since it was signed: the start moved, not the end
    if found != head.hash:
        return Problem(
            "truncated",
            head.sequence,
            f"event {head.sequence} is not the one {describe_head(head)} vouches for: the "
            "chain's end was removed and written again",
        )
    return None
