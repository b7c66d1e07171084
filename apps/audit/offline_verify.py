"""Check an audit export offline, with the head key's public key alone (no Django, no database).

    python -m apps.audit.offline_verify export.jsonl --public-key head.pem \
        [--heads audit_heads.jsonl] [--heads /mnt/worm/atp-heads]

Needs Python 3.11+, `cryptography` and `orjson`, and this repository's `apps/audit`
(chain.py, heads.py, walk.py, offline_verify.py). It checks that:

- the export's signed manifest verifies under the public key (`manage.py
  audit_public_key` prints it), and names exactly the events in the file (count, first
  and last sequence, last hash, digest of every (sequence, hash) pair);
- every event's hash recomputes from its fields;
- in a complete export (no filters, every tenant), the events form one unbroken chain
  from its start (or a purge checkpoint) to the last event, whose hash the manifest
  signs, so the signature covers the whole chain by linkage; in a filtered export,
  consecutive events link;
- with --heads (the heads file from ATP_DATA_DIR or the ATP_AUDIT_HEAD_SINK directory,
  ideally your own copy): no head signed before the export vouches for a longer chain or
  a different event, unless a signed restore in the export superseded it.

Events also carry an HMAC signature under the server's secret, which cannot be checked
offline; the Ed25519 signature over the last hash makes up for it.
Exit status: 0 verified, 1 broken, 2 unusable input.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from apps.audit import chain, heads
from apps.audit.walk import Problem, end_problem, fields_of, walk

MANIFEST = "atp_export"
RESTORED = "audit.restored"
CHECKPOINT = "audit.checkpoint"


class UnusableInput(Exception):
    """The export or the key cannot be read at all."""


@dataclass(slots=True)
class Outcome:
    problem: Problem | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.problem is None


def load_export(path: Path) -> tuple[list[dict[str, Any]], list[Any]]:
    """(events, manifest records) of a JSON or JSON Lines export."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UnusableInput(f"cannot read {path}: {exc.strerror}") from None
    try:
        if text.lstrip().startswith("["):
            records = json.loads(text)
        else:
            records = [json.loads(line) for line in text.splitlines() if line.strip()]
    except ValueError as exc:
        raise UnusableInput(f"{path} is not a JSON or JSON Lines export ({exc})") from None
    events, manifests = [], []
    for number, record in enumerate(records, start=1):
        if isinstance(record, dict) and MANIFEST in record:
            manifests.append(record[MANIFEST])
        elif isinstance(record, dict) and isinstance(record.get("sequence"), int):
            events.append(record)
        else:
            raise UnusableInput(f"record {number} is neither an event nor a manifest")
    return events, manifests


def _digest(events: Iterable[dict[str, Any]]) -> str:
    digest = hashlib.sha256()
    for event in events:
        digest.update(f"{event['sequence']}:{event['hash']}\n".encode())
    return digest.hexdigest()


def _manifest(records: list[Any], public: Ed25519PublicKey) -> dict[str, Any] | Problem:
    if len(records) != 1:
        raise UnusableInput(
            f"expected one signed manifest, found {len(records)} (CSV exports carry none)"
        )
    try:
        statement = heads.verified_statement(records[0], public)
    except heads.Unverifiable as exc:
        raise UnusableInput(f"the manifest cannot be checked with this key: {exc}") from None
    if statement is None:
        return Problem("bad_signature", 0, "the export's manifest signature does not verify")
    if statement.get("type") != heads.EXPORT:
        raise UnusableInput("the signed record is not an export manifest")
    return statement


def _against_manifest(events: list[dict[str, Any]], m: dict[str, Any]) -> Problem | None:
    """The events in the file are exactly the ones the manifest was signed over."""
    if len(events) != m["rows"]:
        kind = "deleted" if len(events) < m["rows"] else "inserted"
        return Problem(
            kind, 0, f"the export holds {len(events)} events; its manifest signs {m['rows']}"
        )
    sequences = [e["sequence"] for e in events]
    if sequences != sorted(set(sequences)):
        return Problem("reordered", 0, "the export's events are not in sequence order")
    first = events[0]["sequence"] if events else None
    last = events[-1] if events else None
    if (
        first != m["first_sequence"]
        or (last["sequence"] if last else None) != m["last_sequence"]
        or (last["hash"] if last else None) != m["last_hash"]
        or _digest(events) != m["events_digest"]
    ):
        return Problem(
            "modified", 0, "the export's events are not the ones its manifest was signed over"
        )
    return None


def _restores(events: list[dict[str, Any]], public: Ed25519PublicKey) -> list[heads.Restore]:
    found = []
    for event in events:
        if event.get("event_type") != RESTORED or not isinstance(event.get("data"), dict):
            continue
        try:
            statement = heads.verified_statement(event["data"].get("signed"), public)
            if statement is not None:
                found.append(heads.Restore.from_statement(statement))
        except heads.Unverifiable:
            continue
    return found


