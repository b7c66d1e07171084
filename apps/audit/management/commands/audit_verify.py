"""`manage.py audit_verify [--full]`: check the audit chain; exit 1 when it is broken."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.audit.verify import verify_chain


class Command(BaseCommand):
    help = (
        "Verify the audit chain (hashes, links, numbering, signatures) and hold its end to "
        "the newest signed head. Starts from the latest verified checkpoint unless --full."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--full", action="store_true", help="walk the whole chain, not only what is new"
        )

    def handle(self, *args, full: bool = False, **options) -> None:
        result = verify_chain(full=full)
        walked = (
            "from the start"
            if result.full
            else f"from the verified checkpoint at event {result.start_sequence}"
        )
        if result.ok:
            signed = result.signed_head
            self.stdout.write(
                f"OK: {result.checked} events checked {walked}; head #{result.head_sequence} "
                f"{result.head_hash} (key {result.head_key_id or '-'}); "
                + (
                    f"signed head #{signed['sequence']} of {signed['signed_at']} holds"
                    if signed
                    else "no signed head yet"
                )
            )
            return
        problem = result.problem
        raise CommandError(
            f"BROKEN at event {problem.sequence}: {problem.kind}: {problem.detail} "
            f"({result.checked} events verified {walked} before it)",
            returncode=1,
        )
