"""Indexes of the console's request log filters and search, each with the newest-first sort."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("routing", "0006_config_version"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="requestlog",
            index=models.Index(fields=["model", "-created_at"], name="reqlog_model_created"),
        ),
        migrations.AddIndex(
            model_name="requestlog",
            index=models.Index(fields=["route", "-created_at"], name="reqlog_route_created"),
        ),
        migrations.AddIndex(
            model_name="requestlog",
            index=models.Index(fields=["end_user", "-created_at"], name="reqlog_enduser_created"),
        ),
        migrations.AddIndex(
            model_name="requestlog",
            index=models.Index(fields=["cost_usd"], name="reqlog_cost"),
        ),
        migrations.AddIndex(
            model_name="requestlog",
            index=models.Index(
                condition=models.Q(("shadow_of", ""), _negated=True),
                fields=["shadow_of"],
                name="reqlog_shadow_of",
            ),
        ),
    ]
