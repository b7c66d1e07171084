"""`manage.py audit_public_key`: print the public key auditors check signed heads with."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from apps.audit import heads
from apps.audit.sealing import head_key


class Command(BaseCommand):
    help = (
        "Print the Ed25519 public key (PEM) of ATP_AUDIT_HEAD_KEY, which signs the audit "
        "chain's heads and exports. Give it to auditors: it verifies, it cannot sign."
    )

    requires_system_checks: list[str] = []

    def handle(self, *args, **options) -> None:
        try:
            key = head_key()
        except heads.HeadKeyError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(heads.public_key_pem(key), ending="")
        self.stderr.write(f"fingerprint {heads.fingerprint(key)}")
