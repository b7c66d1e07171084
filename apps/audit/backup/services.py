"""Backing up and restoring the database with the audit chain's signed heads.

`backup_create` (the daily job and `manage.py atp_backup`) seals the chain's head, copies
the heads file, dumps the database consistently, writes a signed manifest of what the
backup holds and which key ids it needs, packs it all into one archive (encrypted when a
backup key is configured), writes its checksum file, rotates old backups and records a
`backup.created` audit event. `backup_restore` (`manage.py atp_restore`) checks an
archive, loads it into an empty database and records the restore on the chain through
apps.audit.sealing.audit_restored. docs/backups.md is the operator's guide.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import shutil
import tempfile
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connections
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.recorder import MigrationRecorder
from django.utils import timezone

from apps.audit import heads
from apps.audit.backup import archive, cipher, database, rotation
from apps.audit.backup.keys import key_inventory, keys_missing, server_secrets
from apps.audit.models import AuditEvent, AuditSignedHead
from apps.audit.sealing import audit_head_seal, audit_restored, chain_end, head_key
from apps.audit.services import audit_record

logger = logging.getLogger(__name__)

CREATED = "backup.created"


class BackupError(Exception):
    """A backup or restore cannot go ahead; the message says why in one sentence."""


class BackupBusy(BackupError):
    """Another backup is running on this backup directory."""


# --- the manifest ---------------------------------------------------------------------------


def atp_version() -> str:
    try:
        with open(Path(settings.BASE_DIR) / "pyproject.toml", "rb") as fh:
            return str(tomllib.load(fh)["project"]["version"])
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        return "unknown"


def applied_migrations(alias: str = "default") -> dict[str, list[str]]:
    applied: dict[str, list[str]] = {}
    for app, name in MigrationRecorder(connections[alias]).applied_migrations():
        applied.setdefault(app, []).append(name)
    return {app: sorted(names) for app, names in sorted(applied.items())}


def manifest_build(
    *, created_at: datetime, files: list[tuple[str, Path | bytes]], inventory: dict[str, Any]
) -> dict[str, Any]:
    sequence, digest = chain_end()
    signed = AuditSignedHead.objects.exclude(reason=AuditSignedHead.Reason.VERIFIED)
    newest = signed.order_by("-sequence").values("sequence", "hash", "signed_at").first()
    connection = connections["default"]
    members = {}
    for name, content in files:
        if isinstance(content, bytes):
            members[name] = {"sha256": archive.sha256_of_bytes(content), "bytes": len(content)}
        else:
            members[name] = {"sha256": archive.sha256_of(content), "bytes": content.stat().st_size}
    return {
        "format": archive.FORMAT,
        "version": archive.VERSION,
        "created_at": heads.timestamp(created_at),
        "atp_version": atp_version(),
        "database": {
            "vendor": connection.vendor,
            "member": database.member_name(),
            "migrations": applied_migrations(),
        },
        "audit": {
            "chain_sequence": sequence,
            "chain_hash": digest,
            "signed_head": (
                {**newest, "signed_at": heads.timestamp(newest["signed_at"])} if newest else None
            ),
        },
        "keys": {**inventory, "included": any(name == archive.SECRETS for name, _ in files)},
        "members": members,
    }


# --- creating a backup ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BackupResult:
    path: Path
    sha256: str
    size: int
    encrypted: bool
    keys_included: bool
    chain_sequence: int
    rotated_out: list[Path] = field(default_factory=list)


def backup_dir() -> Path:
    return Path(settings.ATP_BACKUP_DIR)


def configured_passphrase() -> str:
    return settings.ATP_BACKUP_ENCRYPTION_KEY or ""


@contextlib.contextmanager
def _exclusive(directory: Path) -> Iterator[None]:
    """One backup at a time per backup directory, across processes (flock, released when
    the process dies)."""
    fd = os.open(directory / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BackupBusy(f"another backup is running in {directory}") from None
        yield
    finally:
        os.close(fd)


def _seal_if_moved() -> None:
    """Sign the chain's end (as the periodic seal does) so the backup carries a head
    vouching for every event it holds."""
    sequence, _ = chain_end()
    latest = AuditSignedHead.objects.exclude(reason=AuditSignedHead.Reason.VERIFIED)
    latest_sequence = latest.order_by("-sequence").values_list("sequence", flat=True).first()
    if sequence and sequence > (latest_sequence or 0):
        try:
            audit_head_seal(reason=AuditSignedHead.Reason.SEALED)
        except OSError:
            logger.exception("backup: the head was sealed in the database only")


STAGING = ".atp-backup-"


def _staging_dir() -> Path:
    """Where the dump waits to be packed: the data directory, private like the database
    itself. Never the backup directory, which may be copied off-site as it is written."""
    path = Path(settings.DATA_DIR) / "backup-staging"
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def _remove_stale(directory: Path, staging: Path, *, keep: Path) -> None:
    """What runs that died left (we hold the lock: no other run is live)."""
    for stale in staging.glob(STAGING + "*"):
        if stale != keep and stale.is_dir():
            shutil.rmtree(stale, ignore_errors=True)
    for partial in directory.glob(STAGING + "*.partial"):
        partial.unlink(missing_ok=True)


def backup_create(
    *,
    directory: Path | None = None,
    passphrase: str | None = None,
    include_keys: bool = False,
    rotate: bool = True,
    now: datetime | None = None,
    progress: Callable[[str], None] | None = None,
) -> BackupResult:
    """Write one backup archive into `directory` (ATP_BACKUP_DIR) and rotate old ones.

    `passphrase` encrypts the archive; `include_keys` adds the server's keys and needs it.
    Raises BackupBusy when another backup runs there, BackupError when it cannot be made.
    """
    say = progress or (lambda message: None)
    if include_keys and not passphrase:
        raise BackupError(
            "--include-keys needs an encrypted archive: set ATP_BACKUP_ENCRYPTION_KEY(_FILE) "
            "or give --encryption-key-file; the keys are never written in the clear"
        )
    if passphrase:
        try:
            cipher.check_passphrase(passphrase)
        except ValueError as exc:
            raise BackupError(str(exc)) from None
    directory = Path(directory or backup_dir())
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    created_at = (now or timezone.now()).replace(microsecond=0)
    name = rotation.archive_name(created_at, encrypted=bool(passphrase))
    target = directory / name
    if target.exists():
        raise BackupError(f"a backup named {name} already exists")
    staging = _staging_dir()
    with _exclusive(directory), tempfile.TemporaryDirectory(prefix=STAGING, dir=staging) as tmp:
        work = Path(tmp)
        _remove_stale(directory, staging, keep=work)
        say("Sealing the audit chain's head")
        _seal_if_moved()
        dump = work / database.member_name()
        files: list[tuple[str, Path | bytes]] = [(dump.name, dump)]
        heads_file = Path(settings.ATP_AUDIT_HEAD_FILE)
        if heads_file.exists():
            # Read before the dump: every head in it vouches for events the dump holds.
            files.append((archive.HEADS, heads_file.read_bytes()))
        say("Dumping the database")
        try:
            database.dump(dump)
        except database.DatabaseCopyError as exc:
            raise BackupError(str(exc)) from None
        files.append((archive.PUBLIC_KEY, heads.public_key_pem(head_key()).encode()))
        if include_keys:
            # Kept in memory and written only through the encryption.
            files.append((archive.SECRETS, json.dumps(server_secrets(), indent=1).encode()))
        say("Recording which key ids the data needs")
        manifest = manifest_build(created_at=created_at, files=files, inventory=key_inventory())
        raw = json.dumps(manifest, indent=1, sort_keys=True).encode()
        signature = archive.sign_manifest(raw, head_key())
        files = [(archive.MANIFEST, raw), (archive.SIGNATURE, signature), *files]
        say("Writing the archive" + (", encrypted" if passphrase else ""))
        partial = directory / f"{STAGING}{name}.partial"
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            if passphrase:
                writer = cipher.Writer(out, passphrase)
                archive.pack(writer, files)
                writer.close()
            else:
                archive.pack(out, files)
            out.flush()
            os.fsync(out.fileno())
        os.replace(partial, target)
    digest = archive.write_checksum(target)
    size = target.stat().st_size
    rotated_out = []
    if rotate:
        rotated_out = rotation.rotate(
            directory, daily=settings.ATP_BACKUP_KEEP_DAILY, weekly=settings.ATP_BACKUP_KEEP_WEEKLY
        )
    result = BackupResult(
        path=target,
        sha256=digest,
        size=size,
        encrypted=bool(passphrase),
        keys_included=include_keys,
        chain_sequence=manifest["audit"]["chain_sequence"],
        rotated_out=rotated_out,
    )
    audit_record(
        event_type=CREATED,
        action="create",
        resource_type="backup",
        resource_id=name,
        data={
            "file": name,
            "bytes": size,
            "sha256": digest,
            "protection": "aes-256-gcm" if passphrase else "none",
            "server_keys_included": include_keys,
            "database": manifest["database"]["vendor"],
            "chain_sequence": result.chain_sequence,
            "rotated_out": [p.name for p in rotated_out],
        },
        classification="restricted",
    )
    logger.info("backup %s written (%d bytes, sha256 %s)", name, size, digest)
    return result


def backup_scheduled() -> dict[str, Any]:
    """The daily job's backup (encrypted when ATP_BACKUP_ENCRYPTION_KEY is set), as the run's
    summary. A backup already running on the directory (`manage.py atp_backup`) makes this
    run do nothing; any other failure is raised, so the run is recorded failed and retried."""
    try:
        result = backup_create(passphrase=configured_passphrase() or None)
    except BackupBusy as exc:
        return {"skipped": True, "reason": str(exc)}
    return {
        "file": result.path.name,
        "bytes": result.size,
        "sha256": result.sha256,
        "protection": "aes-256-gcm" if result.encrypted else "none",
        "chain_sequence": result.chain_sequence,
        "rotated_out": [p.name for p in result.rotated_out],
    }


# --- restoring ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RestoreResult:
    manifest: dict[str, Any]
    event: AuditEvent
    head: AuditSignedHead
    migrations_applied: int
    heads_added: int
    verified: bool
    checksum_file: bool


def _unknown_migrations(manifest: dict[str, Any]) -> list[str]:
    known = set(MigrationLoader(None, ignore_no_migrations=True).disk_migrations)
    return [
        f"{app}.{name}"
        for app, names in manifest["database"]["migrations"].items()
        for name in names
        if (app, name) not in known
    ]


def _pending_migrations() -> int:
    executor = MigrationExecutor(connections["default"])
    return len(executor.migration_plan(executor.loader.graph.leaf_nodes()))


def _merge_heads(source: Path | None) -> int:
    """Add the backup's signed heads the heads file lacks; never remove or rewrite one.

    On a new host this puts the heads back outside the database; on the old one every
    line is there already. Heads beyond the restored point are superseded by the restore.
    """
    if source is None:
        return 0
    target = Path(settings.ATP_AUDIT_HEAD_FILE)
    present = {json.dumps(r, sort_keys=True) for r, _ in heads.read_records(target) if r}
    added = 0
    for record, _ in heads.read_records(source):
        if isinstance(record, dict) and json.dumps(record, sort_keys=True) not in present:
            target.parent.mkdir(parents=True, exist_ok=True)
            heads.append_line(target, record)
            added += 1
    return added


def _lacking(missing: list[str], keys: Any) -> str:
    included = isinstance(keys, dict) and keys.get("included")
    hint = "; the archive holds the keys: write them out with --extract-keys DIR"
    return "this server lacks " + "; ".join(missing) + (hint if included else "")


def archive_check(path: Path, work: Path, *, passphrase: str | None) -> archive.Opened:
    """Open and check an archive (checksums, decryption, signature); raise BackupError."""
    try:
        return archive.open_archive(
            path, work, passphrase=passphrase, public_key=head_key().public_key()
        )
    except archive.OtherHeadKey as exc:
        keys = (exc.manifest or {}).get("keys")
        try:
            missing = keys_missing(keys)
        except (TypeError, KeyError, AttributeError):
            missing = []
        if not any(m.startswith("audit head key") for m in missing):
            missing.append(f"audit head key {exc.key}")
        raise BackupError(_lacking(missing, keys)) from None
    except archive.ArchiveError as exc:
        raise BackupError(str(exc)) from None
    except cipher.WrongKey:
        raise BackupError("wrong backup encryption key or passphrase") from None


def backup_restore(
    path: Path,
    *,
    passphrase: str | None = None,
    force: bool = False,
    note: str = "",
    progress: Callable[[str], None] | None = None,
) -> RestoreResult:
    """Restore an archive into the configured database, then record the restore.

    Checks first, changes nothing until all pass: the checksum file, decryption, the
    manifest's signature, every member's checksum, the database vendor, that this ATP
    knows every migration the backup has, that this server holds every key id the data
    needs, and that the database is empty (unless `force`, which replaces its contents).
    Then loads the dump, applies this ATP's newer migrations, adds the backup's signed
    heads missing from the heads file, appends the signed `audit.restored` event
    (apps.audit.sealing.audit_restored) and verifies the whole chain.
    """
    from apps.audit.sealing import RestoreRefused
    from apps.audit.verify import verify_chain

    say = progress or (lambda message: None)
    path = Path(path)
    data_dir = Path(settings.DATA_DIR)
    with tempfile.TemporaryDirectory(prefix=".atp-restore-", dir=data_dir) as tmp:
        say("Checking the archive")
        opened = archive_check(path, Path(tmp), passphrase=passphrase)
        manifest = opened.manifest
        vendor = manifest["database"]["vendor"]
        if vendor != database.vendor():
            raise BackupError(
                f"the backup is of a {vendor} database; this server uses "
                f"{database.vendor()} (set DATABASE_URL to match)"
            )
        unknown = _unknown_migrations(manifest)
        if unknown:
            raise BackupError(
                f"the backup was made by a newer ATP ({manifest['atp_version']}): migration "
                f"{unknown[0]} is unknown here; upgrade ATP first"
            )
        missing = keys_missing(manifest["keys"])
        if missing:
            raise BackupError(_lacking(missing, manifest["keys"]))
        if not force and not database.is_empty():
            raise BackupError(
                "the database is not empty; restore into a new database, or give --force "
                "to replace everything it holds"
            )
        say(f"Restoring the {vendor} database")
        try:
            database.restore(opened.database, replace=force)
        except database.DatabaseCopyError as exc:
            raise BackupError(str(exc)) from None
        _forget_cached_rows()
        pending = _pending_migrations()
        if pending:
            from django.core.management import call_command

            say(f"Applying {pending} newer migrations")
            call_command("migrate", interactive=False, verbosity=0)
        heads_added = _merge_heads(opened.path(archive.HEADS))
    say("Recording the restore on the audit chain")
    note = note or f"restored {path.name} (created {manifest['created_at']})"
    try:
        event, head = audit_restored(note=note)
    except RestoreRefused as exc:
        raise BackupError(f"the restored audit chain is refused: {exc}") from None
    result = verify_chain(full=True)
    logger.info(
        "restored %s: chain restored through event %s, restore recorded as event %s",
        path.name,
        event.data["restored_sequence"],
        event.sequence,
    )
    return RestoreResult(
        manifest=manifest,
        event=event,
        head=head,
        migrations_applied=pending,
        heads_added=heads_added,
        verified=result.ok,
        checksum_file=opened.checksum_file,
    )


def _forget_cached_rows() -> None:
    """Rows cached in this process before the restore name rows of the old database."""
    from django.contrib.contenttypes.models import ContentType

    ContentType.objects.clear_cache()


def secrets_extract(path: Path, target: Path, *, passphrase: str | None) -> list[tuple[str, Path]]:
    """Write the keys an archive holds (--include-keys) into new files in `target`.

    Each file is created 0600 and never overwrites one. Returns (setting, file) pairs.
    """
    with tempfile.TemporaryDirectory(prefix=".atp-restore-", dir=Path(settings.DATA_DIR)) as tmp:
        opened = _opened_without_head_key(path, Path(tmp), passphrase=passphrase)
        secrets_path = opened.path(archive.SECRETS)
        if secrets_path is None:
            raise BackupError("the archive holds no keys (it was made without --include-keys)")
        values = json.loads(secrets_path.read_text())
    target.mkdir(parents=True, exist_ok=True, mode=0o700)
    written = []
    for setting, filename in (
        ("ATP_ENCRYPTION_KEYS", "encryption_keys"),
        ("ATP_AUDIT_SIGNING_KEYS", "audit_signing_keys"),
        ("ATP_AUDIT_HEAD_KEY", "audit_head_key"),
    ):
        value = values[setting]
        text = ",".join(value) if isinstance(value, list) else value
        file = target / filename
        try:
            fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            raise BackupError(f"{file} exists; give an empty directory") from None
        with os.fdopen(fd, "w") as fh:
            fh.write(text + "\n")
        written.append((setting, file))
    return written


def _opened_without_head_key(path: Path, work: Path, *, passphrase: str | None) -> archive.Opened:
    """An archive checked with the head key it carries: a server without the keys yet
    can read them out. Only an encrypted archive may hold keys, and its authenticated
    encryption already proves it unaltered by anyone without the passphrase."""
    try:
        return archive.open_archive(
            path, work, passphrase=passphrase, public_key=head_key().public_key()
        )
    except archive.OtherHeadKey:
        pass
    except archive.ArchiveError as exc:
        raise BackupError(str(exc)) from None
    except cipher.WrongKey:
        raise BackupError("wrong backup encryption key or passphrase") from None
    if not (work / archive.PUBLIC_KEY).exists():
        raise BackupError("the archive is signed with another head key and carries no public key")
    public_pem = (work / archive.PUBLIC_KEY).read_bytes()
    for child in work.iterdir():
        child.unlink()
    try:
        opened = archive.open_archive(
            path, work, passphrase=passphrase, public_key=heads.public_key_from_pem(public_pem)
        )
    except (archive.ArchiveError, heads.HeadKeyError) as exc:
        raise BackupError(str(exc)) from None
    if not opened.encrypted:
        raise BackupError("keys are only read from encrypted archives")
    return opened
