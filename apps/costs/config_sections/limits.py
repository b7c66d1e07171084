"""The configuration file's `limits`, `budgets` and `notifiers` sections: rate limits, budgets
and where budget alerts go (atp_site.lib.config_file; the format is in docs/configuration.md).

Tenants are named by slug, projects by slug within their tenant, API keys by name among
their tenant's live keys. Limits and budgets on a revoked key cannot be named by a file: they
are neither exported nor pruned (they stop mattering with the key).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from functools import partial
from typing import Any

from apps.costs import services
from apps.costs.models import Budget, Notifier, RateLimit, Scope
from apps.providers.credentials import server_secret_error
from apps.tenants.models import ApiKey, Plan, Project, Tenant
from atp_site.lib import config_file as cf

FIGURES = ("requests_per_minute", "tokens_per_minute", "max_concurrent", "cost_per_hour_usd")
TARGET_KEYS = {"tenant", "project", "api_key"}
LIMIT_KEYS = {"plan", *TARGET_KEYS, *FIGURES}
BUDGET_FIELDS = (
    "period",
    "limit_usd",
    "time_zone",
    "thresholds",
    "action",
    "downgrade_to",
    "enabled",
)
BUDGET_KEYS = {"name", *TARGET_KEYS, *BUDGET_FIELDS}
NOTIFIER_KEYS = {"name", "kind", "tenant", "target", "secret", "enabled"}
PLANS = tuple(p for p in Plan.values if p)
SCOPE_ORDER = {Scope.PLAN: 0, Scope.TENANT: 1, Scope.PROJECT: 2, Scope.KEY: 3}


# --- targets --------------------------------------------------------------------------------


@dataclass
class Target:
    """Where a limit or budget applies, as the file names it."""

    path: str
    plan: str = ""
    tenant: str = ""  # a tenant slug
    project: str = ""  # a project slug of that tenant
    api_key: str = ""  # a live key's name in that tenant

    @property
    def scope(self) -> str:
        if self.plan:
            return Scope.PLAN
        if self.project:
            return Scope.PROJECT
        if self.api_key:
            return Scope.KEY
        return Scope.TENANT

    @property
    def label(self) -> str:
        if self.plan:
            return f"plan {self.plan}"
        inner = self.project or self.api_key
        return f"{self.scope} {self.tenant}/{inner}" if inner else f"tenant {self.tenant}"

    @property
    def key(self) -> str:
        """The document key an error about the scope as a whole is reported at."""
        return {
            Scope.PLAN: "plan",
            Scope.TENANT: "tenant",
            Scope.PROJECT: "project",
            Scope.KEY: "api_key",
        }[self.scope]


def _parse_target(data: Mapping[str, Any], path: str, *, plans: bool) -> Target:
    target = Target(
        path=path,
        plan=cf.get(data, "plan", path, cf.choice(PLANS), "") if plans else "",
        tenant=cf.get(data, "tenant", path, cf.string, ""),
        project=cf.get(data, "project", path, cf.string, ""),
        api_key=cf.get(data, "api_key", path, cf.string, ""),
    )
    if target.plan and (target.tenant or target.project or target.api_key):
        raise cf.ConfigError(
            cf.join(path, "plan"), "a plan's limits name no tenant, project or key"
        )
    if not target.plan and not target.tenant:
        wanted = "a plan or a tenant" if plans else "a tenant"
        raise cf.ConfigError(cf.join(path, "tenant"), f"is required (name {wanted})")
    if target.project and target.api_key:
        raise cf.ConfigError(cf.join(path, "api_key"), "name a project or a key, not both")
    return target


def _resolve(target: Target) -> dict[str, Any]:
    """The service's scope arguments for `target` (tenants are applied before these)."""
    if target.plan:
        return {"scope": Scope.PLAN, "plan": target.plan}
    tenant = Tenant.objects.filter(slug=target.tenant).first()
    if tenant is None:
        raise cf.ConfigError(
            cf.join(target.path, "tenant"), f"no tenant with slug {target.tenant!r}"
        )
    fields: dict[str, Any] = {"scope": target.scope, "tenant": tenant}
    if target.project:
        fields["project"] = Project.objects.filter(tenant=tenant, slug=target.project).first()
        if fields["project"] is None:
            raise cf.ConfigError(
                cf.join(target.path, "project"),
                f"tenant {tenant.slug!r} has no project {target.project!r}",
            )
    if target.api_key:
        fields["api_key"] = ApiKey.objects.filter(
            tenant=tenant, name=target.api_key, revoked_at__isnull=True
        ).first()
        if fields["api_key"] is None:
            raise cf.ConfigError(
                cf.join(target.path, "api_key"),
                f"tenant {tenant.slug!r} has no live key named {target.api_key!r}",
            )
    return fields


