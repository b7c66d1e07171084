"""`manage.py audit_verify`: check the whole audit chain; exit 1 when it is broken."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from apps.audit.verify import verify_chain


class Command(BaseCommand):
    help = "Verify the audit chain: hashes, links, numbering and signatures."

    def handle(self, *args, **options) -> None:
        result = verify_chain()
        if result.ok:
            self.stdout.write(
                f"OK: {result.checked} events; head #{result.head_sequence} "
                f"{result.head_hash} (key {result.head_key_id or '-'})"
            )
            return
        problem = result.problem
        raise CommandError(
            f"BROKEN at event {problem.sequence}: {problem.kind}: {problem.detail} "
            f"({result.checked} events verified before it)",
            returncode=1,
        )
