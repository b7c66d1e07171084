"""Reads of policies for the console, the API, the configuration file and the evaluator.

`policy_list` is unscoped; callers narrow it by the viewer's permissions with
apps.tenants.permissions.restrict, the one place that decides who sees what.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from django.db.models import QuerySet

from apps.policies.engine import PolicySpec
from apps.policies.models import Policy


def policy_list() -> QuerySet[Policy]:
    return Policy.objects.select_related("tenant")


def policy_get(*, tenant_id: Any, name: str) -> Policy | None:
    return policy_list().filter(tenant_id=tenant_id, name=name).first()


def _aliases(
    projects: Iterable[str] | None = None, keys: Iterable[str] | None = None
) -> dict[str, dict[str | None, dict[str, set[str]]]]:
    """Project slugs and key names, each with the ids they stand for, by tenant id (and
    under None for every tenant, what a global policy's names mean). Only the names given
    are looked up (None: all)."""
    from apps.tenants.models import ApiKey, Project

    found: dict[str, dict[str | None, dict[str, set[str]]]] = {"project": {}, "key": {}}
    project_rows = Project.objects.all()
    key_rows = ApiKey.objects.filter(revoked_at__isnull=True)
    if projects is not None:
        project_rows = project_rows.filter(slug__in=list(projects))
    if keys is not None:
        key_rows = key_rows.filter(name__in=list(keys))
    for kind, rows, wanted in (
        ("project", project_rows.values_list("tenant_id", "slug", "id"), projects),
        ("key", key_rows.values_list("tenant_id", "name", "id"), keys),
    ):
        if wanted is not None and not wanted:
            continue
        for tenant_id, name, pk in rows:
            for owner in (str(tenant_id), None):
                found[kind].setdefault(owner, {}).setdefault(name, set()).add(str(pk))
    return found


def _named(specs: Iterable[PolicySpec]) -> tuple[set[str], set[str]]:
    """The project and key names the specs mention (scopes and subject conditions)."""
    projects: set[str] = set()
    keys: set[str] = set()
    for spec in specs:
        scope = spec.scope or {}
        projects.update(str(v) for v in scope.get("projects") or ())
        keys.update(str(v) for v in scope.get("keys") or ())
        for rule in spec.rules:
            for cond in rule.get("when") or ():
                kind = _SUBJECT.get(cond.get("attr"))
                if kind:
                    value = cond.get("value")
                    names = [str(v) for v in value] if isinstance(value, list) else [str(value)]
                    (projects if kind == "project" else keys).update(names)
    return projects, keys


def _expand(values: Iterable[Any], names: Mapping[str, set[str]]) -> list[str]:
    out: list[str] = []
    for value in values:
        value = str(value)
        out.append(value)
        out.extend(sorted(names.get(value, ())))
    return list(dict.fromkeys(out))


_SUBJECT = {"subject.project": "project", "subject.key": "key"}


def with_ids(spec: PolicySpec, aliases: Mapping[str, Any]) -> PolicySpec:
    """`spec` with project slugs and key names in its scope and subject conditions
    followed by the ids they name (requests carry ids)."""
    owner = spec.tenant_id
    projects = aliases["project"].get(owner, {})
    keys = aliases["key"].get(owner, {})
    scope = dict(spec.scope or {})
    if scope.get("projects"):
        scope["projects"] = _expand(scope["projects"], projects)
    if scope.get("keys"):
        scope["keys"] = _expand(scope["keys"], keys)
    rules = []
    for rule in spec.rules:
        when = []
        for cond in rule.get("when") or ():
            kind = _SUBJECT.get(cond.get("attr"))
            if kind and cond.get("op") in ("eq", "ne", "in", "not_in"):
                names = projects if kind == "project" else keys
                value = cond["value"]
                expanded = _expand(value if isinstance(value, list) else [value], names)
                if cond["op"] in ("eq", "ne") and len(expanded) > 1:
                    cond = {**cond, "op": "in" if cond["op"] == "eq" else "not_in"}
                    value = expanded
                elif isinstance(value, list):
                    value = expanded
                cond = {**cond, "value": value}
            when.append(cond)
        rules.append({**rule, "when": when})
    return PolicySpec(
        name=spec.name,
        rules=rules,
        id=spec.id,
        tenant_id=spec.tenant_id,
        tenant=spec.tenant,
        priority=spec.priority,
        mode=spec.mode,
        enabled=spec.enabled,
        scope=scope,
        version=spec.version,
    )


def spec_of(policy: Policy) -> PolicySpec:
    return PolicySpec(
        name=policy.name,
        rules=list(policy.rules or []),
        id=policy.pk or 0,
        tenant_id=str(policy.tenant_id) if policy.tenant_id else None,
        tenant=policy.tenant.slug if policy.tenant_id else "",
        priority=policy.priority,
        mode=policy.mode,
        enabled=policy.enabled,
        scope=dict(policy.scope or {}),
        version=policy.version,
    )


def policy_specs(
    *, enabled_only: bool = False, policies: Iterable[Policy] | None = None
) -> list[PolicySpec]:
    """Policies as the evaluator compiles them, names resolved to ids too (three queries)."""
    if policies is None:
        rows = policy_list()
        if enabled_only:
            rows = rows.filter(enabled=True)
        policies = list(rows)
    policies = list(policies)
    if not policies:
        return []
    specs = [spec_of(p) for p in policies]
    projects, keys = _named(specs)
    if not projects and not keys:
        return specs
    aliases = _aliases(projects, keys)
    return [with_ids(spec, aliases) for spec in specs]


def recent_requests(*, tenant_id: Any = None, last: int = 1000) -> list[Any]:
    """The latest `last` request-log rows (of one tenant, or all), newest first."""
    from apps.routing.models import RequestLog

    rows = RequestLog.objects.select_related("tenant", "api_key").order_by("-created_at", "-pk")
    if tenant_id is not None:
        rows = rows.filter(tenant_id=tenant_id)
    return list(rows[:last])