def _identity(row: RateLimit | Budget) -> tuple[str, Any]:
    """What a row applies to: the same for a file's target once resolved."""
    return (
        row.scope,
        {
            Scope.PLAN: getattr(row, "plan", ""),
            Scope.TENANT: row.tenant_id,
            Scope.PROJECT: row.project_id,
            Scope.KEY: row.api_key_id,
        }[row.scope],
    )


def _resolved_identity(fields: dict[str, Any]) -> tuple[str, Any]:
    scope = fields["scope"]
    if scope == Scope.PLAN:
        return scope, fields["plan"]
    name = {Scope.TENANT: "tenant", Scope.PROJECT: "project", Scope.KEY: "api_key"}[scope]
    return scope, fields[name].pk


def _nameable(row: RateLimit | Budget) -> bool:
    """Whether a file can name the row's target (a revoked key it cannot)."""
    return row.api_key_id is None or row.api_key.revoked_at is None


def _export_target(row: RateLimit | Budget) -> dict[str, Any]:
    if row.scope == Scope.PLAN:
        return {"plan": row.plan}
    out: dict[str, Any] = {"tenant": row.tenant.slug}
    if row.project_id is not None:
        out["project"] = row.project.slug
    if row.api_key_id is not None:
        out["api_key"] = row.api_key.name
    return out


def _export_order(row: RateLimit | Budget) -> tuple:
    sub = row.project.slug if row.project_id else (row.api_key.name if row.api_key_id else "")
    return (
        SCOPE_ORDER[row.scope] > 0,
        row.tenant.slug if row.tenant_id else getattr(row, "plan", ""),
        SCOPE_ORDER[row.scope],
        sub,
    )


def _scoped_rows(model: type[RateLimit] | type[Budget]) -> list:
    return list(model.objects.select_related("tenant", "project", "api_key"))


# --- limits ---------------------------------------------------------------------------------


@dataclass
class LimitSpec:
    path: str
    target: Target
    figures: dict[str, Any]  # requests_per_minute, ...; None: no limit

    @property
    def label(self) -> str:
        return self.target.label


@cf.register
class LimitSection(cf.Section):
    key = "limits"
    # After tenants (20) and routes (30): limits name tenants, projects and keys.
    order = 50
    unique = ("label", "rate limit target")

    def parse_item(self, data: Any, path: str, environ: Mapping[str, str]) -> LimitSpec:
        data = cf.mapping(data, path, LIMIT_KEYS)
        figures = {
            name: cf.get(data, name, path, cf.non_negative_int, None)
            for name in FIGURES
            if name != "cost_per_hour_usd"
        }
        figures["cost_per_hour_usd"] = cf.get(data, "cost_per_hour_usd", path, cf.number, None)
        return LimitSpec(path, _parse_target(data, path, plans=True), figures)

    def apply(self, specs: list[LimitSpec], run: cf.Run) -> None:
        report = run.report
        existing = {_identity(row): row for row in _scoped_rows(RateLimit)}
        wanted = set()
        for spec in specs:
            target = _resolve(spec.target)
            identity = _resolved_identity(target)
            wanted.add(identity)
            current = existing.get(identity)
            with cf.at(spec.path, {"scope": spec.target.key}):
                cf.upsert(
                    report,
                    "rate limit",
                    spec.label,
                    current,
                    spec.figures,
                    create=partial(services.rate_limit_create, **target, **spec.figures),
                    update=partial(services.rate_limit_update, rate_limit=current),
                )
        if run.prune:
            for identity, row in existing.items():
                if identity not in wanted and _nameable(row):
                    label = _limit_label(row)
                    services.rate_limit_delete(rate_limit=row)
                    report.add("rate limit", label, "deleted")

    def export(self, notes: list[str]) -> list[dict[str, Any]]:
        out = []
        for row in sorted(filter(_nameable, _scoped_rows(RateLimit)), key=_export_order):
            item = _export_target(row)
            for name in FIGURES:
                value = getattr(row, name)
                if value is not None:
                    item[name] = cf.number_out(value) if isinstance(value, Decimal) else value
            out.append(item)
        return out


def _limit_label(row: RateLimit) -> str:
    target = Target(path="", **_export_target(row))
    return target.label


