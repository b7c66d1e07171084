"""Built-in route overrides stored with the old defaults inherit the built-in's strategy and
tier: before blank meant "inherit", a row named atp/fast created without a strategy or tier
was saved as score/balanced, silently replacing the built-in's learned strategy and tier."""

from django.db import migrations

BUILTIN_NAMES = ("auto", "atp/fast", "atp/balanced", "atp/high")


def inherit(apps, schema_editor):
    Route = apps.get_model("routing", "Route")
    Route.objects.filter(name__in=BUILTIN_NAMES, strategy="score", tier="balanced").update(
        strategy="", tier=""
    )


class Migration(migrations.Migration):
    dependencies = [
        ("routing", "0004_route_strategy_tier_inherit"),
    ]

    operations = [
        migrations.RunPython(inherit, migrations.RunPython.noop),
    ]
