"""The configuration file's `retention` section: retention policies per tenant and
classification (atp_site.lib.config_file; the format is in docs/configuration.md)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from apps.audit.models import RetentionPolicy
from apps.audit.retention import retention_policy_delete, retention_policy_save
from apps.tenants.selectors import tenant_list
from atp_site.lib import config_file as cf

RETENTION_KEYS = {"tenant", "classification", "days"}


@dataclass
class RetentionSpec:
    path: str
    tenant: str  # a tenant slug or id as written; "" for every tenant
    classification: str
    days: int

    @property
    def label(self) -> str:
        return f"{self.tenant or '*'}/{self.classification or '*'}"


def _tenant_slugs() -> dict[Any, str]:
    """Tenant slugs by id, to name tenants in retention policies."""
    return dict(tenant_list().values_list("pk", "slug"))


def _tenant_id(spec: RetentionSpec) -> uuid.UUID | None:
    """The tenant a policy names by slug, or by id (a deleted tenant's policies stay)."""
    if not spec.tenant:
        return None
    tenant = tenant_list().filter(slug=spec.tenant).first()
    if tenant is not None:
        return tenant.pk
    try:
        return uuid.UUID(spec.tenant)
    except ValueError:
        raise cf.ConfigError(
            cf.join(spec.path, "tenant"), f"no tenant with slug {spec.tenant!r}"
        ) from None


@cf.register
class RetentionSection(cf.Section):
    key = "retention"
    # After tenants: a policy names its tenant by slug.
    order = 40
    unique = ("label", "retention policy (tenant/classification)")

    def parse_item(self, data: Any, path: str, environ: Mapping[str, str]) -> RetentionSpec:
        data = cf.mapping(data, path, RETENTION_KEYS)
        return RetentionSpec(
            path=path,
            tenant=cf.get(data, "tenant", path, cf.string, ""),
            classification=cf.get(data, "classification", path, cf.optional_string, ""),
            days=cf.get(data, "days", path, cf.positive_int, cf.MISSING),
        )

    def apply(self, specs: list[RetentionSpec], run: cf.Run) -> None:
        report = run.report
        existing = {(p.tenant_id, p.classification): p for p in RetentionPolicy.objects.all()}
        wanted = set()
        for spec in specs:
            key = (_tenant_id(spec), spec.classification)
            wanted.add(key)
            current = existing.get(key)
            with cf.at(spec.path):
                if current is None:
                    retention_policy_save(
                        policy=RetentionPolicy(
                            tenant_id=key[0], classification=spec.classification, days=spec.days
                        )
                    )
                    report.add("retention policy", spec.label, "created")
                elif current.days != spec.days:
                    current.days = spec.days
                    retention_policy_save(policy=current)
                    report.add("retention policy", spec.label, "updated", ("days",))
                else:
                    report.add("retention policy", spec.label, "unchanged")
        if run.prune:
            labels = _tenant_slugs()
            for key, policy in existing.items():
                if key not in wanted:
                    label = f"{labels.get(key[0], key[0]) or '*'}/{key[1] or '*'}"
                    retention_policy_delete(policy=policy)
                    report.add("retention policy", label, "deleted")

    def export(self, notes: list[str]) -> list[dict[str, Any]]:
        slugs = _tenant_slugs()
        out = []
        for policy in RetentionPolicy.objects.all():
            item: dict[str, Any] = {}
            if policy.tenant_id is not None:
                item["tenant"] = slugs.get(policy.tenant_id, str(policy.tenant_id))
            if policy.classification:
                item["classification"] = policy.classification
            item["days"] = policy.days
            out.append(item)
        return out
