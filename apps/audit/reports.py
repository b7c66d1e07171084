"""Compliance reports: what happened for a tenant (or all) in a period, as CSV, JSON or PDF."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import Count, Q, QuerySet, Sum
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from apps.audit.csvsafe import csv_row
from apps.audit.models import AuditEvent
from apps.audit.selectors import AuditEventFilters, audit_event_list
from apps.audit.verify import verify_chain
from apps.routing.models import RequestLog
from apps.tenants.models import Tenant

FORMATS = ("json", "csv", "pdf")
CONTENT_TYPES = {"json": "application/json", "csv": "text/csv", "pdf": "application/pdf"}

GATEWAY_REQUEST = "gateway.request"
POLICY_PREFIX = "policy."
BUDGET_PREFIX = "budget."
# Sources where a person changes configuration; the data plane and the system are not admins.
ADMIN_SOURCES = ("admin", "api", "console", "config", "cli")
# Reads of the log and sign-ins come from admin sources too, but change nothing.
NOT_CHANGES = ("audit.exported", "audit.report_exported", "audit.verified")
AUTH_PREFIX = "auth."
LOGIN_TYPES = ("auth.login", "user.login")
FAILED_LOGIN_TYPES = ("auth.login_failed", "user.login_failed")
LATEST_ADMIN_CHANGES = 100
TOP = 20


@dataclass(slots=True)
class ComplianceReport:
    """A compliance report as plain data: every renderer reads only this."""

    tenant: dict[str, str] | None
    since: datetime
    until: datetime
    generated_at: datetime
    requests_by_classification: dict[str, int] = field(default_factory=dict)
    requests_by_status: dict[str, int] = field(default_factory=dict)
    policy_denials: dict[str, Any] = field(default_factory=dict)
    redactions_by_entity: dict[str, int] = field(default_factory=dict)
    budget_events: dict[str, Any] = field(default_factory=dict)
    spend: dict[str, Any] = field(default_factory=dict)
    admin_changes: dict[str, Any] = field(default_factory=dict)
    access: dict[str, Any] = field(default_factory=dict)
    verification: dict[str, Any] = field(default_factory=dict)

    @property
    def tenant_label(self) -> str:
        if self.tenant is None:
            return "All tenants"
        return f"{self.tenant['name']} ({self.tenant['slug']})"

    def as_dict(self) -> dict[str, Any]:
        return _plain(asdict(self))


def _plain(value: Any) -> Any:
    """JSON-ready: datetimes as ISO 8601, decimals as strings."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def period_bound(value: date | datetime, *, end: bool) -> datetime:
    """An aware datetime for a period bound; a date as `end` means the end of that day.

    Periods are half-open (since <= t < until), so `--until 2026-11-30` covers the 30th.
    """
    if isinstance(value, datetime):
        aware = value if timezone.is_aware(value) else timezone.make_aware(value)
        # In UTC: PostgreSQL refuses offsets beyond 15:59 that Python accepts.
        return aware.astimezone(UTC)
    start = datetime.combine(value + timedelta(days=1) if end else value, time.min)
    return timezone.make_aware(start)


def parse_period_bound(text: str, *, end: bool) -> datetime | None:
    """An ISO 8601 date or datetime as a period bound, or None when it is neither.

    The date is tried first: Python's datetime parser also accepts a bare date and would
    turn an `until` date into its midnight, dropping the day it names.
    """
    text = text.strip()
    try:
        parsed: date | datetime | None = parse_date(text) or parse_datetime(text)
        # Beyond the calendar (the day after 9999-12-31, say) is no bound either.
        return period_bound(parsed, end=end) if parsed is not None else None
    except (ValueError, OverflowError):
        return None


def _grouped(events: QuerySet, name: str) -> dict[str, int]:
    rows = events.values(name).annotate(n=Count("pk")).order_by("-n", name)
    return {row[name] or "": row["n"] for row in rows}


def _denial_reason(data: dict[str, Any], action: str) -> str:
    """The most specific reason an event gives: its own, its policy's, or its error code."""
    policy = data.get("policy")
    if isinstance(policy, dict):
        policy = policy.get("reason") or policy.get("name") or policy.get("id")
    reason = data.get("reason") or policy or data.get("error_code") or action
    return str(reason or "unspecified")


def _policy_denials(events: QuerySet) -> dict[str, Any]:
    denied = events.filter(outcome=AuditEvent.Outcome.DENIED).filter(
        Q(event_type=GATEWAY_REQUEST) | Q(event_type__startswith=POLICY_PREFIX)
    )
    reasons: Counter[str] = Counter()
    for data, action in denied.values_list("data", "action").iterator():
        reasons[_denial_reason(data if isinstance(data, dict) else {}, action)] += 1
    return {
        "count": sum(reasons.values()),
        "top_reasons": [{"reason": r, "count": n} for r, n in reasons.most_common(TOP)],
    }


