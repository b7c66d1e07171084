"""Writes of apps.policies: create, change and delete policies.

Each change is validated (apps.policies.validation, then `full_clean`), audited in the same
transaction (`policy.created`, `policy.updated`, `policy.deleted`) and bumps the
configuration version on commit, so every gateway process compiles the new policies into
its next snapshot. Warnings (unreachable rules) do not stop a save: they are left on the
returned policy as `warnings`.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from apps.audit.snapshots import audit_change, changed_fields, snapshot_of, stored_snapshot
from apps.policies.models import Policy
from apps.policies.validation import errors_by_field, has_errors, validate_policy
from atp_site.lib import config_version

POLICY_FIELDS = frozenset(
    {"tenant", "name", "description", "enabled", "mode", "priority", "scope", "rules"}
)


def with_rule_ids(rules: Any) -> Any:
    """Rules without an id are named `rule-<n>` by position, so matches can name them."""
    if not isinstance(rules, list):
        return rules
    taken = {r.get("id") for r in rules if isinstance(r, dict)}
    out = []
    for i, rule in enumerate(rules):
        if isinstance(rule, dict) and not rule.get("id"):
            n = i + 1
            while f"rule-{n}" in taken:
                n += 1
            taken.add(f"rule-{n}")
            rule = {"id": f"rule-{n}", **rule}
        out.append(rule)
    return out


def _check(policy: Policy) -> list[dict[str, str]]:
    problems = validate_policy(
        {
            "id": policy.pk,
            "name": policy.name,
            "mode": policy.mode,
            "priority": policy.priority,
            "scope": policy.scope,
            "rules": policy.rules,
        },
        tenant_id=str(policy.tenant_id) if policy.tenant_id else None,
    )
    if has_errors(problems):
        raise ValidationError(errors_by_field(problems))
    return problems


def _normalize(policy: Policy) -> None:
    policy.rules = with_rule_ids(policy.rules)
    if isinstance(policy.scope, dict):
        policy.scope = {k: v for k, v in policy.scope.items() if v}


def _save(policy: Policy) -> None:
    _normalize(policy)
    warnings = _check(policy)
    policy.full_clean()
    try:
        with transaction.atomic():
            policy.save()
    except IntegrityError:
        raise ValidationError({"name": ValidationError(_taken(policy), code="unique")}) from None
    policy.warnings = warnings


def _taken(policy: Policy) -> str:
    where = f"tenant '{policy.tenant.slug}'" if policy.tenant_id else "every tenant"
    return f"A policy named '{policy.name}' already exists for {where}."


def _check_name_free(policy: Policy) -> None:
    clash = Policy.objects.filter(tenant_id=policy.tenant_id, name=policy.name)
    if policy.pk:
        clash = clash.exclude(pk=policy.pk)
    if clash.exists():
        raise ValidationError({"name": ValidationError(_taken(policy), code="unique")})


@transaction.atomic
def policy_create(**fields: Any) -> Policy:
    """A policy of `tenant` (None: a global one)."""
    unknown = set(fields) - POLICY_FIELDS
    if unknown:
        raise TypeError(f"Policy got unexpected fields: {sorted(unknown)}")
    policy = Policy(**fields)
    _check_name_free(policy)
    _save(policy)
    audit_change(
        event_type="policy.created",
        resource_id=policy.pk,
        tenant_id=policy.tenant_id,
        after=snapshot_of(policy),
    )
    transaction.on_commit(config_version.bump)
    return policy


@transaction.atomic
def policy_update(*, policy: Policy, **fields: Any) -> Policy:
    """Change a policy; its tenant is fixed once made. Bumps its version when anything
    changed."""
    unknown = set(fields) - (POLICY_FIELDS - {"tenant"})
    if unknown:
        raise TypeError(f"Policy update got unexpected fields: {sorted(unknown)}")
    before = stored_snapshot(policy) or snapshot_of(policy)
    for name, value in fields.items():
        setattr(policy, name, value)
    _normalize(policy)
    _check_name_free(policy)
    if set(changed_fields(before, snapshot_of(policy))) - {"version"}:
        policy.version += 1
    _save(policy)
    event = audit_change(
        event_type="policy.updated",
        resource_id=policy.pk,
        tenant_id=policy.tenant_id,
        before=before,
        after=snapshot_of(policy),
    )
    if event is not None:
        transaction.on_commit(config_version.bump)
    return policy


@transaction.atomic
def policy_delete(*, policy: Policy) -> None:
    pk, tenant_id, before = policy.pk, policy.tenant_id, snapshot_of(policy)
    policy.delete()
    audit_change(event_type="policy.deleted", resource_id=pk, tenant_id=tenant_id, before=before)
    transaction.on_commit(config_version.bump)
