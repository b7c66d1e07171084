"""`manage.py atp_export [-o FILE]`: write the current configuration as YAML."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from apps.audit.context import AuditActor, acting_as
from apps.audit.services import audit_record
from atp_site.lib.config_file import export_config_yaml


class Command(BaseCommand):
    help = (
        "Export providers, models, tenants and API keys in the atp_apply format. "
        "Secrets are written as env: references, never in clear."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("-o", "--output", help="Write to this file instead of stdout.")

    def handle(self, *args: Any, **options: Any) -> None:
        text = export_config_yaml()
        # Exports are audited: the file describes every provider, tenant and key.
        with acting_as(AuditActor(actor="cli:atp_export", source="cli")):
            audit_record(
                event_type="config.exported",
                action="export",
                resource_type="config",
                data={"output": options["output"] or "stdout"},
            )
        if options["output"]:
            Path(options["output"]).write_text(text, encoding="utf-8")
            self.stderr.write(f"Wrote {options['output']}.")
        else:
            self.stdout.write(text, ending="")
