"""Signed heads: Ed25519 statements that the audit chain reached a sequence with a hash.

A statement is a small JSON object signed with the head key (ATP_AUDIT_HEAD_KEY). Three
kinds exist, told apart by `type`:

- `atp.audit.head`: the chain's event `sequence` has `hash` (at `signed_at`, for `reason`;
  `verified` says whether a verification up to there passed, failed, or was not run);
- `atp.audit.restore`: the database was restored to `restored_sequence`/`restored_hash`;
  heads signed before `at` beyond that point are superseded, not evidence of truncation;
- `atp.audit.export`: what an export holds (apps.audit.api.views), for offline checking.

A signed record is `{"statement": {...}, "key": <fingerprint>, "signature": <base64>}`;
the signature covers the statement's canonical bytes: JSON with sorted keys, no
whitespace and ASCII escapes (`json.dumps(statement, sort_keys=True,
separators=(",", ":"))`). Because each event's hash covers the hash before it, a signed
head over one event's hash vouches for the whole chain up to it.

This module is Django-free (the offline verifier imports it). It also reads and writes
the two places heads are kept outside the database: an append-only JSON Lines file and a
sink directory holding one file per head.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

HEAD = "atp.audit.head"
RESTORE = "atp.audit.restore"
EXPORT = "atp.audit.export"
VERSION = 1

# A plain secret (not a PEM key) must be at least this long; the key's seed is derived
# from it with HKDF-SHA256 under this label, so the same secret always gives the same key.
MIN_SECRET_CHARS = 32
SEED_INFO = b"atp audit head key v1"


class HeadKeyError(ValueError):
    """ATP_AUDIT_HEAD_KEY is neither an Ed25519 PEM private key nor a long enough secret."""


def private_key_from(text: str) -> Ed25519PrivateKey:
    """The head key from a PEM (PKCS#8) Ed25519 private key or a high-entropy secret."""
    text = text.strip()
    if text.startswith("-----BEGIN"):
        try:
            key = serialization.load_pem_private_key((text + "\n").encode(), password=None)
        except (ValueError, TypeError) as exc:
            raise HeadKeyError(
                f"ATP_AUDIT_HEAD_KEY is not a readable unencrypted PEM private key ({exc})."
            ) from None
        if not isinstance(key, Ed25519PrivateKey):
            raise HeadKeyError("ATP_AUDIT_HEAD_KEY is a PEM private key, but not an Ed25519 one.")
        return key
    if len(text) < MIN_SECRET_CHARS:
        raise HeadKeyError(
            f"ATP_AUDIT_HEAD_KEY must be an Ed25519 PEM private key or a random secret of at "
            f"least {MIN_SECRET_CHARS} characters."
        )
    seed = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=SEED_INFO).derive(
        text.encode()
    )
    return Ed25519PrivateKey.from_private_bytes(seed)