# --- budgets --------------------------------------------------------------------------------


@dataclass
class BudgetSpec:
    path: str
    name: str
    target: Target
    fields: dict[str, Any]  # period, limit_usd, ...

    @property
    def label(self) -> str:
        return f"{self.target.tenant}/{self.name}"


def _thresholds(value: Any, path: str) -> list[int | float]:
    """Percentages of the limit, sorted, without repeats (as the model stores them)."""
    if not isinstance(value, list):
        raise cf.ConfigError(path, "must be a list of percentages, e.g. [50, 80, 100]")
    marks = set()
    for i, mark in enumerate(value):
        if isinstance(mark, bool) or not isinstance(mark, int | float) or not 0 < mark <= 1000:
            raise cf.ConfigError(cf.join(path, i), "must be a number above 0 and at most 1000")
        marks.add(int(mark) if float(mark).is_integer() else mark)
    return sorted(marks)


@cf.register
class BudgetSection(cf.Section):
    key = "budgets"
    order = 60
    unique = ("label", "budget (tenant/name)")

    def parse_item(self, data: Any, path: str, environ: Mapping[str, str]) -> BudgetSpec:
        data = cf.mapping(data, path, BUDGET_KEYS)
        get = cf.get
        fields = {
            "period": get(data, "period", path, cf.choice(Budget.Period.values), "monthly"),
            "limit_usd": get(data, "limit_usd", path, cf.number, cf.MISSING),
            "time_zone": get(data, "time_zone", path, cf.optional_string, ""),
            "thresholds": get(
                data, "thresholds", path, _thresholds, list(Budget.DEFAULT_THRESHOLDS)
            ),
            "action": get(data, "action", path, cf.choice(Budget.Action.values), "block"),
            "downgrade_to": get(data, "downgrade_to", path, cf.optional_string, ""),
            "enabled": get(data, "enabled", path, cf.boolean, True),
        }
        return BudgetSpec(
            path=path,
            name=get(data, "name", path, cf.string, cf.MISSING),
            target=_parse_target(data, path, plans=False),
            fields=fields,
        )

    def apply(self, specs: list[BudgetSpec], run: cf.Run) -> None:
        report = run.report
        existing = {(row.tenant_id, row.name): row for row in _scoped_rows(Budget)}
        wanted = set()
        for spec in specs:
            target = _resolve(spec.target)
            key = (target["tenant"].pk, spec.name)
            wanted.add(key)
            current = existing.get(key)
            with cf.at(spec.path, {"scope": spec.target.key}):
                if current is not None and _identity(current) != _resolved_identity(target):
                    # A budget keeps its target: one that moves is made anew (its alerts go).
                    services.budget_delete(budget=current)
                    services.budget_create(name=spec.name, **target, **spec.fields)
                    report.add("budget", spec.label, "replaced", (spec.target.key,))
                    continue
                cf.upsert(
                    report,
                    "budget",
                    spec.label,
                    current,
                    spec.fields,
                    create=partial(services.budget_create, name=spec.name, **target, **spec.fields),
                    update=partial(services.budget_update, budget=current),
                )
        if run.prune:
            for key, row in existing.items():
                if key not in wanted and _nameable(row):
                    label = f"{row.tenant.slug}/{row.name}"
                    services.budget_delete(budget=row)
                    report.add("budget", label, "deleted")

    def export(self, notes: list[str]) -> list[dict[str, Any]]:
        rows = sorted(
            filter(_nameable, _scoped_rows(Budget)), key=lambda b: (b.tenant.slug, b.name)
        )
        out = []
        for row in rows:
            item = {"tenant": row.tenant.slug, "name": row.name}
            item.update({k: v for k, v in _export_target(row).items() if k != "tenant"})
            item["period"] = row.period
            item["limit_usd"] = cf.number_out(row.limit_usd)
            if row.time_zone:
                item["time_zone"] = row.time_zone
            item["thresholds"] = list(row.thresholds)
            item["action"] = row.action
            if row.downgrade_to:
                item["downgrade_to"] = row.downgrade_to
            item["enabled"] = row.enabled
            out.append(item)
        return out


# --- notifiers ------------------------------------------------------------------------------


@dataclass
class NotifierSpec:
    path: str
    name: str
    kind: str
    tenant: str  # a tenant slug; "" for every tenant's alerts
    target: str
    secret: str | None  # None: keep the stored one
    enabled: bool


