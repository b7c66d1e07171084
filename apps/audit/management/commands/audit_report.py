"""`manage.py audit_report`: write a tenant's compliance report for a period to a file."""

from __future__ import annotations

import getpass
import sys
from datetime import datetime

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.audit import reports
from apps.audit.context import AuditActor
from apps.audit.models import AuditEvent
from apps.audit.selectors import tenant_resolve
from apps.audit.services import audit_record


def _bound(value: str, *, name: str, end: bool) -> datetime:
    bound = reports.parse_period_bound(value, end=end)
    if bound is None:
        raise CommandError(f"--{name}: '{value}' is not an ISO 8601 date or datetime.")
    return bound


class Command(BaseCommand):
    help = (
        "Write the compliance report of a tenant (or all tenants) for a period. "
        "A date --until includes that whole day."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tenant", default="", help="Slug or UUID; all tenants if omitted.")
        parser.add_argument("--since", required=True, help="Start: ISO 8601 date or datetime.")
        parser.add_argument("--until", required=True, help="End: ISO 8601 date or datetime.")
        parser.add_argument("--format", choices=reports.FORMATS, default="json")
        parser.add_argument("-o", "--output", default="-", help="File to write; '-' is stdout.")
        parser.add_argument(
            "--full",
            action="store_true",
            help="verify the whole chain, not only what followed the last verified checkpoint",
        )

    def handle(self, *args, **options) -> None:
        since = _bound(options["since"], name="since", end=False)
        until = _bound(options["until"], name="until", end=True)
        if since >= until:
            raise CommandError("--until must be later than --since.")
        tenant = None
        if options["tenant"]:
            tenant = tenant_resolve(options["tenant"])
            if tenant is None:
                raise CommandError(f"--tenant: no tenant '{options['tenant']}'.")
        fmt = options["format"]
        report = reports.report_build(tenant=tenant, since=since, until=until, full=options["full"])
        body = reports.report_render(report, fmt)
        output = options["output"]
        if output == "-":
            sys.stdout.buffer.write(body)
            sys.stdout.flush()
        else:
            with open(output, "wb") as fh:
                fh.write(body)
        audit_record(
            event_type="audit.report_exported",
            action="export",
            tenant_id=tenant.pk if tenant else None,
            resource_type="compliance_report",
            data={
                "format": fmt,
                "since": since.isoformat(),
                "until": until.isoformat(),
                "tenant": tenant.slug if tenant else "",
                "head_sequence": report.verification["head_sequence"],
                "head_hash": report.verification["head_hash"],
            },
            actor=AuditActor(actor=getpass.getuser(), source=AuditEvent.Source.CLI),
        )
        if output != "-":
            self.stderr.write(f"Wrote {fmt} report to {output}")
