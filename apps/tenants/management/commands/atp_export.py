"""`manage.py atp_export [-o FILE]`: write the current configuration as YAML."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from apps.tenants.config import export_config_yaml


class Command(BaseCommand):
    help = (
        "Export providers, models, tenants and API keys in the atp_apply format. "
        "Secrets are written as env: references, never in clear."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("-o", "--output", help="Write to this file instead of stdout.")

    def handle(self, *args: Any, **options: Any) -> None:
        text = export_config_yaml()
        if options["output"]:
            Path(options["output"]).write_text(text, encoding="utf-8")
            self.stderr.write(f"Wrote {options['output']}.")
        else:
            self.stdout.write(text, ending="")