def notifier_secret_env_name(name: str) -> str:
    """The variable an exported file names for a notifier's secret (never exported)."""
    return f"NOTIFIER_{re.sub(r'[^A-Za-z0-9]', '_', name).upper()}_SECRET"


def _target(value: Any, path: str) -> str:
    """E-mail addresses (a list, or one comma-separated string) or a webhook's URL."""
    if isinstance(value, list):
        return ", ".join(cf.string_list(value, path))
    return cf.string(value, path)


def _secret(value: str, path: str, environ: Mapping[str, str]) -> str:
    if not value.startswith(cf.ENV_PREFIX):
        return value
    env = cf.env_name(value, path)
    if problem := server_secret_error(env):
        raise cf.ConfigError(path, problem)
    resolved = environ.get(env)
    if not resolved:
        raise cf.ConfigError(path, f"environment variable {env} is not set")
    return resolved


@cf.register
class NotifierSection(cf.Section):
    key = "notifiers"
    order = 70
    unique = ("name", "notifier name")

    def parse_item(self, data: Any, path: str, environ: Mapping[str, str]) -> NotifierSpec:
        data = cf.mapping(data, path, NOTIFIER_KEYS)
        raw_secret = cf.get(data, "secret", path, cf.string, None)
        return NotifierSpec(
            path=path,
            name=cf.get(data, "name", path, cf.string, cf.MISSING),
            kind=cf.get(data, "kind", path, cf.choice(Notifier.Kind.values), cf.MISSING),
            tenant=cf.get(data, "tenant", path, cf.string, ""),
            target=cf.get(data, "target", path, _target, cf.MISSING),
            secret=None
            if raw_secret is None
            else _secret(raw_secret, cf.join(path, "secret"), environ),
            enabled=cf.get(data, "enabled", path, cf.boolean, True),
        )

    def apply(self, specs: list[NotifierSpec], run: cf.Run) -> None:
        report = run.report
        existing = {n.name: n for n in Notifier.objects.select_related("tenant")}
        for spec in specs:
            tenant = None
            if spec.tenant:
                tenant = Tenant.objects.filter(slug=spec.tenant).first()
                if tenant is None:
                    raise cf.ConfigError(
                        cf.join(spec.path, "tenant"), f"no tenant with slug {spec.tenant!r}"
                    )
            current = existing.get(spec.name)
            with cf.at(spec.path):
                if current is not None and (
                    current.kind != spec.kind or current.tenant_id != getattr(tenant, "pk", None)
                ):
                    # Kind and tenant are fixed once made: the notifier is made anew.
                    secret = current.secret if spec.secret is None else spec.secret
                    services.notifier_delete(notifier=current)
                    self._create(spec, tenant, secret)
                    report.add("notifier", spec.name, "replaced")
                    continue
                if current is None:
                    self._create(spec, tenant, spec.secret or "")
                    report.add("notifier", spec.name, "created")
                    continue
                changed = cf.diff(current, {"target": spec.target, "enabled": spec.enabled})
                if spec.secret is not None and spec.secret != current.secret:
                    changed["secret"] = spec.secret
                if changed:
                    services.notifier_update(notifier=current, **changed)
                    report.add("notifier", spec.name, "updated", tuple(sorted(changed)))
                else:
                    report.add("notifier", spec.name, "unchanged")
        if run.prune:
            wanted = {s.name for s in specs}
            for name, notifier in existing.items():
                if name not in wanted:
                    services.notifier_delete(notifier=notifier)
                    report.add("notifier", name, "deleted")

    @staticmethod
    def _create(spec: NotifierSpec, tenant: Tenant | None, secret: str) -> None:
        services.notifier_create(
            name=spec.name,
            kind=spec.kind,
            tenant=tenant,
            target=spec.target,
            secret=secret,
            enabled=spec.enabled,
        )

    def export(self, notes: list[str]) -> list[dict[str, Any]]:
        out = []
        for notifier in Notifier.objects.select_related("tenant").order_by("name"):
            item: dict[str, Any] = {"name": notifier.name, "kind": notifier.kind}
            if notifier.tenant_id is not None:
                item["tenant"] = notifier.tenant.slug
            item["target"] = notifier.target
            if notifier.secret:
                env = notifier_secret_env_name(notifier.name)
                item["secret"] = f"{cf.ENV_PREFIX}{env}"
                notes.append(
                    f"notifier {notifier.name}: its signing secret is not exported; "
                    f"set {env} before applying this file."
                )
            item["enabled"] = notifier.enabled
            out.append(item)
        return out
