"""Each deployment's price history starts with the prices it has, from its creation: so the
price in force at any moment since can be answered (apps.costs.catalog.price_at)."""

from django.db import migrations

PRICE_FIELDS = (
    "input_price",
    "output_price",
    "cached_input_price",
    "cache_write_price",
    "reasoning_price",
)


def backfill(apps, schema_editor):
    ModelDeployment = apps.get_model("providers", "ModelDeployment")
    PriceVersion = apps.get_model("costs", "PriceVersion")
    known = set(PriceVersion.objects.values_list("deployment_id", flat=True).distinct())
    PriceVersion.objects.bulk_create(
        [
            PriceVersion(
                deployment_id=deployment.pk,
                effective_from=deployment.created_at,
                source="manual",
                note="Prices held when the price history began.",
                **{name: getattr(deployment, name) for name in PRICE_FIELDS},
            )
            for deployment in ModelDeployment.objects.all()
            if deployment.pk not in known
        ],
        batch_size=500,
    )


class Migration(migrations.Migration):
    dependencies = [
        ("costs", "0003_rollup_cursor_spend_anomaly"),
        ("providers", "0005_deployment_prices_permission"),
    ]

    operations = [
        migrations.RunPython(backfill, migrations.RunPython.noop),
    ]