def _chain(events: list[dict[str, Any]], complete: bool) -> Problem | None:
    for event in events:
        if chain.event_hash(fields_of(event)) != event["hash"]:
            sequence = event["sequence"]
            return Problem("modified", sequence, f"event {sequence} does not match its hash")
    if complete:
        hashes = {e["hash"] for e in events}

        def anchor_for(first: dict[str, Any]) -> str | None:
            for e in reversed(events):
                data = e.get("data") or {}
                if (
                    e.get("event_type") == CHECKPOINT
                    and data.get("first_sequence") == first["sequence"]
                    and data.get("anchor_hash") == first["prev_hash"]
                ):
                    return data["anchor_hash"]
            return None

        return walk(iter(events), hash_exists=hashes.__contains__, anchor_for=anchor_for).problem
    for before, after in zip(events, events[1:], strict=False):
        if after["sequence"] == before["sequence"] + 1 and after["prev_hash"] != before["hash"]:
            return Problem(
                "modified",
                after["sequence"],
                f"event {after['sequence']} does not link to event {before['sequence']}",
            )
    return None


def verify_export(
    events: list[dict[str, Any]],
    manifests: list[Any],
    public: Ed25519PublicKey,
    head_records: Sequence[tuple[Any, str]] = (),
) -> Outcome:
    outcome = Outcome()
    m = _manifest(manifests, public)
    if isinstance(m, Problem):
        outcome.problem = m
        return outcome
    outcome.problem = _against_manifest(events, m) or _chain(events, bool(m["complete"]))
    if outcome.problem:
        return outcome
    by_sequence = {e["sequence"]: e["hash"] for e in events}
    restores = _restores(events, public)
    exported_at = heads.parse_timestamp(m["exported_at"])
    if head_records:
        standing = heads.standing_head(head_records, public, restores, signed_until=exported_at)
        if standing.bad is not None:
            outcome.problem = Problem(
                "bad_signature",
                int(standing.bad.sequence),
                f"a signed head for event {standing.bad.sequence} in {standing.bad.source} "
                "does not verify",
            )
            return outcome
        if standing.head is not None:
            end = m["last_sequence"] or 0 if m["complete"] else m["chain_verified_through"]
            outcome.problem = end_problem(standing.head, end, by_sequence.get)
            if outcome.problem:
                return outcome
            outcome.notes.append(
                f"newest signed head before the export: event {standing.head.sequence} "
                f"({standing.head.reason}, signed {heads.timestamp(standing.head.signed_at)})"
            )
        if standing.ignored:
            outcome.notes.append(
                f"{standing.ignored} head records were not heads in this key (ignored)"
            )
    if not m["chain_verified"]:
        outcome.problem = Problem(
            "reported", 0, f"the server found the chain broken at export: {m['chain_problem']}"
        )
        return outcome
    scope = (
        "a complete chain"
        if m["complete"]
        else f"a filtered export ({json.dumps(m['filters'], sort_keys=True)}), so gaps "
        "between events cannot be checked here"
    )
    outcome.notes.insert(
        0,
        f"{len(events)} events, {scope}; manifest signed {m['exported_at']}, the server's "
        f"chain verified through event {m['chain_verified_through']}",
    )
    if restores:
        outcome.notes.append(f"{len(restores)} signed restore(s) on the chain")
    outcome.notes.append("per-event HMAC signatures need the server's secret: not checked")
    return outcome


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m apps.audit.offline_verify",
        description="Check an ATP audit export (JSON or JSON Lines) with the public key.",
    )
    parser.add_argument("export", type=Path)
    parser.add_argument("--public-key", type=Path, required=True, help="PEM public key")
    parser.add_argument(
        "--heads",
        type=Path,
        action="append",
        default=[],
        help="a signed heads file or sink directory (repeatable)",
    )
    args = parser.parse_args(argv)
    try:
        try:
            public = heads.public_key_from_pem(args.public_key.read_bytes())
        except OSError as exc:
            raise UnusableInput(f"cannot read {args.public_key}: {exc.strerror}") from None
        except heads.HeadKeyError as exc:
            raise UnusableInput(f"{args.public_key}: {exc}") from None
        events, manifests = load_export(args.export)
        records = [r for path in args.heads for r in heads.read_records(path)]
        outcome = verify_export(events, manifests, public, records)
    except UnusableInput as exc:
        print(f"UNUSABLE: {exc}", file=sys.stderr)
        return 2
    if outcome.ok:
        print("OK: " + "; ".join(outcome.notes))
        return 0
    problem = outcome.problem
    where = f" at event {problem.sequence}" if problem.sequence else ""
    print(f"BROKEN{where}: {problem.kind}: {problem.detail}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
