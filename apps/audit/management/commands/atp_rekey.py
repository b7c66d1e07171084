"""`manage.py atp_rekey`: encrypt every stored secret again with the first encryption key.

Rotating ATP_ENCRYPTION_KEYS: put the new key first and keep the old ones after it (new
values are encrypted with the first key; every listed key decrypts), restart every
process, run this command, then remove the old keys once the spill files written before
the change are replayed (`manage.py atp_writebehind` shows them). What it re-encrypts:
provider API keys and stored request and response bodies. A value no configured key
decrypts is reported and left as it is; the command then exits with status 1.
"""

from __future__ import annotations

import getpass

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from apps.audit.context import AuditActor
from apps.audit.models import AuditEvent, StoredExchange
from apps.audit.services import audit_record
from apps.providers.models import Provider
from atp_site.lib import crypto

BATCH = 500


class Command(BaseCommand):
    help = (
        "Re-encrypt provider credentials and stored bodies with the first key of "
        "ATP_ENCRYPTION_KEYS, so the keys after it can be retired."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--dry-run", action="store_true", help="count what would change; write nothing"
        )

    def handle(self, *args, dry_run: bool = False, **options) -> None:
        first = crypto.key_ids()[0]
        counts = {"providers": 0, "stored_bodies": 0, "unreadable": 0}
        for provider in Provider.objects.exclude(api_key_encrypted="").only(
            "pk", "name", "api_key_encrypted"
        ):
            if crypto.key_id_of(provider.api_key_encrypted) == first:
                continue
            try:
                rotated = crypto.rotate(provider.api_key_encrypted)
            except crypto.DecryptionError:
                counts["unreadable"] += 1
                self.stderr.write(f"provider {provider.name}: no configured key decrypts it")
                continue
            counts["providers"] += 1
            if not dry_run:
                Provider.objects.filter(pk=provider.pk).update(api_key_encrypted=rotated)
        last = None
        while True:
            page = StoredExchange.objects.order_by("pk").only(
                "pk", "request_encrypted", "response_encrypted"
            )
            if last is not None:
                page = page.filter(pk__gt=last)
            rows = list(page[:BATCH])
            if not rows:
                break
            last = rows[-1].pk
            changed = []
            for row in rows:
                fields = ("request_encrypted", "response_encrypted")
                values = [getattr(row, f) for f in fields]
                if all(not v or crypto.key_id_of(v) == first for v in values):
                    continue
                try:
                    for field, value in zip(fields, values, strict=True):
                        setattr(row, field, crypto.rotate(value))
                except crypto.DecryptionError:
                    counts["unreadable"] += 1
                    self.stderr.write(f"stored exchange {row.pk}: no configured key decrypts it")
                    continue
                changed.append(row)
            counts["stored_bodies"] += len(changed)
            if changed and not dry_run:
                with transaction.atomic():
                    StoredExchange.objects.bulk_update(changed, fields, batch_size=BATCH)
        verb = "would re-encrypt" if dry_run else "re-encrypted"
        self.stdout.write(
            f"{verb} {counts['providers']} provider credentials and "
            f"{counts['stored_bodies']} stored exchanges with key {first}"
        )
        if not dry_run:
            audit_record(
                event_type="security.reencrypted",
                action="update",
                outcome=(
                    AuditEvent.Outcome.FAILURE
                    if counts["unreadable"]
                    else AuditEvent.Outcome.SUCCESS
                ),
                resource_type="encryption_key",
                resource_id=first,
                data=counts,
                actor=AuditActor(actor=getpass.getuser(), source=AuditEvent.Source.CLI),
            )
        if counts["unreadable"]:
            raise CommandError(
                f"{counts['unreadable']} values no configured key decrypts were left as they "
                "are: add the key that encrypted them to ATP_ENCRYPTION_KEYS and run again."
            )
