"""`manage.py atp_restore ARCHIVE`: restore a backup into the configured database."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.audit.backup import services
from apps.audit.context import AuditActor, acting_as
from apps.audit.management.commands.atp_backup import read_key_file


class Command(BaseCommand):
    help = (
        "Restore a backup archive into the configured database (which must be empty, unless "
        "--force), then record the restore on the audit chain (a signed audit.restored "
        "event) and verify the chain. Stop every ATP process using the database first."
    )
    # The database may be empty or about to be replaced: no checks that read it.
    requires_system_checks: list[str] = []
    requires_migrations_checks = False

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("archive", help="the .tar or .tar.enc backup file")
        parser.add_argument(
            "--decrypt-key-file",
            help="file holding the archive's passphrase (else ATP_BACKUP_ENCRYPTION_KEY)",
        )
        parser.add_argument(
            "--force",
            action="store_true",
            help="replace whatever the database holds (default: refuse a non-empty database)",
        )
        parser.add_argument("--note", default="", help="why (kept on the audit chain)")
        parser.add_argument(
            "--extract-keys",
            metavar="DIR",
            help="only write the keys the archive holds (--include-keys) into new files in DIR",
        )
        parser.add_argument("--yes", action="store_true", help="do not ask for confirmation")

    def handle(self, *args, **options) -> None:
        archive = Path(options["archive"])
        passphrase = services.configured_passphrase()
        if options["decrypt_key_file"]:
            passphrase = read_key_file(options["decrypt_key_file"])
        if options["extract_keys"]:
            self._extract(archive, Path(options["extract_keys"]), passphrase)
            return
        if not options["yes"] and not self._confirmed(archive, options["force"]):
            raise CommandError("Nothing was restored.", returncode=1)
        with acting_as(AuditActor(actor="cli:atp_restore", source="cli")):
            try:
                result = services.backup_restore(
                    archive,
                    passphrase=passphrase or None,
                    force=options["force"],
                    note=options["note"].strip(),
                    progress=lambda message: self.stderr.write(message + "..."),
                )
            except services.BackupError as exc:
                raise CommandError(f"Not restored: {exc}.", returncode=1) from None
        data = result.event.data
        superseded = (
            f", superseding signed head #{data['superseded_sequence']}"
            if data["superseded_sequence"]
            else ""
        )
        self.stdout.write(
            f"Restored {archive.name} (made {result.manifest['created_at']}): audit chain "
            f"restored through event #{data['restored_sequence']}{superseded}; recorded as "
            f"event #{result.event.sequence}, sealed head #{result.head.sequence}."
        )
        if not result.checksum_file:
            self.stdout.write(
                f"No {archive.name}.sha256 beside the archive: checked the members' checksums "
                "and the manifest's signature only."
            )
        if result.migrations_applied:
            self.stdout.write(f"Applied {result.migrations_applied} newer migrations.")
        if result.heads_added:
            self.stdout.write(f"Added {result.heads_added} signed heads to the heads file.")
        if not result.verified:
            raise CommandError(
                "The restored audit chain does not verify; run `manage.py audit_verify --full`.",
                returncode=1,
            )
        self.stdout.write("Audit chain verified.")

    def _confirmed(self, archive: Path, force: bool) -> bool:
        what = "REPLACE everything the database holds" if force else "load it into the database"
        try:
            answer = input(f"Restore {archive.name} and {what}? Type 'yes' to go on: ")
        except EOFError:  # no terminal: only --yes goes on
            return False
        return answer.strip().lower() == "yes"

    def _extract(self, archive: Path, target: Path, passphrase: str) -> None:
        try:
            written = services.secrets_extract(archive, target, passphrase=passphrase or None)
        except services.BackupError as exc:
            raise CommandError(f"No keys were written: {exc}.", returncode=1) from None
        for setting, path in written:
            self.stdout.write(f"{setting}: {path}")
        self.stdout.write(
            "Give these values to every ATP process (docs/backups.md), then run the "
            "restore again without --extract-keys."
        )
