from django.apps import AppConfig
from django.db.models.signals import post_migrate


class TenantsConfig(AppConfig):
    name = "apps.tenants"
    label = "tenants"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from apps.tenants import permissions, roles

        # Every app's signal: the roles are synced on the last one, once all permissions exist.
        post_migrate.connect(roles.roles_sync_after_migrate, dispatch_uid="tenants.roles_sync")
        roles.connect_audit_receivers()
        permissions.watch_grants()
