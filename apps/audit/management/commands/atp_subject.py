"""`manage.py atp_subject export|erase SUBJECT`: data-subject requests from the command line."""

from __future__ import annotations

import orjson
from django.core.management.base import BaseCommand, CommandError

from apps.audit.context import AuditActor, acting_as
from apps.audit.privacy import subject_erase, subject_export


class Command(BaseCommand):
    help = "Export everything held about a data subject (JSON), or erase it."

    def add_arguments(self, parser) -> None:
        parser.add_argument("action", choices=["export", "erase"])
        parser.add_argument("subject", help="the end-user id callers send as `user`, or a user id")
        parser.add_argument("-o", "--output", default="-", help="export file (default stdout)")
        parser.add_argument("--yes", action="store_true", help="confirm an erasure")

    def handle(self, *args, action: str, subject: str, output: str, yes: bool, **opts) -> None:
        if not subject.strip():
            raise CommandError("The subject must not be empty.", returncode=2)
        with acting_as(AuditActor(actor="cli:atp_subject", source="cli")):
            if action == "export":
                data = orjson.dumps(
                    subject_export(subject=subject), default=str, option=orjson.OPT_INDENT_2
                )
                if output == "-":
                    self.stdout.write(data.decode())
                else:
                    with open(output, "wb") as fh:
                        fh.write(data)
                return
            if not yes:
                raise CommandError("Erasure cannot be undone: add --yes to confirm.", returncode=2)
            result = subject_erase(subject=subject)
        self.stdout.write(
            f"erased: {result['requests_anonymised']} requests now name {result['tombstone']}; "
            f"{result['exchanges_deleted']} stored exchanges deleted"
        )