def _redactions(events: QuerySet) -> dict[str, int]:
    totals: Counter[str] = Counter()
    requests = events.filter(event_type=GATEWAY_REQUEST, data__has_key="redactions")
    for (data,) in requests.values_list("data").iterator():
        found = data.get("redactions") if isinstance(data, dict) else None
        if not isinstance(found, dict):
            continue
        for entity, count in found.items():
            if isinstance(count, int) and not isinstance(count, bool):
                totals[str(entity)] += count
    return dict(totals.most_common())


def _budget_events(events: QuerySet) -> dict[str, Any]:
    budget = events.filter(event_type__startswith=BUDGET_PREFIX)
    by_type = _grouped(budget, "event_type")
    return {"count": sum(by_type.values()), "by_type": by_type}


def _spend(tenant: Tenant | None, since: datetime, until: datetime) -> dict[str, Any]:
    """Spend, savings against each tenant's baseline model and the gain share, from the
    usage rollups (apps.costs.spend; whole hours overlapping the period). The gain share
    is taken per tenant over the period (apps.costs.spend.window_gain_share)."""
    from apps.costs.spend import UsageFilters, spend_by_tenant

    filters = UsageFilters(start=since, end=until, tenant_id=tenant.pk if tenant else None)
    names = ("requests", "cost_usd", "baseline_cost_usd", "savings_usd", "cache_savings_usd")
    out: dict[str, Any] = {name: 0 if name == "requests" else Decimal(0) for name in names}
    out["gain_share_usd"] = Decimal(0)
    for row in spend_by_tenant(user=None, filters=filters):
        for name in out:
            out[name] += row[name]
    return out


def _admin_changes(events: QuerySet) -> dict[str, Any]:
    changes = (
        events.filter(source__in=ADMIN_SOURCES)
        .exclude(event_type__in=NOT_CHANGES + LOGIN_TYPES + FAILED_LOGIN_TYPES)
        .exclude(event_type__startswith=AUTH_PREFIX)
        .exclude(outcome=AuditEvent.Outcome.DENIED)
    )
    by_type = _grouped(changes, "event_type")
    latest = [
        {
            "sequence": e.sequence,
            "occurred_at": e.occurred_at,
            "actor": e.actor,
            "source": e.source,
            "event_type": e.event_type,
            "resource": f"{e.resource_type}:{e.resource_id}" if e.resource_type else "",
            "outcome": e.outcome,
        }
        for e in changes.order_by("-sequence")[:LATEST_ADMIN_CHANGES]
    ]
    return {"count": sum(by_type.values()), "by_type": by_type, "latest": latest}


def _access(events: QuerySet, requests: QuerySet) -> dict[str, Any]:
    logins = events.filter(event_type__in=LOGIN_TYPES + FAILED_LOGIN_TYPES)
    per_user: dict[str, Counter[str]] = {}
    for event_type, outcome, actor, user_id in logins.values_list(
        "event_type", "outcome", "actor", "user_id"
    ).iterator():
        failed = event_type in FAILED_LOGIN_TYPES or outcome != AuditEvent.Outcome.SUCCESS
        per_user.setdefault(actor or user_id or "unknown", Counter())[
            "failed_logins" if failed else "logins"
        ] += 1
    by_user = [
        {"user": user, "logins": c["logins"], "failed_logins": c["failed_logins"]}
        for user, c in sorted(per_user.items())
    ]
    usage = (
        requests.values("api_key_id", "api_key__name", "api_key__prefix")
        .annotate(
            requests=Count("pk"),
            input_tokens=Sum("input_tokens"),
            output_tokens=Sum("output_tokens"),
            cost_usd=Sum("cost_usd"),
        )
        .order_by("-requests", "api_key__name")
    )
    api_usage = [
        {
            "api_key": row["api_key__name"]
            or (str(row["api_key_id"]) if row["api_key_id"] else ""),
            "prefix": row["api_key__prefix"] or "",
            "requests": row["requests"],
            "input_tokens": row["input_tokens"] or 0,
            "output_tokens": row["output_tokens"] or 0,
            "cost_usd": row["cost_usd"] or Decimal(0),
        }
        for row in usage
    ]
    end_users = (
        requests.exclude(end_user="")
        .values("end_user")
        .annotate(requests=Count("pk"))
        .order_by("-requests", "end_user")[:TOP]
    )
    return {
        "logins": sum(u["logins"] for u in by_user),
        "failed_logins": sum(u["failed_logins"] for u in by_user),
        "by_user": by_user,
        "api_usage": api_usage,
        "end_users": [{"end_user": r["end_user"], "requests": r["requests"]} for r in end_users],
    }


