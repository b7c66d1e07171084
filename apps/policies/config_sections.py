"""The configuration file's `policies` section (atp_site.lib.config_file; the rule language is
in docs/policies.md).

    policies:
      - name: eu-residency
        tenant: acme            # absent: a global policy (every tenant's requests)
        description: Restricted data stays in the EU.
        enabled: true
        mode: enforce           # or log_only
        priority: 10
        scope: {classifications: [restricted]}
        rules:
          - id: eu-only
            when: [{attr: request.classification, op: eq, value: restricted}]
            effect: {type: route, regions: [eu]}

A policy is named by its tenant's slug and its name. The rules are validated when the file
is parsed, so a file with a bad rule changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django.db.models import F

from apps.policies import services
from apps.policies.models import Policy
from apps.policies.validation import has_errors, validate_policy
from apps.tenants.models import Tenant
from atp_site.lib import config_file as cf

KEYS = {"name", "tenant", "description", "enabled", "mode", "priority", "scope", "rules"}


@dataclass
class PolicyItem:
    path: str
    name: str
    tenant: str = ""
    description: str = ""
    enabled: bool = True
    mode: str = "enforce"
    priority: int = 0
    scope: dict[str, Any] = field(default_factory=dict)
    rules: list[Any] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"{self.tenant}/{self.name}" if self.tenant else self.name

    def fields(self) -> dict[str, Any]:
        return {
            "description": self.description,
            "enabled": self.enabled,
            "mode": self.mode,
            "priority": self.priority,
            "scope": self.scope,
            "rules": self.rules,
        }


def _integer(value: Any, path: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise cf.ConfigError(path, "must be a whole number")
    return value


def _rules(value: Any, path: str) -> list[Any]:
    if not isinstance(value, list):
        raise cf.ConfigError(path, "must be a list of rules")
    return value


@cf.register
class PolicySection(cf.Section):
    key = "policies"
    order = 45
    unique = ("label", "policy")

    def parse_item(self, data: Any, path: str, environ: Mapping[str, str]) -> PolicyItem:
        data = cf.mapping(data, path, KEYS)
        item = PolicyItem(
            path=path,
            name=cf.get(data, "name", path, cf.string, cf.MISSING),
            tenant=cf.get(data, "tenant", path, cf.string, ""),
            description=cf.get(data, "description", path, cf.optional_string, ""),
            enabled=cf.get(data, "enabled", path, cf.boolean, True),
            mode=cf.get(data, "mode", path, cf.choice(Policy.Mode.values), "enforce"),
            priority=cf.get(data, "priority", path, _integer, 0),
            scope=cf.get(data, "scope", path, cf.an_object, {}),
            rules=cf.get(data, "rules", path, _rules, []),
        )
        # Named as the services would name them, so an unchanged file changes nothing.
        item.rules = services.with_rule_ids(item.rules)
        item.scope = {k: v for k, v in item.scope.items() if v}
        problems = validate_policy(
            {
                "name": item.name,
                "mode": item.mode,
                "priority": item.priority,
                "scope": item.scope,
                "rules": item.rules,
            },
            with_others=False,
        )
        if has_errors(problems):
            first = next(p for p in problems if p["severity"] == "error")
            raise cf.ConfigError(cf.join(path, first["path"]), first["message"])
        return item

    def apply(self, specs: list[PolicyItem], run: cf.Run) -> None:
        report = run.report
        tenants = {t.slug: t for t in Tenant.objects.filter(slug__in={s.tenant for s in specs})}
        existing = {
            (p.tenant.slug if p.tenant_id else "", p.name): p
            for p in Policy.objects.select_related("tenant")
        }
        for spec in specs:
            tenant = None
            if spec.tenant:
                tenant = tenants.get(spec.tenant)
                if tenant is None:
                    raise cf.ConfigError(
                        cf.join(spec.path, "tenant"), f"no tenant with slug {spec.tenant!r}"
                    )
            current = existing.get((spec.tenant, spec.name))
            with cf.at(spec.path):
                cf.upsert(
                    report,
                    "policy",
                    spec.label,
                    current,
                    spec.fields(),
                    create=lambda s=spec, t=tenant: services.policy_create(
                        tenant=t, name=s.name, **s.fields()
                    ),
                    update=lambda c=current, **changed: services.policy_update(policy=c, **changed),
                )
        if run.prune:
            wanted = {(s.tenant, s.name) for s in specs}
            for key, policy in sorted(existing.items()):
                if key not in wanted:
                    services.policy_delete(policy=policy)
                    report.add("policy", f"{key[0]}/{key[1]}" if key[0] else key[1], "deleted")

    def export(self, notes: list[str]) -> list[dict[str, Any]]:
        out = []
        for policy in Policy.objects.select_related("tenant").order_by(
            F("tenant__slug").asc(nulls_first=True), "name"
        ):
            item: dict[str, Any] = {"name": policy.name}
            if policy.tenant_id:
                item["tenant"] = policy.tenant.slug
            if policy.description:
                item["description"] = policy.description
            item["enabled"] = policy.enabled
            item["mode"] = policy.mode
            item["priority"] = policy.priority
            if policy.scope:
                item["scope"] = policy.scope
            item["rules"] = policy.rules
            out.append(item)
        return out
