"""`manage.py audit_seal`: sign the chain's current end and publish it outside the database."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from apps.audit.models import AuditSignedHead
from apps.audit.sealing import audit_head_seal


class Command(BaseCommand):
    help = (
        "Sign the audit chain's last event with ATP_AUDIT_HEAD_KEY and append the signed "
        "head to the heads file (and ATP_AUDIT_HEAD_SINK), as the nightly job does."
    )

    def handle(self, *args, **options) -> None:
        row = audit_head_seal(reason=AuditSignedHead.Reason.SEALED)
        if row is None:
            self.stdout.write("The chain is empty: nothing to seal.")
            return
        self.stdout.write(f"Sealed head #{row.sequence} {row.hash} at {row.signed_at.isoformat()}")