def report_build(
    *, tenant: Tenant | None, since: datetime, until: datetime, full: bool = False
) -> ComplianceReport:
    """The compliance report of `tenant` (all tenants when None) for since <= t < until.

    The chain verification covers the whole chain, not only the tenant's events: they
    are only trustworthy if every event before them is. It starts from the latest
    verified checkpoint (whose own verification covered everything before it), or with
    `full` from the chain's start.
    """
    events = audit_event_list(
        AuditEventFilters(since=since, until=until, tenant_id=tenant.pk if tenant else None)
    )
    # The request log belongs to apps.routing and has no selector yet; this is a read only.
    requests = RequestLog.objects.filter(created_at__gte=since, created_at__lt=until)
    if tenant is not None:
        requests = requests.filter(tenant_id=tenant.pk)
    verification = verify_chain(full=full)
    problem = verification.problem
    signed = verification.signed_head
    return ComplianceReport(
        tenant=(
            {"id": str(tenant.pk), "slug": tenant.slug, "name": tenant.name} if tenant else None
        ),
        since=since,
        until=until,
        generated_at=timezone.now(),
        requests_by_classification=_grouped(
            events.filter(event_type=GATEWAY_REQUEST), "classification"
        ),
        requests_by_status=_grouped(requests, "status"),
        policy_denials=_policy_denials(events),
        redactions_by_entity=_redactions(events),
        budget_events=_budget_events(events),
        spend=_spend(tenant, since, until),
        admin_changes=_admin_changes(events),
        access=_access(events, requests),
        verification={
            "status": "ok" if verification.ok else "broken",
            "checked": verification.checked,
            "head_sequence": verification.head_sequence,
            "head_hash": verification.head_hash,
            "head_signature": verification.head_signature,
            "head_key_id": verification.head_key_id,
            "walk": (
                "full"
                if verification.full
                else f"from the verified checkpoint at event {verification.start_sequence}"
            ),
            "signed_head": (
                f"#{signed['sequence']} {signed['hash']} signed {signed['signed_at']} "
                f"({signed['reason']})"
                if signed
                else ""
            ),
            "problem": (
                f"{problem.kind} at event {problem.sequence}: {problem.detail}" if problem else ""
            ),
        },
    )


# --- rendering ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Section:
    """One titled table of the report, as both CSV and PDF show it."""

    title: str
    header: list[str]
    rows: list[list[Any]]


def _counts(title: str, label: str, counts: dict[str, int]) -> Section:
    return Section(title, [label, "count"], [[k or "(none)", v] for k, v in counts.items()])


def report_sections(report: ComplianceReport) -> list[Section]:
    """The report as titled tables, in reading order."""
    r = report
    v = r.verification
    access = r.access
    return [
        Section(
            "Report",
            ["field", "value"],
            [
                ["tenant", r.tenant_label],
                ["tenant id", r.tenant["id"] if r.tenant else ""],
                ["period start", r.since.isoformat()],
                ["period end (exclusive)", r.until.isoformat()],
                ["generated at", r.generated_at.isoformat()],
            ],
        ),
        Section(
            "Chain verification",
            ["field", "value"],
            [
                ["status", v["status"]],
                ["events checked", v["checked"]],
                ["walk", v["walk"]],
                ["head sequence", v["head_sequence"]],
                ["head hash", v["head_hash"]],
                ["head signature", v["head_signature"]],
                ["key id", v["head_key_id"]],
                ["newest signed head", v["signed_head"] or "none"],
                ["problem", v["problem"] or "none"],
            ],
        ),
        _counts("Requests by data classification", "classification", r.requests_by_classification),
        _counts("Requests by status (request log)", "status", r.requests_by_status),
        Section(
            f"Policy denials ({r.policy_denials['count']})",
            ["reason", "count"],
            [[x["reason"], x["count"]] for x in r.policy_denials["top_reasons"]],
        ),
        _counts("Redactions by entity type", "entity type", r.redactions_by_entity),
        _counts(
            f"Budget events ({r.budget_events['count']})", "event type", r.budget_events["by_type"]
        ),
        Section(
            "Spend and savings (usage rollups; savings against each tenant's baseline model)",
            ["measure", "value"],
            [[name.replace("_", " "), value] for name, value in r.spend.items()],
        ),
        _counts(
            f"Admin changes ({r.admin_changes['count']})", "event type", r.admin_changes["by_type"]
        ),
        Section(
            f"Latest admin changes (up to {LATEST_ADMIN_CHANGES})",
            ["sequence", "time", "actor", "source", "event type", "resource", "outcome"],
            [
                [
                    c["sequence"],
                    c["occurred_at"].isoformat(),
                    c["actor"],
                    c["source"],
                    c["event_type"],
                    c["resource"],
                    c["outcome"],
                ]
                for c in r.admin_changes["latest"]
            ],
        ),
        Section(
            f"Sign-ins ({access['logins']} successful, {access['failed_logins']} failed)",
            ["user", "logins", "failed logins"],
            [[u["user"], u["logins"], u["failed_logins"]] for u in access["by_user"]],
        ),
        Section(
            "API usage by key",
            ["api key", "prefix", "requests", "input tokens", "output tokens", "cost (USD)"],
            [
                [
                    u["api_key"],
                    u["prefix"],
                    u["requests"],
                    u["input_tokens"],
                    u["output_tokens"],
                    str(u["cost_usd"]),
                ]
                for u in access["api_usage"]
            ],
        ),
        Section(
            f"API usage by end user (top {TOP})",
            ["end user", "requests"],
            [[u["end_user"], u["requests"]] for u in access["end_users"]],
        ),
    ]


