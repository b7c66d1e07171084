"""`manage.py audit_restored --note TEXT`: record a database restore, the one legitimate rewind."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.audit.context import AuditActor, acting_as
from apps.audit.sealing import RestoreRefused, audit_restored


class Command(BaseCommand):
    help = (
        "Run after restoring the database from a backup, before serving: appends a signed "
        "audit.restored event naming the restored head and the newer signed head it "
        "supersedes, so verification accepts the rewind. Refuses a chain broken otherwise."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--note", required=True, help="why and from which backup (kept on the chain)"
        )

    def handle(self, *args, note: str, **options) -> None:
        if not note.strip():
            raise CommandError("--note must say why and from which backup.", returncode=2)
        with acting_as(AuditActor(actor="cli:audit_restored", source="cli")):
            try:
                event, head = audit_restored(note=note.strip())
            except RestoreRefused as exc:
                raise CommandError(f"Refused: {exc}.", returncode=1) from None
        data = event.data
        superseded = (
            f"; supersedes signed head #{data['superseded_sequence']}"
            if data["superseded_sequence"]
            else ""
        )
        self.stdout.write(
            f"Restore recorded as event #{event.sequence}: restored head "
            f"#{data['restored_sequence']} {data['restored_hash']}{superseded}; "
            f"sealed head #{head.sequence}."
        )
