"""`manage.py atp_admin_token --user NAME [--name N]`: create a personal admin token."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from guardian.models import GroupObjectPermission, UserObjectPermission

from apps.audit.context import AuditActor, acting_as
from apps.tenants.services import admin_token_create


class Command(BaseCommand):
    help = "Create a management API token for a user and print it once."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--user", required=True, help="The username the token acts as.")
        parser.add_argument("--name", default="cli", help="A label for the token.")

    def handle(self, *args: Any, **options: Any) -> None:
        user_model = get_user_model()
        try:
            user = user_model.objects.get(**{user_model.USERNAME_FIELD: options["user"]})
        except user_model.DoesNotExist:
            raise CommandError(f"No user named {options['user']!r}.") from None
        if not _holds_any_permission(user):
            self.stderr.write(
                f"Warning: {options['user']} holds no permission; the API will refuse the "
                "token (403) until they are granted some."
            )
        try:
            with acting_as(AuditActor(actor="cli:atp_admin_token", source="cli")):
                _, plaintext = admin_token_create(user=user, name=options["name"])
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from None
        # Only the token on stdout, so scripts can capture it.
        self.stdout.write(plaintext)


def _holds_any_permission(user: Any) -> bool:
    """Whether `user` holds anything the management API checks (global or per tenant)."""
    return bool(
        user.is_superuser
        or user.get_all_permissions()
        or UserObjectPermission.objects.filter(user=user).exists()
        or GroupObjectPermission.objects.filter(group__user=user).exists()
    )