def render_json(report: ComplianceReport) -> bytes:
    return json.dumps(report.as_dict(), indent=2).encode()


def render_csv(report: ComplianceReport) -> bytes:
    """Sections one after another: a title row, a header row, the rows, a blank row.

    Cells that a spreadsheet would run as formulas are neutralised (apps.audit.csvsafe):
    actors, end users, key names and reasons come from callers.
    """
    out = io.StringIO()
    writer = csv.writer(out)
    for section in report_sections(report):
        writer.writerow(csv_row([f"# {section.title}"]))
        writer.writerow(csv_row(section.header))
        writer.writerows(csv_row(row) for row in section.rows)
        writer.writerow([])
    return out.getvalue().encode()


def render_pdf(report: ComplianceReport) -> bytes:
    """A PDF a person can read: title, period, then one table per section."""
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4, landscape
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.lib.units import mm
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    styles = getSampleStyleSheet()
    cell = styles["BodyText"].clone("cell", fontSize=7.5, leading=9)
    head = styles["BodyText"].clone("head", fontSize=7.5, leading=9, fontName="Helvetica-Bold")
    buffer = io.BytesIO()
    doc = SimpleDocTemplate(
        buffer,
        pagesize=landscape(A4),
        leftMargin=12 * mm,
        rightMargin=12 * mm,
        topMargin=12 * mm,
        bottomMargin=12 * mm,
        title=f"ATP compliance report: {report.tenant_label}",
        author="ATP",
    )

    def para(value: Any, style: Any) -> Paragraph:
        # Paragraph markup is XML: escape what came from the log, and let long hashes wrap.
        text = str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        return Paragraph(text, style)

    story: list[Any] = [
        Paragraph("ATP compliance report", styles["Title"]),
        para(f"Tenant: {report.tenant_label}", styles["Heading3"]),
        para(
            f"Period: {report.since.isoformat()} to {report.until.isoformat()} (exclusive)",
            styles["Normal"],
        ),
        para(f"Generated at {report.generated_at.isoformat()}", styles["Normal"]),
        Spacer(1, 6 * mm),
    ]
    width = doc.width
    for section in report_sections(report)[1:]:
        story.append(para(section.title, styles["Heading4"]))
        rows = section.rows or [["(none)"] + [""] * (len(section.header) - 1)]
        data = [[para(h, head) for h in section.header]]
        data += [[para(v, cell) for v in row] for row in rows]
        table = Table(
            data,
            colWidths=[width / len(section.header)] * len(section.header),
            repeatRows=1,
            hAlign="LEFT",
        )
        table.setStyle(
            TableStyle(
                [
                    ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8ecf1")),
                    ("GRID", (0, 0), (-1, -1), 0.25, colors.grey),
                    ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ]
            )
        )
        story += [table, Spacer(1, 4 * mm)]
    footer = f"ATP compliance report - {report.tenant_label}"

    def on_page(canvas: Any, page_doc: Any) -> None:
        canvas.setFont("Helvetica", 7)
        canvas.drawString(doc.leftMargin, 6 * mm, footer)
        canvas.drawRightString(doc.leftMargin + doc.width, 6 * mm, f"page {page_doc.page}")

    doc.build(story, onFirstPage=on_page, onLaterPages=on_page)
    return buffer.getvalue()


RENDERERS = {"json": render_json, "csv": render_csv, "pdf": render_pdf}


def report_render(report: ComplianceReport, fmt: str) -> bytes:
    return RENDERERS[fmt](report)


def report_filename(report: ComplianceReport, fmt: str) -> str:
    who = report.tenant["slug"] if report.tenant else "all"
    return f"atp-compliance-{who}-{report.since:%Y%m%d}-{report.until:%Y%m%d}.{fmt}"
