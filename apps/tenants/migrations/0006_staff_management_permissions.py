"""Keep existing staff users' access to the management API now that it checks permissions.

Before, every staff user could do anything under /api/v1/. This gives the staff users that
exist when it runs (superusers need nothing) the permissions that access amounted to,
through one group, `atp-managers`: every management action except the dedicated ones
(provider credentials, admin tokens for others, data-subject erasure, retention of audit
classifications) and stored bodies, which staff could not read before either. The lists
are frozen here on purpose: later permissions are not granted by this migration.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.management import create_permissions
from django.db import migrations

GROUP = "atp-managers"

CRUD = ["view", "add", "change", "delete"]
GRANTED: dict[str, dict[str, list[str]]] = {
    "tenants": {
        "tenant": CRUD,
        "apikey": ["view", "add", "change", "revoke", "rotate"],
        "admintoken": ["view", "add", "revoke"],
    },
    "providers": {"provider": CRUD, "modeldeployment": CRUD},
    "routing": {"route": CRUD},
    "audit": {
        "auditevent": ["view", "verify", "export", "report"],
        "storedexchange": ["view"],
        "retentionpolicy": CRUD,
    },
}
EXTRA = {"audit": ["export_data_subject"]}


def codenames() -> dict[str, list[str]]:
    names: dict[str, list[str]] = {}
    for app_label, models in GRANTED.items():
        names[app_label] = [
            f"{action}_{model}" for model, actions in models.items() for action in actions
        ]
        names[app_label] += EXTRA.get(app_label, [])
    return names


def grant_staff(apps, schema_editor) -> None:
    user_model = apps.get_model(settings.AUTH_USER_MODEL)
    staff = list(user_model.objects.filter(is_staff=True, is_superuser=False))
    if not staff:
        return
    # Permissions are normally created after all migrations; these are needed now.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    permission = apps.get_model("auth", "Permission")
    group_model = apps.get_model("auth", "Group")
    group, _ = group_model.objects.get_or_create(name=GROUP)
    for app_label, names in codenames().items():
        found = permission.objects.filter(content_type__app_label=app_label, codename__in=names)
        missing = set(names) - set(found.values_list("codename", flat=True))
        if missing:
            raise RuntimeError(f"permissions missing in {app_label}: {sorted(missing)}")
        group.permissions.add(*found)
    for user in staff:
        user.groups.add(group)


def remove_group(apps, schema_editor) -> None:
    apps.get_model("auth", "Group").objects.filter(name=GROUP).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("tenants", "0005_management_permissions"),
        ("providers", "0004_credentials_permission"),
        ("routing", "0003_feedback"),
        ("audit", "0008_management_permissions"),
    ]

    operations = [migrations.RunPython(grant_staff, remove_group)]
