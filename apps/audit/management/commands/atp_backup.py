"""`manage.py atp_backup`: write one backup archive now (docs/backups.md)."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.audit.backup import services
from apps.audit.context import AuditActor, acting_as


def read_key_file(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise CommandError(f"Cannot read the key file {path}: {exc.strerror}.") from None


class Command(BaseCommand):
    help = (
        "Back up the database consistently with the audit chain's signed heads into one "
        "archive (ATP_BACKUP_DIR), with a checksum file, then rotate old backups. Encrypted "
        "when ATP_BACKUP_ENCRYPTION_KEY(_FILE) or --encryption-key-file gives a passphrase."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dir", help="write here instead of ATP_BACKUP_DIR")
        parser.add_argument(
            "--encryption-key-file",
            help="file holding the passphrase to encrypt with (else ATP_BACKUP_ENCRYPTION_KEY)",
        )
        parser.add_argument(
            "--include-keys",
            action="store_true",
            help="also store the server's encryption, signing and head keys (encrypted only)",
        )
        parser.add_argument("--no-rotate", action="store_true", help="keep every old backup")

    def handle(self, *args, **options) -> None:
        passphrase = services.configured_passphrase()
        if options["encryption_key_file"]:
            passphrase = read_key_file(options["encryption_key_file"])
        with acting_as(AuditActor(actor="cli:atp_backup", source="cli")):
            try:
                result = services.backup_create(
                    directory=Path(options["dir"]) if options["dir"] else None,
                    passphrase=passphrase or None,
                    include_keys=options["include_keys"],
                    rotate=not options["no_rotate"],
                    progress=lambda message: self.stderr.write(message + "..."),
                )
            except services.BackupError as exc:
                raise CommandError(f"No backup was made: {exc}.", returncode=1) from None
        protection = "encrypted" if result.encrypted else "not encrypted"
        keys = ", with the server's keys" if result.keys_included else ""
        self.stdout.write(
            f"Backup written: {result.path} ({result.size:,} bytes, {protection}{keys}; "
            f"audit chain through event #{result.chain_sequence}); sha256 {result.sha256} "
            f"in {result.path.name}.sha256."
        )
        for path in result.rotated_out:
            self.stdout.write(f"Rotated out: {path.name}")
