"""Create the groups of the global roles.

Their permissions are not set here: apps.tenants.roles.roles_sync gives each group exactly
what its declaration resolves to after every migrate (post_migrate), once every app's
permissions exist, so later apps' permissions join their roles when their migrations run.
"""

from __future__ import annotations

from django.db import migrations

ROLES = (
    "super-admin",
    "platform-admin",
    "security-admin",
    "cost-admin",
    "auditor",
    "read-only",
)


def create_groups(apps, schema_editor) -> None:
    group = apps.get_model("auth", "Group")
    for name in ROLES:
        group.objects.get_or_create(name=name)


def remove_groups(apps, schema_editor) -> None:
    apps.get_model("auth", "Group").objects.filter(name__in=ROLES).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("tenants", "0007_tenant_members_and_role_permissions"),
    ]

    operations = [migrations.RunPython(create_groups, remove_groups)]
