"""`manage.py atp_subject export|erase --tenant T SUBJECT`: data-subject requests from the CLI."""

from __future__ import annotations

import orjson
from django.core.management.base import BaseCommand, CommandError

from apps.audit.context import AuditActor, acting_as
from apps.audit.privacy import subject_erase, subject_export
from apps.tenants.selectors import tenant_resolve


class Command(BaseCommand):
    help = (
        "Export everything one tenant holds about a data subject (JSON, stored bodies "
        "decrypted, each reveal audited), or erase it."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("action", choices=["export", "erase"])
        parser.add_argument("subject", help="the end-user id the tenant sends as `user`")
        parser.add_argument(
            "--tenant", required=True, help="the tenant (slug or id) the subject belongs to"
        )
        parser.add_argument("-o", "--output", default="-", help="export file (default stdout)")
        parser.add_argument(
            "--no-bodies", action="store_true", help="export without the stored bodies"
        )
        parser.add_argument("--yes", action="store_true", help="confirm an erasure")

    def handle(self, *args, action: str, subject: str, tenant: str, output: str, **opts) -> None:
        if not subject.strip():
            raise CommandError("The subject must not be empty.", returncode=2)
        target = tenant_resolve(tenant)
        if target is None:
            raise CommandError(f"No tenant {tenant!r}.", returncode=2)
        with acting_as(AuditActor(actor="cli:atp_subject", source="cli")):
            if action == "export":
                document = subject_export(
                    tenant=target, subject=subject, bodies=not opts["no_bodies"]
                )
                data = orjson.dumps(document, default=str, option=orjson.OPT_INDENT_2)
                if output == "-":
                    self.stdout.write(data.decode())
                else:
                    with open(output, "wb") as fh:
                        fh.write(data)
                return
            if not opts["yes"]:
                raise CommandError("Erasure cannot be undone: add --yes to confirm.", returncode=2)
            result = subject_erase(tenant=target, subject=subject)
        self.stdout.write(
            f"erased at {target.slug}: {result['requests_anonymised']} requests now name "
            f"{result['tombstone']}; {result['exchanges_deleted']} stored exchanges deleted"
        )
