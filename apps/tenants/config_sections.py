"""The configuration file's `tenants` section: tenants with their API keys
(atp_site.lib.config_file; the format is in docs/configuration.md)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from apps.providers.credentials import server_secret_error
from apps.tenants import selectors, services
from apps.tenants.keys import hash_key, key_strength_error
from apps.tenants.models import ApiKey, DataClassification, Plan, Project, Tenant
from atp_site.lib import config_file as cf

TENANT_KEYS = {
    "slug",
    "name",
    "active",
    "store_bodies",
    "cost_mode",
    "preferred_regions",
    "carbon_aware",
    "data_classification",
    "allowed_regions",
    "plan",
    "time_zone",
    "baseline_model",
    "gain_share_percent",
    "projects",
    "api_keys",
}
COST_MODES = ("aggressive", "balanced", "quality_first")
PLANS = tuple(p for p in Plan.values if p)
CLASSIFICATIONS = tuple(DataClassification.values)
API_KEY_KEYS = {"name", "key", "prefix", "project", "allowed_models", "expires_at", "plan"}
PROJECT_KEYS = {"slug", "name", "description"}
TENANT_PATHS = {"is_active": "active"}


@dataclass
class ApiKeySpec:
    path: str
    name: str
    plaintext: str | None  # None: generate once, then leave the key alone
    allowed_models: list[str]
    expires_at: datetime | None
    project: str | None = None  # a project slug of the same tenant
    plan: str = ""  # "": the tenant's


@dataclass
class ProjectSpec:
    path: str
    slug: str
    fields: dict[str, Any]  # name, description


@dataclass
class TenantSpec:
    path: str
    slug: str
    fields: dict[str, Any]
    api_keys: list[ApiKeySpec]
    # None: the tenant's entry has no `projects`, so they are neither applied nor pruned.
    projects: list[ProjectSpec] | None = None


def _parse_project(data: Any, path: str) -> ProjectSpec:
    data = cf.mapping(data, path, PROJECT_KEYS)
    slug = cf.get(data, "slug", path, cf.string, cf.MISSING)
    fields = {
        "name": cf.get(data, "name", path, cf.string, slug),
        "description": cf.get(data, "description", path, cf.optional_string, ""),
    }
    return ProjectSpec(path, slug, fields)


def _apply_projects(tenant: Tenant, specs: list[ProjectSpec], run: cf.Run) -> None:
    report = run.report
    existing = {p.slug: p for p in Project.objects.filter(tenant=tenant)}
    for spec in specs:
        label = f"{tenant.slug}/{spec.slug}"
        current = existing.get(spec.slug)
        with cf.at(spec.path):
            if current is None:
                services.project_create(tenant=tenant, slug=spec.slug, **spec.fields)
                report.add("project", label, "created")
                continue
            changed = cf.diff(current, spec.fields)
            if changed:
                services.project_update(project=current, **changed)
                report.add("project", label, "updated", tuple(sorted(changed)))
            else:
                report.add("project", label, "unchanged")
    if run.prune:
        wanted = {s.slug for s in specs}
        for slug, project in existing.items():
            if slug not in wanted:
                services.project_delete(project=project)
                report.add("project", f"{tenant.slug}/{slug}", "deleted")


def _project_named(tenant: Tenant, spec: ApiKeySpec) -> Project | None:
    if spec.project is None:
        return None
    project = Project.objects.filter(tenant=tenant, slug=spec.project).first()
    if project is None:
        raise cf.ConfigError(
            cf.join(spec.path, "project"), f"tenant {tenant.slug!r} has no project {spec.project!r}"
        )
    return project


def _parse_api_key(data: Any, path: str, environ: Mapping[str, str]) -> ApiKeySpec:
    data = cf.mapping(data, path, API_KEY_KEYS)
    plaintext = cf.get(data, "key", path, cf.string, None)
    key_path = cf.join(path, "key")
    if plaintext is not None and plaintext.startswith(cf.ENV_PREFIX):
        env = cf.env_name(plaintext, key_path)
        if problem := server_secret_error(env):
            raise cf.ConfigError(key_path, problem)
        plaintext = environ.get(env)
        if not plaintext:
            raise cf.ConfigError(key_path, f"environment variable {env} is not set")
    if plaintext is not None and (problem := key_strength_error(plaintext)):
        name = data.get("name") if isinstance(data.get("name"), str) else "?"
        raise cf.ConfigError(key_path, f"key {name!r} {problem}")
    return ApiKeySpec(
        path=path,
        name=cf.get(data, "name", path, cf.string, cf.MISSING),
        plaintext=plaintext,
        allowed_models=cf.get(data, "allowed_models", path, cf.string_list, []),
        expires_at=cf.get(data, "expires_at", path, cf.date_time, None),
        project=cf.get(data, "project", path, cf.string, None),
        plan=cf.get(data, "plan", path, cf.choice(PLANS), ""),
    )


def _apply_api_keys(tenant: Tenant, specs: list[ApiKeySpec], run: cf.Run) -> None:
    report = run.report
    live: dict[str, ApiKey] = {
        k.name: k for k in selectors.api_key_list(tenant=tenant).filter(revoked_at__isnull=True)
    }
    for spec in specs:
        label = f"{tenant.slug}/{spec.name}"
        current = live.get(spec.name)
        project = _project_named(tenant, spec)
        with cf.at(spec.path):
            if current is not None and (
                spec.plaintext is None or hash_key(spec.plaintext) == current.key_hash
            ):
                desired = {
                    "allowed_models": spec.allowed_models,
                    "expires_at": spec.expires_at,
                    "project": project,
                    "plan": spec.plan,
                }
                changed = cf.diff(current, desired)
                if changed:
                    services.api_key_update(api_key=current, **changed)
                    report.add("api key", label, "updated", tuple(sorted(changed)))
                else:
                    report.add("api key", label, "unchanged")
                continue
            if current is not None:
                # The file names a different key: the old one stops working now.
                services.api_key_revoke(api_key=current)
            _, plaintext = services.api_key_create(
                tenant=tenant,
                name=spec.name,
                allowed_models=spec.allowed_models,
                expires_at=spec.expires_at,
                plaintext=spec.plaintext,
                project=project,
                plan=spec.plan,
            )
            # Only a key ATP made up is shown; a dry run's key is discarded with the rollback.
            secret = plaintext if spec.plaintext is None and not run.dry_run else None
            report.add("api key", label, "created" if current is None else "replaced", (), secret)
    if run.prune:
        wanted = {s.name for s in specs}
        for name, api_key in live.items():
            if name not in wanted:
                services.api_key_revoke(api_key=api_key)
                report.add("api key", f"{tenant.slug}/{name}", "revoked")


def _export_api_key(k: ApiKey) -> dict[str, Any]:
    out: dict[str, Any] = {"name": k.name, "prefix": k.prefix}
    if k.project_id is not None:
        out["project"] = k.project.slug
    if k.allowed_models:
        out["allowed_models"] = list(k.allowed_models)
    if k.expires_at is not None:
        out["expires_at"] = k.expires_at
    if k.plan:
        out["plan"] = k.plan
    return out


def _export_governance(t: Tenant) -> dict[str, Any]:
    """The governance settings that differ from their defaults."""
    out: dict[str, Any] = {}
    if t.data_classification != DataClassification.INTERNAL:
        out["data_classification"] = t.data_classification
    if t.allowed_regions:
        out["allowed_regions"] = list(t.allowed_regions)
    return out


def _export_costs(t: Tenant) -> dict[str, Any]:
    """The plan, time zone and savings settings, those that are set."""
    out: dict[str, Any] = {}
    if t.plan:
        out["plan"] = t.plan
    if t.time_zone:
        out["time_zone"] = t.time_zone
    if t.baseline_model:
        out["baseline_model"] = t.baseline_model
    if t.gain_share_percent:
        out["gain_share_percent"] = cf.number_out(t.gain_share_percent)
    return out


@cf.register
class TenantSection(cf.Section):
    key = "tenants"
    order = 20
    unique = ("slug", "tenant slug")

    def parse_item(self, data: Any, path: str, environ: Mapping[str, str]) -> TenantSpec:
        data = cf.mapping(data, path, TENANT_KEYS)
        slug = cf.get(data, "slug", path, cf.string, cf.MISSING)
        keys_path = cf.join(path, "api_keys")
        api_keys = [
            _parse_api_key(item, cf.join(keys_path, i), environ)
            for i, item in enumerate(cf.items_of(data, "api_keys", path) or [])
        ]
        cf.unique(api_keys, "name", keys_path, "key name")
        projects_path = cf.join(path, "projects")
        raw_projects = cf.items_of(data, "projects", path)
        projects = (
            None
            if raw_projects is None
            else [
                _parse_project(item, cf.join(projects_path, i))
                for i, item in enumerate(raw_projects)
            ]
        )
        cf.unique(projects or [], "slug", projects_path, "project slug")
        fields = {
            "name": cf.get(data, "name", path, cf.string, slug),
            "is_active": cf.get(data, "active", path, cf.boolean, True),
            "store_bodies": cf.get(data, "store_bodies", path, cf.boolean, False),
            "cost_mode": cf.get(data, "cost_mode", path, cf.choice(COST_MODES), "balanced"),
            "preferred_regions": cf.get(data, "preferred_regions", path, cf.string_list, []),
            "carbon_aware": cf.get(data, "carbon_aware", path, cf.boolean, False),
            "data_classification": cf.get(
                data, "data_classification", path, cf.choice(CLASSIFICATIONS), "internal"
            ),
            "allowed_regions": cf.get(data, "allowed_regions", path, cf.string_list, []),
            "plan": cf.get(data, "plan", path, cf.choice(PLANS), ""),
            "time_zone": cf.get(data, "time_zone", path, cf.optional_string, ""),
            "baseline_model": cf.get(data, "baseline_model", path, cf.optional_string, ""),
            "gain_share_percent": cf.get(data, "gain_share_percent", path, cf.number, Decimal(0)),
        }
        return TenantSpec(path, slug, fields, api_keys, projects)

    def apply(self, specs: list[TenantSpec], run: cf.Run) -> None:
        report = run.report
        existing = {t.slug: t for t in selectors.tenant_list()}
        for spec in specs:
            current = existing.get(spec.slug)
            with cf.at(spec.path, TENANT_PATHS):
                if current is None:
                    current = services.tenant_create(slug=spec.slug, **spec.fields)
                    report.add("tenant", spec.slug, "created")
                else:
                    changed = cf.diff(current, spec.fields)
                    if changed:
                        services.tenant_update(tenant=current, **changed)
                        report.add("tenant", spec.slug, "updated", tuple(sorted(changed)))
                    else:
                        report.add("tenant", spec.slug, "unchanged")
            if spec.projects is not None:
                _apply_projects(current, spec.projects, run)
            _apply_api_keys(current, spec.api_keys, run)
        if run.prune:
            wanted = {s.slug for s in specs}
            for slug, tenant in existing.items():
                if slug not in wanted:
                    services.tenant_delete(tenant=tenant)
                    report.add("tenant", slug, "deleted", ("with its API keys",))

    def export(self, notes: list[str]) -> list[dict[str, Any]]:
        live_keys: dict[Any, list[ApiKey]] = {}
        for key in selectors.api_key_list().filter(revoked_at__isnull=True).order_by("name"):
            live_keys.setdefault(key.tenant_id, []).append(key)
        projects: dict[Any, list[dict[str, Any]]] = {}
        for project in Project.objects.order_by("slug"):
            item = {"slug": project.slug, "name": project.name}
            if project.description:
                item["description"] = project.description
            projects.setdefault(project.tenant_id, []).append(item)
        return [
            {
                "slug": t.slug,
                "name": t.name,
                "active": t.is_active,
                "store_bodies": t.store_bodies,
                "cost_mode": t.cost_mode,
                "preferred_regions": list(t.preferred_regions or []),
                "carbon_aware": t.carbon_aware,
                **_export_governance(t),
                **_export_costs(t),
                "projects": projects.get(t.pk, []),
                "api_keys": [_export_api_key(k) for k in live_keys.get(t.pk, [])],
            }
            for t in selectors.tenant_list()
        ]
