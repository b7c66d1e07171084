"""The backup archive: a tar file of named members, a manifest of their checksums, signed.

Members (only these names are ever read back; nothing is extracted by a name the archive
chooses):

    manifest.json                 what the backup holds and needs (see services.manifest_build)
    manifest.sig                  the manifest's SHA-256, signed with the audit head key
    database.pgdump               pg_dump --format=custom (PostgreSQL), or
    database.sqlite3.gz           the SQLite online backup, gzip-compressed
    audit_heads.jsonl             the heads file (signed heads kept outside the database)
    audit_head_public_key.pem     the public half of the head key, for offline checks
    secrets.json                  the server's keys: only with --include-keys, only encrypted

The archive file is the tar, or the tar encrypted (apps.audit.backup.cipher, `.tar.enc`).
Beside it, `<archive>.sha256` holds the SHA-256 of the file as written, in `sha256sum`
format, so storage damage shows before anything is decrypted or read.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from apps.audit import heads
from apps.audit.backup import cipher

FORMAT = "atp-backup"
VERSION = 1
MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
HEADS = "audit_heads.jsonl"
PUBLIC_KEY = "audit_head_public_key.pem"
SECRETS = "secrets.json"
DATABASE_MEMBERS = ("database.pgdump", "database.sqlite3.gz")
KNOWN = (MANIFEST, SIGNATURE, *DATABASE_MEMBERS, HEADS, PUBLIC_KEY, SECRETS)
MANIFEST_STATEMENT = "atp.backup.manifest"


class ArchiveError(Exception):
    """The archive cannot be used: damaged, altered, in another key, or not a backup."""


class OtherHeadKey(ArchiveError):
    """The manifest is signed with a head key this server does not hold."""

    def __init__(self, key: str, manifest: dict[str, Any] | None) -> None:
        super().__init__(f"the manifest is signed with audit head key {key}")
        self.key = key
        # What the manifest says, unverified: only for telling the operator what is missing.
        self.manifest = manifest


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def checksum_path(archive: Path) -> Path:
    return archive.with_name(archive.name + ".sha256")


def write_checksum(archive: Path) -> str:
    digest = sha256_of(archive)
    checksum_path(archive).write_text(f"{digest}  {archive.name}\n")
    return digest


def sign_manifest(manifest_bytes: bytes, key: Any) -> bytes:
    statement = {
        "type": MANIFEST_STATEMENT,
        "v": VERSION,
        "sha256": hashlib.sha256(manifest_bytes).hexdigest(),
    }
    return json.dumps(heads.sign(key, statement), sort_keys=True).encode()


def pack(target: BinaryIO, files: list[tuple[str, Path | bytes]]) -> None:
    """Write a tar of `files` (name, and a path or the bytes themselves) to `target`, as a
    stream: nothing else is written anywhere."""
    with tarfile.open(fileobj=target, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for name, content in files:
            info = tarfile.TarInfo(name)
            info.mode = 0o600
            info.mtime = int(time.time())
            if isinstance(content, bytes):
                info.size = len(content)
                tar.addfile(info, io.BytesIO(content))
            else:
                info.size = content.stat().st_size
                with open(content, "rb") as fh:
                    tar.addfile(info, fh)


def sha256_of_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True, slots=True)
class Opened:
    """An archive checked and unpacked into `work`."""

    work: Path
    manifest: dict[str, Any]
    encrypted: bool
    checksum_file: bool

    def path(self, name: str) -> Path | None:
        path = self.work / name
        return path if path.exists() else None

    @property
    def database(self) -> Path:
        return self.work / self.manifest["database"]["member"]


def open_archive(archive: Path, work: Path, *, passphrase: str | None, public_key: Any) -> Opened:
    """Check `archive` and unpack its members into `work`.

    In this order: the checksum file (when present), decryption (authenticated), the
    manifest's signature under `public_key` (the head key's), then every member's SHA-256
    against the manifest. Raises ArchiveError (OtherHeadKey when the manifest is signed
    with another head key) or cipher.WrongKey.
    """
    if not archive.is_file():
        raise ArchiveError(f"{archive} is not a file")
    sidecar = checksum_path(archive)
    if sidecar.exists():
        expected = sidecar.read_text().split()[:1]
        if not expected or expected[0].lower() != sha256_of(archive):
            raise ArchiveError(
                f"checksum mismatch: {archive.name} does not match {sidecar.name} "
                "(the file is damaged or was changed)"
            )
    encrypted = cipher.is_encrypted(archive)
    tar_path = archive
    if encrypted:
        if not passphrase:
            raise ArchiveError(
                "the archive is encrypted: give its key with --decrypt-key-file or "
                "ATP_BACKUP_ENCRYPTION_KEY(_FILE)"
            )
        tar_path = work / "archive.tar"
        try:
            with open(archive, "rb") as src, open(tar_path, "wb") as out:
                cipher.decrypt(src, out, passphrase)
        except cipher.Damaged as exc:
            raise ArchiveError(f"the encrypted archive is damaged: {exc}") from None
    _unpack(tar_path, work)
    if encrypted:
        tar_path.unlink()
    manifest = _checked_manifest(work, public_key)
    return Opened(work, manifest, encrypted, sidecar.exists())


def _unpack(tar_path: Path, work: Path) -> None:
    try:
        with tarfile.open(tar_path, "r:") as tar:
            for info in tar:
                if info.name not in KNOWN or not info.isfile():
                    raise ArchiveError(f"unexpected member {info.name!r}: not an ATP backup")
                source = tar.extractfile(info)
                with open(work / info.name, "wb") as out:
                    while block := source.read(1 << 20):
                        out.write(block)
    except (tarfile.TarError, EOFError) as exc:
        raise ArchiveError(f"the archive is damaged or not a tar file ({exc})") from None


def _checked_manifest(work: Path, public_key: Any) -> dict[str, Any]:
    manifest_path, signature_path = work / MANIFEST, work / SIGNATURE
    if not manifest_path.exists() or not signature_path.exists():
        raise ArchiveError("the archive has no signed manifest: not an ATP backup")
    raw = manifest_path.read_bytes()
    try:
        record = json.loads(signature_path.read_bytes())
        manifest = json.loads(raw)
    except ValueError:
        raise ArchiveError("the manifest is damaged") from None
    try:
        statement = heads.verified_statement(record, public_key)
    except heads.Unverifiable:
        key = str(record.get("key") if isinstance(record, dict) else "?")
        raise OtherHeadKey(key, manifest if isinstance(manifest, dict) else None) from None
    if (
        statement is None
        or statement.get("type") != MANIFEST_STATEMENT
        or statement.get("sha256") != hashlib.sha256(raw).hexdigest()
    ):
        raise ArchiveError("the manifest's signature does not verify: the archive was altered")
    if manifest.get("format") != FORMAT or manifest.get("version") != VERSION:
        raise ArchiveError(
            f"unsupported backup format {manifest.get('format')!r} "
            f"version {manifest.get('version')!r}"
        )
    members = manifest.get("members", {})
    for name, expected in members.items():
        path = work / name
        if name not in KNOWN or not path.exists():
            raise ArchiveError(f"member {name} is missing from the archive")
        if sha256_of(path) != expected["sha256"]:
            raise ArchiveError(f"checksum mismatch: member {name} is damaged or was changed")
    extra = {p.name for p in work.iterdir()} - set(members) - {MANIFEST, SIGNATURE}
    if extra:
        raise ArchiveError(f"member {sorted(extra)[0]} is not in the manifest")
    return manifest
