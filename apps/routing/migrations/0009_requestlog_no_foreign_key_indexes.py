"""The request log's foreign keys lose their single-column indexes (apps.routing.models):
the console's indexes lead with them where it looks them up, and each index cost every
insert. Dropped by name rather than by AlterField, which on SQLite rebuilt the whole table
once per field."""

from django.db import migrations, models

INDEXES = {
    "routing_requestlog_api_key_id_39970f2a": "api_key_id",
    "routing_requestlog_deployment_id_7c4f4f47": "deployment_id",
    "routing_requestlog_provider_id_02c72b37": "provider_id",
    "routing_requestlog_tenant_id_3d020776": "tenant_id",
}


def drop(apps, schema_editor):
    for name in INDEXES:
        schema_editor.execute(f'DROP INDEX IF EXISTS "{name}"', params=None)


def create(apps, schema_editor):
    for name, column in INDEXES.items():
        schema_editor.execute(
            f'CREATE INDEX IF NOT EXISTS "{name}" ON "routing_requestlog" ("{column}")',
            params=None,
        )


def unindexed(to: str) -> models.ForeignKey:
    return models.ForeignKey(
        blank=True,
        db_constraint=False,
        db_index=False,
        null=True,
        on_delete=models.deletion.DO_NOTHING,
        related_name="+",
        to=to,
    )


class Migration(migrations.Migration):
    dependencies = [
        ("providers", "0001_initial"),
        ("routing", "0008_requestlog_governance"),
        ("tenants", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField("requestlog", "api_key", unindexed("tenants.apikey")),
                migrations.AlterField(
                    "requestlog", "deployment", unindexed("providers.modeldeployment")
                ),
                migrations.AlterField("requestlog", "provider", unindexed("providers.provider")),
                migrations.AlterField("requestlog", "tenant", unindexed("tenants.tenant")),
            ],
            database_operations=[migrations.RunPython(drop, create)],
        )
    ]
