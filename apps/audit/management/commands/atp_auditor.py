"""`manage.py atp_auditor grant|revoke USER TENANT [--bodies]`: per-tenant audit access."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from apps.audit.access import auditor_grant, auditor_revoke
from apps.audit.context import AuditActor, acting_as
from apps.audit.selectors import tenant_resolve


class Command(BaseCommand):
    help = (
        "Let a user read one tenant's audit records (events, reports, exports, exchange "
        "metadata), and with --bodies its stored prompts and responses; or take it back."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("action", choices=["grant", "revoke"])
        parser.add_argument("username")
        parser.add_argument("tenant", help="tenant slug or id")
        parser.add_argument(
            "--bodies", action="store_true", help="also (or only, with revoke) stored bodies"
        )

    def handle(self, *args, action: str, username: str, tenant: str, bodies: bool, **opts):
        user = get_user_model()._default_manager.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user named {username!r}.", returncode=2)
        target = tenant_resolve(tenant)
        if target is None:
            raise CommandError(f"No tenant {tenant!r}.", returncode=2)
        with acting_as(AuditActor(actor="cli:atp_auditor", source="cli")):
            if action == "grant":
                granted = auditor_grant(user=user, tenant=target, bodies=bodies)
                self.stdout.write(f"{username} may now: {', '.join(granted)} on {target.slug}")
            else:
                revoked = auditor_revoke(user=user, tenant=target, bodies_only=bodies)
                self.stdout.write(
                    f"{username} may no longer: {', '.join(revoked)} on {target.slug}"
                )
