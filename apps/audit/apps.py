"""The audit app: connects the authentication receivers and keeps the chain head present."""

from __future__ import annotations

from django.apps import AppConfig
from django.db.models.signals import post_migrate


def ensure_chain_head(using: str = "default", **kwargs) -> None:
    """Recreate the chain head after a flush empties it (as test database resets do).

    The head normally comes from a data migration; `flush` deletes it but then sends
    post_migrate, so appends after a flush still find the row they lock.
    """
    from apps.audit.chain import GENESIS_HASH
    from apps.audit.models import AuditChainHead

    AuditChainHead.objects.using(using).get_or_create(
        pk=1, defaults={"sequence": 0, "hash": GENESIS_HASH}
    )


class AuditConfig(AppConfig):
    name = "apps.audit"
    label = "audit"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from apps.audit import checks, signals  # noqa: F401 - checks register themselves

        signals.connect()
        post_migrate.connect(ensure_chain_head, sender=self, dispatch_uid="audit.chain_head")
