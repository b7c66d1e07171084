"""Event ids become time-ordered and the hash loses its unique index (apps.audit.models):
both made every insert touch a random index page, so appends slowed as the log grew.

On SQLite, dropping a unique constraint rebuilds the table, which drops its triggers:
the guards of 0007 are created again after it.
"""

import importlib

from django.db import migrations, models

import atp_site.lib.uuids

guards = importlib.import_module("apps.audit.migrations.0007_database_guards")


def recreate_sqlite_guards(apps, schema_editor):
    if schema_editor.connection.vendor == "sqlite":
        for statement in guards.SQLITE_CREATE:
            schema_editor.execute(statement, params=None)


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0010_console_jobs_and_search_indexes"),
    ]

    operations = [
        # Undone last: the guards come back after the reverse rebuild too.
        migrations.RunPython(migrations.RunPython.noop, recreate_sqlite_guards),
        migrations.AlterField(
            model_name="auditevent",
            name="event_id",
            field=models.UUIDField(default=atp_site.lib.uuids.uuid7, editable=False, unique=True),
        ),
        migrations.AlterField(
            model_name="auditevent",
            name="hash",
            field=models.CharField(max_length=64),
        ),
        migrations.RunPython(recreate_sqlite_guards, migrations.RunPython.noop),
    ]
