"""`manage.py atp_grant grant|revoke (--user U | --group G) PERMISSION... [--tenant T]`.

Grants and revocations are audited. Without --tenant a permission is held globally; with
one it must be a tenant permission and is held on that tenant only (django-guardian).
`manage.py atp_grant list` prints every permission the management API checks.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.audit.context import AuditActor, acting_as
from apps.tenants import permissions
from apps.tenants.selectors import tenant_resolve
from apps.tenants.services import permission_grant, permission_revoke


class Command(BaseCommand):
    help = "Grant or revoke management permissions, globally or on one tenant (audited)."

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        # Options may come before or after the permission names.
        parser.parse_args = parser.parse_intermixed_args  # type: ignore[method-assign]
        return parser

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=["grant", "revoke", "list"])
        parser.add_argument("permissions", nargs="*", help="app_label.codename ...")
        who = parser.add_mutually_exclusive_group()
        who.add_argument("--user", help="the username")
        who.add_argument("--group", help="the group name (created by grant when missing)")
        parser.add_argument("--tenant", help="hold the permissions on this tenant (slug or id)")

    def handle(self, *args: Any, action: str, **options: Any) -> None:
        if action == "list":
            self._list()
            return
        if not options["permissions"]:
            raise CommandError("Name at least one permission (app_label.codename).", returncode=2)
        holder = self._holder(options, create=action == "grant")
        tenant = None
        if options["tenant"]:
            tenant = tenant_resolve(options["tenant"])
            if tenant is None:
                raise CommandError(f"No tenant {options['tenant']!r}.", returncode=2)
        change = permission_grant if action == "grant" else permission_revoke
        with acting_as(AuditActor(actor="cli:atp_grant", source="cli")):
            for name in options["permissions"]:
                try:
                    change(permission=name, tenant=tenant, **holder)
                except ValidationError as exc:
                    raise CommandError("; ".join(exc.messages), returncode=2) from None
        where = f" on {tenant.slug}" if tenant else ""
        done = "granted" if action == "grant" else "revoked"
        self.stdout.write(f"{done}{where}: {', '.join(options['permissions'])}")

    def _holder(self, options: dict[str, Any], *, create: bool) -> dict[str, Any]:
        if options["user"]:
            user = get_user_model()._default_manager.filter(username=options["user"]).first()
            if user is None:
                raise CommandError(f"No user named {options['user']!r}.", returncode=2)
            return {"user": user}
        if options["group"]:
            if create:
                return {"group": Group.objects.get_or_create(name=options["group"])[0]}
            group = Group.objects.filter(name=options["group"]).first()
            if group is None:
                raise CommandError(f"No group named {options['group']!r}.", returncode=2)
            return {"group": group}
        raise CommandError("Give --user or --group.", returncode=2)

    def _list(self) -> None:
        names = set(permissions.MANAGER_PERMISSIONS) | permissions.DEDICATED
        names |= permissions.TENANT_PERMISSIONS | {"audit.view_exchange_body"}
        for name in sorted(names):
            app_label, codename = name.split(".")
            found = Permission.objects.filter(
                content_type__app_label=app_label, codename=codename
            ).first()
            notes = []
            if name in permissions.DEDICATED:
                notes.append("dedicated")
            if name in permissions.TENANT_PERMISSIONS:
                notes.append("also per tenant")
            suffix = f"  [{', '.join(notes)}]" if notes else ""
            self.stdout.write(f"{name:45} {found.name if found else ''}{suffix}")
