"""Indexes of the console's request log filters and search, each with the newest-first sort,
built without blocking the request log's writes (atp_site.lib.migrations)."""

from django.db import migrations, models

from atp_site.lib.migrations import AddIndexOnline


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY on PostgreSQL
    dependencies = [
        ("routing", "0006_config_version"),
    ]

    operations = [
        AddIndexOnline(
            model_name="requestlog",
            index=models.Index(fields=["model", "-created_at"], name="reqlog_model_created"),
        ),
        AddIndexOnline(
            model_name="requestlog",
            index=models.Index(fields=["route", "-created_at"], name="reqlog_route_created"),
        ),
        AddIndexOnline(
            model_name="requestlog",
            index=models.Index(fields=["end_user", "-created_at"], name="reqlog_enduser_created"),
        ),
        AddIndexOnline(
            model_name="requestlog",
            index=models.Index(fields=["cost_usd"], name="reqlog_cost"),
        ),
        AddIndexOnline(
            model_name="requestlog",
            index=models.Index(
                condition=models.Q(("shadow_of", ""), _negated=True),
                fields=["shadow_of"],
                name="reqlog_shadow_of",
            ),
        ),
    ]
