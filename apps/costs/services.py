"""Writes of apps.costs: rate limits, budgets and notifiers.

Each change is validated (`full_clean`), audited in the same transaction (`rate_limit.*`,
`budget.*`, `notifier.*`) and bumps the configuration version on commit, so every
gateway process compiles the new limits into its next snapshot.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, models, transaction

from apps.audit.snapshots import audit_change, snapshot_of, stored_snapshot
from apps.costs.models import Budget, Notifier, RateLimit, Scope
from atp_site.lib import config_version

RATE_LIMIT_FIELDS = frozenset(
    {
        "scope",
        "plan",
        "tenant",
        "project",
        "api_key",
        "requests_per_minute",
        "tokens_per_minute",
        "max_concurrent",
        "cost_per_hour_usd",
    }
)
BUDGET_FIELDS = frozenset(
    {
        "scope",
        "tenant",
        "project",
        "api_key",
        "name",
        "period",
        "limit_usd",
        "time_zone",
        "thresholds",
        "action",
        "downgrade_to",
        "enabled",
    }
)
NOTIFIER_FIELDS = frozenset({"name", "kind", "tenant", "target", "secret", "enabled"})
# Fields that say where a row applies: fixed once it exists.
SCOPE_FIELDS = frozenset({"scope", "plan", "tenant", "project", "api_key"})
HIDDEN = {Notifier: frozenset({"secret"})}


def _bump_on_commit() -> None:
    transaction.on_commit(config_version.bump)


def _snapshot(obj: models.Model) -> dict:
    return snapshot_of(obj, exclude=HIDDEN.get(type(obj), frozenset()))


def _fill_tenant(fields: dict[str, Any]) -> None:
    """A project's or key's tenant is implied."""
    for name in ("project", "api_key"):
        target = fields.get(name)
        if target is not None and fields.get("tenant") is None:
            fields["tenant"] = target.tenant


def _save(obj: models.Model, *, unique_message: str) -> None:
    obj.full_clean()
    try:
        with transaction.atomic():
            obj.save()
    except IntegrityError:
        raise ValidationError({"scope": ValidationError(unique_message, code="unique")}) from None


def _unique_message(obj: models.Model) -> str:
    if isinstance(obj, RateLimit):
        return f"The {obj.target_label} already has rate limits; change those instead."
    if isinstance(obj, Budget):
        return f"A budget named '{obj.name}' already exists for this tenant."
    return "This name is already in use."


def _check_target_free(obj: RateLimit) -> None:
    """One rate-limit row per target: a second is a clash (409), named by its target."""
    target = {
        Scope.PLAN: {"plan": obj.plan},
        Scope.TENANT: {"tenant_id": obj.tenant_id},
        Scope.PROJECT: {"project_id": obj.project_id},
        Scope.KEY: {"api_key_id": obj.api_key_id},
    }.get(obj.scope)
    if target and RateLimit.objects.filter(scope=obj.scope, **target).exclude(pk=obj.pk).exists():
        raise ValidationError({"scope": ValidationError(_unique_message(obj), code="unique")})


def _create(model: type[models.Model], allowed: frozenset, event: str, fields: dict) -> Any:
    unknown = set(fields) - allowed
    if unknown:
        raise TypeError(f"{model.__name__} got unexpected fields: {sorted(unknown)}")
    _fill_tenant(fields)
    obj = model(**fields)
    if isinstance(obj, RateLimit) and obj.scope in Scope.values:
        _check_target_free(obj)
    if isinstance(obj, Budget) and not obj.thresholds:
        obj.thresholds = list(Budget.DEFAULT_THRESHOLDS)
    _save(obj, unique_message=_unique_message(obj))
    audit_change(
        event_type=event,
        resource_id=obj.pk,
        tenant_id=getattr(obj, "tenant_id", None),
        after=_snapshot(obj),
        data={"secret_set": True} if getattr(obj, "secret", "") else None,
    )
    _bump_on_commit()
    return obj


def _update(obj: models.Model, allowed: frozenset, event: str, fields: dict) -> Any:
    unknown = set(fields) - (allowed - SCOPE_FIELDS)
    if unknown:
        raise TypeError(f"{type(obj).__name__} update got unexpected fields: {sorted(unknown)}")
    before = stored_snapshot(obj) if hasattr(obj, "pk") else None
    before = {k: v for k, v in (before or {}).items() if k not in HIDDEN.get(type(obj), ())}
    secret_changed = "secret" in fields and fields["secret"] != getattr(obj, "secret", None)
    for name, value in fields.items():
        setattr(obj, name, value)
    _save(obj, unique_message=_unique_message(obj))
    after = _snapshot(obj)
    if secret_changed:  # recorded as a change, never with any trace of the secret
        before, after = {**before, "secret_replaced": False}, {**after, "secret_replaced": True}
    audit_change(
        event_type=event,
        resource_id=obj.pk,
        tenant_id=getattr(obj, "tenant_id", None),
        before=before,
        after=after,
    )
    _bump_on_commit()
    return obj


def _delete(obj: models.Model, event: str) -> None:
    pk, tenant_id, before = obj.pk, getattr(obj, "tenant_id", None), _snapshot(obj)
    obj.delete()
    audit_change(event_type=event, resource_id=pk, tenant_id=tenant_id, before=before)
    _bump_on_commit()


@transaction.atomic
def rate_limit_create(**fields: Any) -> RateLimit:
    """Limits for one scope: `scope` plan (with `plan`), tenant, project or key."""
    return _create(RateLimit, RATE_LIMIT_FIELDS, "rate_limit.created", fields)


@transaction.atomic
def rate_limit_update(*, rate_limit: RateLimit, **fields: Any) -> RateLimit:
    return _update(rate_limit, RATE_LIMIT_FIELDS, "rate_limit.updated", fields)


@transaction.atomic
def rate_limit_delete(*, rate_limit: RateLimit) -> None:
    _delete(rate_limit, "rate_limit.deleted")


@transaction.atomic
def budget_create(**fields: Any) -> Budget:
    """A budget on a tenant, project or key."""
    if fields.get("scope") == Scope.PLAN:
        raise ValidationError({"scope": "Budgets apply to a tenant, a project or a key."})
    return _create(Budget, BUDGET_FIELDS, "budget.created", fields)


@transaction.atomic
def budget_update(*, budget: Budget, **fields: Any) -> Budget:
    return _update(budget, BUDGET_FIELDS, "budget.updated", fields)


@transaction.atomic
def budget_delete(*, budget: Budget) -> None:
    _delete(budget, "budget.deleted")


def _check_notifier(fields: dict) -> None:
    kind, target = fields.get("kind"), (fields.get("target") or "").strip()
    if kind == Notifier.Kind.WEBHOOK:
        if not target.startswith(("https://", "http://")):
            raise ValidationError({"target": "A webhook's target is an http(s) URL."})
        if not fields.get("secret"):
            raise ValidationError({"secret": "A webhook needs a signing secret."})
    elif kind == Notifier.Kind.EMAIL:
        from django.core.validators import validate_email

        addresses = [a.strip() for a in target.split(",") if a.strip()]
        if not addresses:
            raise ValidationError({"target": "Give at least one e-mail address."})
        for address in addresses:
            try:
                validate_email(address)
            except ValidationError:
                raise ValidationError(
                    {"target": f"'{address}' is not an e-mail address."}
                ) from None


@transaction.atomic
def notifier_create(**fields: Any) -> Notifier:
    _check_notifier(fields)
    return _create(Notifier, NOTIFIER_FIELDS, "notifier.created", fields)


@transaction.atomic
def notifier_update(*, notifier: Notifier, **fields: Any) -> Notifier:
    merged = {
        "kind": notifier.kind,
        "target": notifier.target,
        "secret": notifier.secret,
        **fields,
    }
    _check_notifier(merged)
    return _update(notifier, NOTIFIER_FIELDS - {"kind"}, "notifier.updated", fields)


@transaction.atomic
def notifier_delete(*, notifier: Notifier) -> None:
    _delete(notifier, "notifier.deleted")
