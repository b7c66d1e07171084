"""`manage.py atp_apply FILE [--prune] [--dry-run]`: apply a declarative configuration file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.audit.context import AuditActor, acting_as
from atp_site.lib.config_file import ConfigError, apply_config, load_config_file


class Command(BaseCommand):
    help = (
        "Create or update providers, models, tenants and API keys from a YAML file "
        "(docs/configuration.md). Exits with status 2, changing nothing, if the file is invalid."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="The YAML file, or - for standard input.")
        parser.add_argument(
            "--prune",
            action="store_true",
            help="Delete providers, models and tenants absent from the file; revoke absent keys.",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="Report what would change; change nothing."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        name = "stdin" if options["file"] == "-" else Path(options["file"]).name
        try:
            data = load_config_file(options["file"])
            with acting_as(AuditActor(actor=f"config:{name}", source="config")):
                report = apply_config(data, prune=options["prune"], dry_run=options["dry_run"])
        except ConfigError as exc:
            raise CommandError(f"Invalid configuration: {exc}", returncode=2) from None
        for line in report.lines():
            self.stdout.write(line)
