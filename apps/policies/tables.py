"""The console's table of policies."""

from __future__ import annotations

from apps.policies.models import Policy
from atp_site.console.tables import Column, Table


def _owner(policy: Policy) -> str:
    return policy.tenant.slug if policy.tenant_id else "every tenant"


def scope_summary(policy: Policy) -> str:
    """A policy's scope in one line: `projects web, api · classifications restricted`."""
    parts = [
        f"{key} {', '.join(str(v) for v in values)}"
        for key, values in (policy.scope or {}).items()
        if values
    ]
    return " · ".join(parts) or "all requests"


def _rule_count(policy: Policy) -> int:
    return len(policy.rules) if isinstance(policy.rules, list) else 0


class PolicyTable(Table):
    columns = (
        Column("name", order_by=None, link="policies:policy-detail", classes="mono"),
        Column("tenant", accessor=_owner, classes="mono"),
        Column("priority", order_by=None, classes="num"),
        Column("mode", accessor=lambda p: p, template="policies/cells/mode.html", order_by=None),
        Column("enabled", template="console/cells/boolean.html", order_by=None),
        Column("scope", accessor=scope_summary),
        Column("rules", "Rules", _rule_count, classes="num"),
        Column("updated_at", "Changed", order_by=None, template="console/cells/datetime.html"),
    )
    default_order = "-priority"
    empty_title = "No policies yet"
    empty_text = (
        "Policies decide who may send what where: deny requests, redact entity types, keep "
        "requests in regions or on local models, cap their cost, guard against prompt "
        "injection. A tenant's policies and the global ones apply to each of its requests."
    )
    empty_action = ("policies:policy-add", "Add a policy", ("policies.policy", "add"))