def public_key_pem(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def public_key_from_pem(text: str | bytes) -> Ed25519PublicKey:
    data = text.encode() if isinstance(text, str) else text
    try:
        key = serialization.load_pem_public_key(data)
    except ValueError as exc:
        raise HeadKeyError(f"not a PEM public key ({exc})") from None
    if not isinstance(key, Ed25519PublicKey):
        raise HeadKeyError("the public key is not an Ed25519 key")
    return key


def fingerprint(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    """A short name for a key: the first 16 hex digits of SHA-256 over its raw public bytes."""
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def canonical(statement: Mapping[str, Any]) -> bytes:
    return json.dumps(statement, sort_keys=True, separators=(",", ":")).encode()


def timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_timestamp(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def sign(key: Ed25519PrivateKey, statement: Mapping[str, Any]) -> dict[str, Any]:
    """A signed record of `statement`."""
    signature = key.sign(canonical(statement))
    return {
        "statement": dict(statement),
        "key": fingerprint(key),
        "signature": base64.b64encode(signature).decode(),
    }


class Unverifiable(Exception):
    """A record is malformed or signed with a key we do not hold."""


def verified_statement(record: Any, public: Ed25519PublicKey) -> dict[str, Any] | None:
    """The statement of a well-formed record, or None when its signature does not verify.

    Raises Unverifiable for a record that is not one at all or names another key.
    """
    if not isinstance(record, Mapping):
        raise Unverifiable("not a signed record")
    statement, key, signature = (
        record.get("statement"),
        record.get("key"),
        record.get("signature"),
    )
    if not isinstance(statement, Mapping) or not isinstance(signature, str):
        raise Unverifiable("not a signed record")
    if key != fingerprint(public):
        raise Unverifiable(f"signed with another key ({key})")
    try:
        public.verify(base64.b64decode(signature, validate=True), canonical(statement))
    except (InvalidSignature, ValueError):
        return None
    return dict(statement)


# --- heads ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SignedHead:
    """A head statement whose signature was checked, and where it was found."""

    sequence: int
    hash: str
    signed_at: datetime
    reason: str
    verified: bool | None
    source: str

    @classmethod
    def from_statement(cls, statement: Mapping[str, Any], source: str) -> SignedHead:
        if statement.get("type") != HEAD:
            raise Unverifiable("not a head statement")
        try:
            return cls(
                sequence=int(statement["sequence"]),
                hash=str(statement["hash"]),
                signed_at=parse_timestamp(statement["signed_at"]),
                reason=str(statement.get("reason", "")),
                verified=statement.get("verified"),
                source=source,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise Unverifiable(f"malformed head statement ({exc})") from None


def head_statement(
    *, sequence: int, digest: str, signed_at: datetime, reason: str, verified: bool | None
) -> dict[str, Any]:
    return {
        "type": HEAD,
        "v": VERSION,
        "sequence": sequence,
        "hash": digest,
        "signed_at": timestamp(signed_at),
        "reason": reason,
        "verified": verified,
    }


@dataclass(frozen=True, slots=True)
class Restore:
    """A restore statement: the chain was legitimately rewound to `sequence`/`hash` at `at`."""

    sequence: int
    hash: str
    at: datetime

    @classmethod
    def from_statement(cls, statement: Mapping[str, Any]) -> Restore:
        if statement.get("type") != RESTORE:
            raise Unverifiable("not a restore statement")
        try:
            return cls(
                sequence=int(statement["restored_sequence"]),
                hash=str(statement["restored_hash"]),
                at=parse_timestamp(statement["at"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise Unverifiable(f"malformed restore statement ({exc})") from None

    def supersedes(self, head: SignedHead) -> bool:
        """Whether `head` was signed before this restore, beyond the point restored to."""
        return head.sequence > self.sequence and head.signed_at <= self.at


def restore_statement(
    *,
    sequence: int,
    digest: str,
    at: datetime,
    note: str,
    supersedes: SignedHead | None,
) -> dict[str, Any]:
    return {
        "type": RESTORE,
        "v": VERSION,
        "restored_sequence": sequence,
        "restored_hash": digest,
        "at": timestamp(at),
        "note": note,
        "supersedes_sequence": supersedes.sequence if supersedes else None,
        "supersedes_hash": supersedes.hash if supersedes else None,
    }


@dataclass(frozen=True, slots=True)
class BadHead:
    """A record that names our key but whose signature does not verify."""

    source: str
    sequence: Any


@dataclass(frozen=True, slots=True)
class Standing:
    """What a set of head records says: the newest head still standing, or a forged one."""

    head: SignedHead | None
    bad: BadHead | None
    ignored: int


def _claimed_sequence(record: Any) -> int | None:
    statement = record.get("statement") if isinstance(record, Mapping) else None
    if not isinstance(statement, Mapping) or statement.get("type") != HEAD:
        return None
    sequence = statement.get("sequence")
    return sequence if isinstance(sequence, int) and not isinstance(sequence, bool) else None


def standing_head(
    records: Iterable[tuple[Any, str]],
    public: Ed25519PublicKey,
    restores: Iterable[Restore],
    *,
    signed_until: datetime | None = None,
) -> Standing:
    """The signed head with the highest sequence that no restore superseded.

    Signatures are checked from the highest claimed sequence down, until a standing head
    is found: a record naming our key whose signature fails is reported (someone forged or
    altered it); records in another key, malformed lines (a line torn by a crash) and other
    statements prove nothing either way and are only counted. With `signed_until`, heads
    signed later are left out (what an export made at that moment must already cover).
    """
    restores = list(restores)
    ignored = 0
    candidates = []
    for record, source in records:
        sequence = _claimed_sequence(record)
        if sequence is None:
            ignored += 1
        else:
            candidates.append((sequence, source, record))
    candidates.sort(key=lambda c: c[0], reverse=True)
    for sequence, source, record in candidates:
        try:
            statement = verified_statement(record, public)
            if statement is None:
                return Standing(None, BadHead(source, sequence), ignored)
            head = SignedHead.from_statement(statement, source)
        except Unverifiable:
            ignored += 1
            continue
        if signed_until is not None and head.signed_at > signed_until:
            continue
        if not any(r.supersedes(head) for r in restores):
            return Standing(head, None, ignored)
    return Standing(None, None, ignored)


# --- files outside the database ---------------------------------------------------------------


def append_line(path: Path, record: Mapping[str, Any]) -> None:
    """Append one record to a JSON Lines file and fsync it (created 0600 when missing).

    Opened with O_APPEND, so concurrent writers never overwrite each other's lines; a line
    torn by a crash is closed off before the next one so it cannot swallow it.
    """
    line = json.dumps(record, sort_keys=True, separators=(",", ":")).encode() + b"\n"
    created = not path.exists()
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            line = b"\n" + line
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)
    if created:
        _fsync_directory(path.parent)


def write_new_file(directory: Path, record: Mapping[str, Any]) -> Path:
    """Write one record as a new file in `directory`, never replacing one (O_EXCL).

    Names sort by sequence, so readers find the newest heads without opening every file;
    object-lock buckets and WORM volumes that forbid rewriting a file accept this.
    """
    statement = record["statement"]
    stamp = statement.get("signed_at") or statement.get("at") or ""
    digits = "".join(ch for ch in stamp if ch.isdigit())
    sequence = statement.get("sequence", statement.get("restored_sequence", 0))
    name = f"{int(sequence):020d}-{digits}-{record['signature'][:8].replace('/', '_')}.json"
    path = directory / name
    data = json.dumps(record, sort_keys=True, separators=(",", ":")).encode() + b"\n"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    _fsync_directory(directory)
    return path


def _fsync_directory(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def read_records(path: Path, label: str | None = None) -> Iterator[tuple[Any, str]]:
    """Every record in a heads file or sink directory, with where it was found.

    Where is `label` (default: the path) with the line number or file name. Lines or
    files that are not JSON are yielded as None (counted, never trusted).
    """
    label = label or str(path)
    if path.is_dir():
        for child in sorted(path.glob("*.json")):
            yield _parse(child.read_bytes()), f"{label} {child.name}"
        return
    if not path.exists():
        return
    with path.open("rb") as fh:
        for number, raw in enumerate(fh, start=1):
            if raw.strip():
                yield _parse(raw), f"{label} line {number}"


def _parse(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return None
