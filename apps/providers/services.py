"""Writes to providers and model deployments: audited, bumping the config version on commit."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from decimal import Decimal, InvalidOperation
from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from apps.audit.snapshots import audit_change, snapshot_of, stored_snapshot
from apps.providers.models import ModelDeployment, Provider
from apps.tenants.permissions import CHANGE_PROVIDER_CREDENTIALS
from atp_site.lib import config_version


class _Unset:
    """Marks an optional argument the caller did not pass (None is a meaningful value)."""

    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()

PROVIDER_FIELDS = frozenset(
    {
        "name",
        "kind",
        "base_url",
        "api_key_env",
        "region",
        "connect_timeout",
        "first_byte_timeout",
        "total_timeout",
        "options",
        "enabled",
    }
)
DEPLOYMENT_FIELDS = frozenset(
    {
        "public_name",
        "upstream_model",
        "aliases",
        "input_price",
        "output_price",
        "cached_input_price",
        "cache_write_price",
        "reasoning_price",
        "context_window",
        "max_output_tokens",
        "capabilities",
        "quality_score",
        "region",
        "weight",
        "enabled",
        "listed",
    }
)
PRICE_FIELDS = (
    "input_price",
    "output_price",
    "cached_input_price",
    "cache_write_price",
    "reasoning_price",
)


def _bump_on_commit() -> None:
    transaction.on_commit(config_version.bump)


def _reject_unknown(fields: dict[str, Any], allowed: frozenset[str], service: str) -> None:
    unknown = set(fields) - allowed
    if unknown:
        raise TypeError(f"{service}() got unexpected fields: {sorted(unknown)}")


# --- providers ------------------------------------------------------------------------------


def _provider_state(provider: Provider | None) -> dict[str, Any] | None:
    """The provider's snapshot plus a fingerprint of its stored key.

    The ciphertext is left out of snapshots; its digest under the name `api_key` (masked to
    '***' in the log) still lets a replaced key show up as a change.
    """
    if provider is None:
        return None
    state = snapshot_of(provider)
    secret = provider.api_key_encrypted
    state["api_key"] = hashlib.sha256(secret.encode()).hexdigest() if secret else ""
    return state


def _check_credentials_change(by: AbstractBaseUser | None, changed: list[str]) -> None:
    """Refuse a change of where a provider's key goes or comes from without the permission.

    A new base URL receives the stored key, and an environment variable reference reads the
    server's environment: both need `providers.change_provider_credentials`, which no role
    has by default. `by` None is an operator (configuration file, command line).
    """
    if by is None or not changed or by.has_perm(CHANGE_PROVIDER_CREDENTIALS):
        return
    raise PermissionDenied(
        f"Changing a provider's {' and '.join(changed)} needs the permission "
        f"{CHANGE_PROVIDER_CREDENTIALS}."
    )


def _clean_provider(provider: Provider) -> None:
    if not isinstance(provider.options, dict):
        raise ValidationError({"options": "Must be an object."})
    if provider.api_key_env and provider.api_key_encrypted:
        raise ValidationError(
            {"api_key_env": "Give either an API key or an environment variable, not both."}
        )
    provider.full_clean()


@transaction.atomic
def provider_create(
    *,
    name: str,
    kind: str,
    base_url: str = "",
    api_key: str | None = None,
    api_key_env: str = "",
    region: str = "",
    connect_timeout: float | None = None,
    first_byte_timeout: float | None = None,
    total_timeout: float | None = None,
    options: dict[str, Any] | None = None,
    enabled: bool = True,
    by: AbstractBaseUser | None = None,
) -> Provider:
    """Create a provider. `api_key` is plaintext, stored encrypted; `api_key_env` instead
    names an environment variable the data plane reads (an allowed one, see
    apps.providers.credentials). At most one of them may be set. `by` is the user asking:
    referencing a variable needs the dedicated credentials permission."""
    _check_credentials_change(by, ["api_key_env"] if api_key_env else [])
    provider = Provider(
        name=name,
        kind=kind,
        base_url=base_url,
        api_key_env=api_key_env,
        region=region,
        connect_timeout=connect_timeout,
        first_byte_timeout=first_byte_timeout,
        total_timeout=total_timeout,
        options={} if options is None else options,
        enabled=enabled,
    )
    if api_key:
        provider.set_api_key(api_key)
    _clean_provider(provider)
    provider.save()
    audit_change(
        event_type="provider.created", resource_id=provider.pk, after=_provider_state(provider)
    )
    _bump_on_commit()
    return provider


@transaction.atomic
def provider_update(
    *,
    provider: Provider,
    api_key: str | None = UNSET,
    by: AbstractBaseUser | None = None,
    **fields: Any,
) -> Provider:
    """Change a provider's fields and credentials.

    `api_key` left out keeps the stored key; `None` or "" removes it; a value replaces it.
    A provider has one credential source: setting a key clears `api_key_env` and setting
    `api_key_env` clears the stored key; giving both at once is an error. `by` is the user
    asking: a change of base URL, key or variable needs the dedicated credentials permission.
    """
    _reject_unknown(fields, PROVIDER_FIELDS, "provider_update")
    new_env = fields.get("api_key_env", "")
    if api_key is not UNSET and api_key and new_env:
        raise ValidationError(
            {"api_key_env": "Give either an API key or an environment variable, not both."}
        )
    stored = Provider.objects.filter(pk=provider.pk).first() if provider.pk else None
    _check_credentials_change(by, _credential_changes(stored, api_key, fields))
    before = _provider_state(stored)
    for field, value in fields.items():
        setattr(provider, field, value)
    if api_key is not UNSET:
        provider.api_key_encrypted = ""
        if api_key:
            provider.set_api_key(api_key)
            provider.api_key_env = ""
    elif new_env:
        provider.api_key_encrypted = ""
    _clean_provider(provider)
    provider.save()
    audit_change(
        event_type="provider.updated",
        resource_id=provider.pk,
        before=before,
        after=_provider_state(provider),
    )
    _bump_on_commit()
    return provider


def _credential_changes(
    stored: Provider | None, api_key: str | None, fields: dict[str, Any]
) -> list[str]:
    """Which of base_url, api_key and api_key_env an update really changes."""
    changed = []
    if "base_url" in fields and (stored is None or fields["base_url"] != stored.base_url):
        changed.append("base_url")
    if api_key is not UNSET and (api_key or (stored is not None and stored.has_stored_api_key)):
        changed.append("api_key")
    if "api_key_env" in fields and (
        stored is None or (fields["api_key_env"] or "") != stored.api_key_env
    ):
        changed.append("api_key_env")
    return changed


@transaction.atomic
def provider_delete(*, provider: Provider) -> None:
    """Delete the provider and, by cascade, its deployments."""
    provider_id, before = provider.pk, _provider_state(provider)
    deployments = list(provider.deployments.values_list("id", flat=True))
    provider.delete()
    audit_change(
        event_type="provider.deleted",
        resource_id=provider_id,
        before=before,
        data={"deleted_deployments": [str(d) for d in deployments]},
    )
    _bump_on_commit()


# --- deployments ----------------------------------------------------------------------------


def _to_price(field: str, value: Any) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValidationError({field: "Must be a number."})
    try:
        # str() first so a float such as 0.15 becomes Decimal("0.15"), not its binary value.
        return Decimal(str(value))
    except InvalidOperation:
        raise ValidationError({field: "Must be a number."}) from None


def _clean_deployment(deployment: ModelDeployment) -> None:
    if not isinstance(deployment.quality_score, int | float) or not (
        0 <= deployment.quality_score <= 1
    ):
        raise ValidationError({"quality_score": "Must be a number between 0 and 1."})
    clash = ModelDeployment.objects.filter(
        provider_id=deployment.provider_id, public_name=deployment.public_name
    ).exclude(pk=deployment.pk)
    if clash.exists():
        raise ValidationError(
            {
                "public_name": ValidationError(
                    "This provider already serves a model with this public name.", code="unique"
                )
            }
        )
    deployment.full_clean()


def _record_prices(deployment: ModelDeployment, before: dict[str, Any] | None) -> None:
    """Every price change joins the deployment's price history (apps.costs.catalog), in the
    same transaction; `before` None: the deployment was just created."""
    from apps.costs.catalog import price_history_record

    price_history_record(deployment=deployment, before=before)


@transaction.atomic
def deployment_create(
    *,
    provider: Provider,
    public_name: str,
    upstream_model: str,
    input_price: Decimal | float | str,
    output_price: Decimal | float | str,
    aliases: Iterable[str] = (),
    cached_input_price: Decimal | float | str | None = None,
    cache_write_price: Decimal | float | str | None = None,
    reasoning_price: Decimal | float | str | None = None,
    context_window: int = 128_000,
    max_output_tokens: int | None = None,
    capabilities: Iterable[str] = (),
    quality_score: float = 0.5,
    region: str = "",
    weight: int = 100,
    enabled: bool = True,
    listed: bool = True,
) -> ModelDeployment:
    """Create a deployment: `public_name` as callers name it, served by `provider` as
    `upstream_model`. Prices are USD per million tokens. An unlisted one is reachable only
    through routes."""
    deployment = ModelDeployment(
        provider=provider,
        public_name=public_name,
        upstream_model=upstream_model,
        aliases=list(aliases),
        input_price=_to_price("input_price", input_price),
        output_price=_to_price("output_price", output_price),
        cached_input_price=_to_price("cached_input_price", cached_input_price),
        cache_write_price=_to_price("cache_write_price", cache_write_price),
        reasoning_price=_to_price("reasoning_price", reasoning_price),
        context_window=context_window,
        max_output_tokens=max_output_tokens,
        capabilities=list(capabilities),
        quality_score=quality_score,
        region=region,
        weight=weight,
        enabled=enabled,
        listed=listed,
    )
    _clean_deployment(deployment)
    deployment.save()
    audit_change(
        event_type="deployment.created", resource_id=deployment.pk, after=snapshot_of(deployment)
    )
    _record_prices(deployment, None)
    _bump_on_commit()
    return deployment


@transaction.atomic
def deployment_update(*, deployment: ModelDeployment, **fields: Any) -> ModelDeployment:
    """Change any deployment field except its provider."""
    _reject_unknown(fields, DEPLOYMENT_FIELDS, "deployment_update")
    before = stored_snapshot(deployment)
    for field, value in fields.items():
        if field in PRICE_FIELDS:
            value = _to_price(field, value)
        elif field in ("aliases", "capabilities") and not isinstance(value, str):
            value = list(value)
        setattr(deployment, field, value)
    _clean_deployment(deployment)
    deployment.save()
    audit_change(
        event_type="deployment.updated",
        resource_id=deployment.pk,
        before=before,
        after=snapshot_of(deployment),
    )
    _record_prices(deployment, before)
    _bump_on_commit()
    return deployment


@transaction.atomic
def deployment_delete(*, deployment: ModelDeployment) -> None:
    deployment_id, before = deployment.pk, snapshot_of(deployment)
    deployment.delete()
    audit_change(event_type="deployment.deleted", resource_id=deployment_id, before=before)
    _bump_on_commit()


# --- operations from the console: connectivity tests and circuit resets ----------------------


def mask_credential(text: str, secret: str) -> str:
    """`text` (an upstream's error message) with the key and every URL query value masked."""
    from atp_site.lib.logs import redact

    if secret and len(secret) >= 4:
        text = text.replace(secret, "***")
    return redact(text)


def provider_connectivity_test(*, provider: Provider) -> Any:
    """Call the provider's upstream now, the way the health job does (its adapter and
    credentials, the cheapest enabled deployment or the model listing), record the result
    in its health history and the audit log, and return the HealthCheck; None when there is
    nothing to call (a protocol without a model listing and no model deployed yet).

    Synchronous (it runs its own event loop): call it from a view or a task, never from a
    coroutine. The stored and returned error never holds the provider's key."""
    import asyncio

    from apps.audit.models import AuditEvent
    from apps.audit.services import audit_record
    from apps.providers.credentials import provider_api_key
    from apps.providers.health import ProbeResult, health_check_record, probe_provider
    from apps.providers.http import close_sessions

    deployments = [d for d in provider.deployments.all() if d.enabled] or list(
        provider.deployments.all()
    )

    async def probe() -> ProbeResult | None:
        try:
            return await probe_provider(provider, deployments)
        finally:
            await close_sessions()

    result = asyncio.run(probe())
    if result is None:
        return None
    secret = provider_api_key(provider)
    result = ProbeResult(result.status, result.latency_ms, mask_credential(result.error, secret))
    check = health_check_record(
        provider=provider, result=result, deployment_ids=[str(d.id) for d in deployments]
    )
    audit_record(
        event_type="provider.tested",
        action="test",
        outcome=(
            AuditEvent.Outcome.SUCCESS if result.status != "down" else AuditEvent.Outcome.FAILURE
        ),
        resource_type="provider",
        resource_id=str(provider.pk),
        data={"status": result.status, "latency_ms": result.latency_ms, "error": result.error},
    )
    return check


def deployment_circuit_reset(*, deployment: ModelDeployment) -> dict[str, Any]:
    """Close a deployment's circuit breaker (shared by every process when Redis is set),
    audited with the state it had; returns that state."""
    from apps.audit.services import audit_record
    from apps.routing.resilience.breaker import get_breakers

    breakers = get_breakers()
    key = str(deployment.pk)
    before = breakers.state_of(key).as_dict()
    breakers.reset_sync(key)
    audit_record(
        event_type="deployment.circuit_reset",
        action="reset_circuit",
        resource_type="deployment",
        resource_id=key,
        data={"public_name": deployment.public_name, "before": before},
    )
    return before


CHANGE_DEPLOYMENT_PRICES = "providers.change_deployment_prices"


def may_change_prices(user: Any, deployment: ModelDeployment) -> bool:
    """Whether `user` may change `deployment`'s prices: its change permission, or the
    prices permission alone (the cost-admin role). The console and the API both ask."""
    from apps.tenants import permissions

    return permissions.may_on(user, deployment, "change") or bool(
        user.is_active and user.has_perm(CHANGE_DEPLOYMENT_PRICES)
    )


def deployment_set_prices(*, deployment: ModelDeployment, **prices: Any) -> ModelDeployment:
    """Change only a deployment's prices (USD per million tokens), audited as an update.

    Whoever may change the deployment, or holds `providers.change_deployment_prices`, may."""
    unknown = set(prices) - set(PRICE_FIELDS)
    if unknown:
        raise TypeError(f"deployment_set_prices() got non-price fields: {sorted(unknown)}")
    return deployment_update(deployment=deployment, **prices)
