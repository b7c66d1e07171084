"""Declarative configuration: apply a YAML document of providers, models, tenants, routes and
retention policies, or export one.

The file format is documented in docs/configuration.md. `apply_config` validates the whole
document first, then converges the database on it in one transaction through the services,
so a file that fails anywhere changes nothing.
"""

from __future__ import annotations

import os
import re
import sys
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import yaml
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from apps.audit.context import AuditActor, acting_as, current_actor
from apps.audit.models import RetentionPolicy
from apps.audit.retention import retention_policy_delete, retention_policy_save
from apps.providers import selectors as provider_selectors
from apps.providers import services as provider_services
from apps.providers.credentials import env_reference_error, server_secret_error
from apps.providers.models import ModelDeployment, Provider
from apps.routing import route_services
from apps.routing.models import Route
from apps.tenants import selectors as tenant_selectors
from apps.tenants import services as tenant_services
from apps.tenants.keys import hash_key, key_strength_error
from apps.tenants.models import ApiKey, Tenant
from atp_site.lib import crypto

VERSION = 1
ENV_PREFIX = "env:"
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_MISSING: Any = object()


class ConfigError(Exception):
    """The document is invalid; the message starts with the path of the offending value."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path


# --- the report ----------------------------------------------------------------------------


@dataclass
class Change:
    """What applying did (or, in a dry run, would do) to one object."""

    kind: str  # provider | deployment | tenant | api key | route | retention policy
    name: str
    action: str  # created | updated | unchanged | replaced | deleted | revoked
    fields: tuple[str, ...] = ()
    # The plaintext of a key the file did not supply: shown once, never stored.
    secret: str | None = None

    def line(self) -> str:
        text = f"{self.kind} {self.name}: {self.action}"
        if self.fields:
            text += f" ({', '.join(self.fields)})"
        if self.secret:
            text += f"\n    key (shown once, store it now): {self.secret}"
        return text


@dataclass
class ApplyReport:
    dry_run: bool = False
    changes: list[Change] = field(default_factory=list)

    def add(self, *args: Any, **kwargs: Any) -> None:
        self.changes.append(Change(*args, **kwargs))

    def count(self, action: str) -> int:
        return sum(1 for c in self.changes if c.action == action)

    @property
    def changed(self) -> bool:
        return any(c.action != "unchanged" for c in self.changes)

    def summary(self) -> str:
        actions = ("created", "updated", "replaced", "deleted", "revoked", "unchanged")
        counts = ", ".join(f"{self.count(a)} {a}" for a in actions)
        if self.dry_run:
            return f"Dry run, nothing applied: {counts}."
        return f"Applied: {counts}." if self.changed else f"No changes: {counts}."

    def lines(self) -> list[str]:
        return [c.line() for c in self.changes] + [self.summary()]


# --- validation: the document into specs ---------------------------------------------------


@dataclass
class DeploymentSpec:
    path: str
    public_name: str
    fields: dict[str, Any]  # deployment service keyword arguments, except provider


@dataclass
class ProviderSpec:
    path: str
    name: str
    fields: dict[str, Any]  # provider service keyword arguments, except credentials
    api_key: str | None  # a literal key, stored encrypted
    api_key_env: str
    models: list[DeploymentSpec]


@dataclass
class ApiKeySpec:
    path: str
    name: str
    plaintext: str | None  # None: generate once, then leave the key alone
    allowed_models: list[str]
    expires_at: datetime | None


@dataclass
class TenantSpec:
    path: str
    slug: str
    fields: dict[str, Any]
    api_keys: list[ApiKeySpec]


@dataclass
class RouteSpec:
    path: str
    name: str
    fields: dict[str, Any]  # route service keyword arguments, except name


@dataclass
class RetentionSpec:
    path: str
    tenant: str  # a tenant slug or id as written; "" for every tenant
    classification: str
    days: int

    @property
    def label(self) -> str:
        return f"{self.tenant or '*'}/{self.classification or '*'}"


@dataclass
class ConfigSpec:
    # None: the section is absent, so it is neither applied nor pruned.
    providers: list[ProviderSpec] | None
    tenants: list[TenantSpec] | None
    routes: list[RouteSpec] | None = None
    retention: list[RetentionSpec] | None = None


def _mapping(value: Any, path: str, allowed: set[str]) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(path, "must be a mapping")
    for key in value:
        if key not in allowed:
            raise ConfigError(
                _join(path, str(key)), f"unknown key (expected one of {sorted(allowed)})"
            )
    return value


def _join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def _get(
    data: Mapping[str, Any], key: str, path: str, check: Callable[[Any, str], Any], default: Any
) -> Any:
    """`data[key]` checked by `check`; absent or null gives `default` (_MISSING: required)."""
    if data.get(key) is None:
        if default is _MISSING:
            raise ConfigError(_join(path, key), "is required")
        return default
    return check(data[key], _join(path, key))


def _string(value: Any, path: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(path, "must be a non-empty string")
    return value.strip()


def _optional_string(value: Any, path: str) -> str:
    if not isinstance(value, str):
        raise ConfigError(path, "must be a string")
    return value.strip()


def _boolean(value: Any, path: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(path, "must be true or false")
    return value


def _number(value: Any, path: str) -> Decimal:
    """A non-negative number with at most 6 decimals (prices are stored to a millionth)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise ConfigError(path, "must be a number >= 0")
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise ConfigError(path, "must be a number >= 0") from None
    if not number.is_finite() or number < 0:
        raise ConfigError(path, "must be a number >= 0")
    if number.as_tuple().exponent < -6:
        raise ConfigError(path, "must have at most 6 decimal places")
    return number


def _seconds(value: Any, path: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ConfigError(path, "must be a number of seconds > 0")
    return float(value)


def _fraction(value: Any, path: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise ConfigError(path, "must be a number between 0 and 1")
    return float(value)


def _positive_int(value: Any, path: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(path, "must be a whole number >= 1")
    return value


def _non_negative_int(value: Any, path: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(path, "must be a whole number >= 0")
    return value


def _string_list(value: Any, path: str) -> list[str]:
    if not isinstance(value, list):
        raise ConfigError(path, "must be a list of strings")
    items = [_string(item, _join(path, i)) for i, item in enumerate(value)]
    return list(dict.fromkeys(items))


def _object(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(path, "must be a mapping")
    return dict(value)


def _datetime(value: Any, path: str) -> datetime:
    if isinstance(value, str):
        parsed = parse_datetime(value.strip())
        if parsed is None:
            raise ConfigError(path, "must be a date and time such as 2027-01-01T00:00:00Z")
        value = parsed
    if not isinstance(value, datetime):
        raise ConfigError(path, "must be a date and time such as 2027-01-01T00:00:00Z")
    if timezone.is_naive(value):
        value = value.replace(tzinfo=UTC)
    return value


def _list(data: Mapping[str, Any], key: str, path: str) -> list[Any] | None:
    if key not in data:
        return None
    value = data[key]
    if value is None:
        return []
    if not isinstance(value, list):
        raise ConfigError(_join(path, key), "must be a list")
    return value


def _unique(items: list[Any], attr: str, path: str, what: str) -> None:
    seen: set[str] = set()
    for item in items:
        name = getattr(item, attr)
        if name in seen:
            raise ConfigError(item.path, f"duplicate {what} {name!r}")
        seen.add(name)


def _env_name(value: str, path: str) -> str:
    name = value[len(ENV_PREFIX) :].strip()
    if not _ENV_NAME.match(name):
        raise ConfigError(path, "env: must be followed by an environment variable name")
    return name


PROVIDER_KEYS = {
    "name",
    "kind",
    "base_url",
    "api_key",
    "region",
    "timeouts",
    "options",
    "enabled",
    "models",
}
MODEL_KEYS = {
    "name",
    "upstream",
    "aliases",
    "prices",
    "context_window",
    "max_output_tokens",
    "capabilities",
    "quality",
    "region",
    "weight",
    "enabled",
    "listed",
}
PRICE_KEYS = {
    "input": "input_price",
    "output": "output_price",
    "cached_input": "cached_input_price",
    "cache_write": "cache_write_price",
    "reasoning": "reasoning_price",
}
TIMEOUT_KEYS = {
    "connect": "connect_timeout",
    "first_byte": "first_byte_timeout",
    "total": "total_timeout",
}
TENANT_KEYS = {
    "slug",
    "name",
    "active",
    "store_bodies",
    "cost_mode",
    "preferred_regions",
    "carbon_aware",
    "api_keys",
}
COST_MODES = ("aggressive", "balanced", "quality_first")
RETENTION_KEYS = {"tenant", "classification", "days"}
API_KEY_KEYS = {"name", "key", "prefix", "allowed_models", "expires_at"}


def _parse_model(data: Any, path: str) -> DeploymentSpec:
    data = _mapping(data, path, MODEL_KEYS)
    name = _get(data, "name", path, _string, _MISSING)
    prices_path = _join(path, "prices")
    prices = _mapping(_get(data, "prices", path, _object, {}), prices_path, set(PRICE_KEYS))
    fields: dict[str, Any] = {
        "upstream_model": _get(data, "upstream", path, _string, name),
        "aliases": _get(data, "aliases", path, _string_list, []),
        "context_window": _get(data, "context_window", path, _positive_int, 128_000),
        "max_output_tokens": _get(data, "max_output_tokens", path, _positive_int, None),
        "capabilities": _get(data, "capabilities", path, _string_list, []),
        "quality_score": _get(data, "quality", path, _fraction, 0.5),
        "region": _get(data, "region", path, _optional_string, ""),
        "weight": _get(data, "weight", path, _non_negative_int, 100),
        "enabled": _get(data, "enabled", path, _boolean, True),
        # false: hidden from /v1/models and callable only through routes.
        "listed": _get(data, "listed", path, _boolean, True),
    }
    for key, service_field in PRICE_KEYS.items():
        required_default = Decimal(0) if key in ("input", "output") else None
        fields[service_field] = _get(prices, key, prices_path, _number, required_default)
    return DeploymentSpec(path=path, public_name=name, fields=fields)


def _parse_provider(data: Any, path: str) -> ProviderSpec:
    data = _mapping(data, path, PROVIDER_KEYS)
    name = _get(data, "name", path, _string, _MISSING)
    kinds = Provider.Kind.values

    def kind_check(value: Any, kpath: str) -> str:
        if value not in kinds:
            raise ConfigError(kpath, f"must be one of {', '.join(kinds)}")
        return value

    timeouts_path = _join(path, "timeouts")
    timeouts = _mapping(_get(data, "timeouts", path, _object, {}), timeouts_path, set(TIMEOUT_KEYS))
    fields: dict[str, Any] = {
        "kind": _get(data, "kind", path, kind_check, _MISSING),
        "base_url": _get(data, "base_url", path, _optional_string, ""),
        "region": _get(data, "region", path, _optional_string, ""),
        "options": _get(data, "options", path, _object, {}),
        "enabled": _get(data, "enabled", path, _boolean, True),
    }
    for key, service_field in TIMEOUT_KEYS.items():
        fields[service_field] = _get(timeouts, key, timeouts_path, _seconds, None)

    api_key, api_key_env = None, ""
    raw_key = _get(data, "api_key", path, _string, None)
    if raw_key is not None:
        if raw_key.startswith(ENV_PREFIX):
            key_path = _join(path, "api_key")
            api_key_env = _env_name(raw_key, key_path)
            if problem := env_reference_error(api_key_env):
                raise ConfigError(key_path, problem)
        else:
            api_key = raw_key

    models_path = _join(path, "models")
    models = [
        _parse_model(item, _join(models_path, i))
        for i, item in enumerate(_list(data, "models", path) or [])
    ]
    _unique(models, "public_name", models_path, "model name")
    return ProviderSpec(path, name, fields, api_key, api_key_env, models)


def _parse_api_key(data: Any, path: str, environ: Mapping[str, str]) -> ApiKeySpec:
    data = _mapping(data, path, API_KEY_KEYS)
    plaintext = _get(data, "key", path, _string, None)
    key_path = _join(path, "key")
    if plaintext is not None and plaintext.startswith(ENV_PREFIX):
        env = _env_name(plaintext, key_path)
        if problem := server_secret_error(env):
            raise ConfigError(key_path, problem)
        plaintext = environ.get(env)
        if not plaintext:
            raise ConfigError(key_path, f"environment variable {env} is not set")
    if plaintext is not None and (problem := key_strength_error(plaintext)):
        name = data.get("name") if isinstance(data.get("name"), str) else "?"
        raise ConfigError(key_path, f"key {name!r} {problem}")
    return ApiKeySpec(
        path=path,
        name=_get(data, "name", path, _string, _MISSING),
        plaintext=plaintext,
        allowed_models=_get(data, "allowed_models", path, _string_list, []),
        expires_at=_get(data, "expires_at", path, _datetime, None),
    )


def _parse_tenant(data: Any, path: str, environ: Mapping[str, str]) -> TenantSpec:
    data = _mapping(data, path, TENANT_KEYS)
    slug = _get(data, "slug", path, _string, _MISSING)
    keys_path = _join(path, "api_keys")
    api_keys = [
        _parse_api_key(item, _join(keys_path, i), environ)
        for i, item in enumerate(_list(data, "api_keys", path) or [])
    ]
    _unique(api_keys, "name", keys_path, "key name")
    fields = {
        "name": _get(data, "name", path, _string, slug),
        "is_active": _get(data, "active", path, _boolean, True),
        "store_bodies": _get(data, "store_bodies", path, _boolean, False),
        "cost_mode": _get(data, "cost_mode", path, _choice(COST_MODES), "balanced"),
        "preferred_regions": _get(data, "preferred_regions", path, _string_list, []),
        "carbon_aware": _get(data, "carbon_aware", path, _boolean, False),
    }
    return TenantSpec(path, slug, fields, api_keys)


def _choice(choices: Sequence[str]) -> Callable[[Any, str], str]:
    def check(value: Any, path: str) -> str:
        if value not in choices:
            raise ConfigError(path, f"must be one of {', '.join(choices)}")
        return value

    return check


def _parse_route(data: Any, path: str) -> RouteSpec:
    """Types are checked here; ranges and keys inside the objects by the route service."""
    data = _mapping(data, path, route_services.ROUTE_FIELDS)
    name = _get(data, "name", path, _string, _MISSING)
    fields: dict[str, Any] = {
        "description": _get(data, "description", path, _optional_string, ""),
        "enabled": _get(data, "enabled", path, _boolean, True),
        # Left out: a built-in route's own, else the route's default (Route's docstring).
        "strategy": _get(data, "strategy", path, _choice(Route.Strategy.values), ""),
        "tier": _get(data, "tier", path, _choice(Route.Tier.values), ""),
        "candidates": _get(data, "candidates", path, _string_list, []),
        "candidate_filter": _get(data, "candidate_filter", path, _object, {}),
        "fallbacks": _get(data, "fallbacks", path, _string_list, []),
        "retry": _get(data, "retry", path, _object, {}),
        "timeouts": _get(data, "timeouts", path, _object, {}),
        "exploration": _get(data, "exploration", path, _boolean, True),
        "exploration_rate": _get(data, "exploration_rate", path, _fraction, 0.1),
        "challenger": _get(data, "challenger", path, _optional_string, ""),
        "challenger_share": _get(data, "challenger_share", path, _fraction, 0.0),
        "cache_ttl_seconds": _get(data, "cache_ttl_seconds", path, _non_negative_int, 0),
        "semantic_cache": _get(data, "semantic_cache", path, _boolean, False),
        "semantic_threshold": _get(data, "semantic_threshold", path, _fraction, 0.92),
    }
    return RouteSpec(path, name, fields)


def _parse_retention(data: Any, path: str) -> RetentionSpec:
    data = _mapping(data, path, RETENTION_KEYS)
    return RetentionSpec(
        path=path,
        tenant=_get(data, "tenant", path, _string, ""),
        classification=_get(data, "classification", path, _optional_string, ""),
        days=_get(data, "days", path, _positive_int, _MISSING),
    )


def parse_config(data: Any, *, environ: Mapping[str, str] | None = None) -> ConfigSpec:
    """Validate a whole document; `env:` references of API keys are resolved here."""
    environ = os.environ if environ is None else environ
    data = _mapping(data, "", {"version", "providers", "tenants", "routes", "retention"})
    if data.get("version") != VERSION:
        raise ConfigError("version", f"must be {VERSION}")
    providers = _list(data, "providers", "")
    tenants = _list(data, "tenants", "")
    routes = _list(data, "routes", "")
    retention = _list(data, "retention", "")
    spec = ConfigSpec(
        providers=None
        if providers is None
        else [_parse_provider(item, _join("providers", i)) for i, item in enumerate(providers)],
        tenants=None
        if tenants is None
        else [_parse_tenant(item, _join("tenants", i), environ) for i, item in enumerate(tenants)],
        routes=None
        if routes is None
        else [_parse_route(item, _join("routes", i)) for i, item in enumerate(routes)],
        retention=None
        if retention is None
        else [_parse_retention(item, _join("retention", i)) for i, item in enumerate(retention)],
    )
    _unique(spec.providers or [], "name", "providers", "provider name")
    _unique(spec.tenants or [], "slug", "tenants", "tenant slug")
    _unique(spec.routes or [], "name", "routes", "route name")
    _unique(spec.retention or [], "label", "retention", "retention policy (tenant/classification)")
    return spec


def load_config_file(path: str) -> Any:
    """Read a YAML file ('-' for standard input); unreadable input is a ConfigError."""
    try:
        if path == "-":
            return yaml.safe_load(sys.stdin)
        with open(path, encoding="utf-8") as fh:
            return yaml.safe_load(fh)
    except OSError as exc:
        raise ConfigError("", f"cannot read {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError("", f"{path} is not valid YAML: {exc}") from None


# --- applying ------------------------------------------------------------------------------

# Service field names back to the document's keys, so service errors name the right path.
PROVIDER_PATHS = {
    **{v: f"timeouts.{k}" for k, v in TIMEOUT_KEYS.items()},
    "api_key_env": "api_key",
    "api_key_encrypted": "api_key",
}
DEPLOYMENT_PATHS = {
    **{v: f"prices.{k}" for k, v in PRICE_KEYS.items()},
    "public_name": "name",
    "upstream_model": "upstream",
    "quality_score": "quality",
}
TENANT_PATHS = {"is_active": "active"}


@contextmanager
def _at(path: str, paths: Mapping[str, str] | None = None) -> Iterator[None]:
    """Report a service's ValidationError at the document path of the offending value."""
    try:
        yield
    except ValidationError as exc:
        if hasattr(exc, "error_dict"):
            fld, messages = next(iter(exc.message_dict.items()))
            where = path if fld == NON_FIELD_ERRORS else _join(path, (paths or {}).get(fld, fld))
        else:
            where, messages = path, exc.messages
        raise ConfigError(where, " ".join(messages)) from None


def _same(current: Any, desired: Any) -> bool:
    if isinstance(current, Decimal) or isinstance(desired, Decimal):
        if current is None or desired is None:
            return current is desired
        return Decimal(str(current)) == Decimal(str(desired))
    return current == desired


def _diff(instance: Any, desired: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in desired.items() if not _same(getattr(instance, k), v)}


def _stored_key_matches(provider: Provider, literal: str) -> bool:
    try:
        return crypto.decrypt(provider.api_key_encrypted) == literal
    except crypto.DecryptionError:
        return False


def _credential_change(provider: Provider, spec: ProviderSpec) -> dict[str, Any]:
    """The provider_update arguments that give the provider the file's credential, if any."""
    if spec.api_key is not None:
        if provider.api_key_env or not _stored_key_matches(provider, spec.api_key):
            return {"api_key": spec.api_key, "api_key_env": ""}
        return {}
    if provider.api_key_env != spec.api_key_env or provider.has_stored_api_key:
        return {"api_key": None, "api_key_env": spec.api_key_env}
    return {}


def _apply_deployments(
    provider: Provider, specs: list[DeploymentSpec], report: ApplyReport, prune: bool
) -> None:
    existing: dict[str, ModelDeployment] = {
        d.public_name: d for d in provider_selectors.deployment_list(provider=provider)
    }
    for spec in specs:
        label = f"{provider.name}/{spec.public_name}"
        current = existing.get(spec.public_name)
        with _at(spec.path, DEPLOYMENT_PATHS):
            if current is None:
                provider_services.deployment_create(
                    provider=provider, public_name=spec.public_name, **spec.fields
                )
                report.add("deployment", label, "created")
                continue
            changed = _diff(current, spec.fields)
            if changed:
                provider_services.deployment_update(deployment=current, **changed)
                report.add("deployment", label, "updated", tuple(sorted(changed)))
            else:
                report.add("deployment", label, "unchanged")
    if prune:
        wanted = {s.public_name for s in specs}
        for name, deployment in existing.items():
            if name not in wanted:
                provider_services.deployment_delete(deployment=deployment)
                report.add("deployment", f"{provider.name}/{name}", "deleted")


def _apply_providers(specs: list[ProviderSpec], report: ApplyReport, prune: bool) -> None:
    existing = {p.name: p for p in provider_selectors.provider_list()}
    for spec in specs:
        current = existing.get(spec.name)
        with _at(spec.path, PROVIDER_PATHS):
            if current is None:
                current = provider_services.provider_create(
                    name=spec.name,
                    api_key=spec.api_key,
                    api_key_env=spec.api_key_env,
                    **spec.fields,
                )
                report.add("provider", spec.name, "created")
            else:
                changed = _diff(current, spec.fields)
                credentials = _credential_change(current, spec)
                if changed or credentials:
                    provider_services.provider_update(provider=current, **changed, **credentials)
                    names = sorted(changed) + (["api_key"] if credentials else [])
                    report.add("provider", spec.name, "updated", tuple(names))
                else:
                    report.add("provider", spec.name, "unchanged")
        _apply_deployments(current, spec.models, report, prune)
    if prune:
        wanted = {s.name for s in specs}
        for name, provider in existing.items():
            if name not in wanted:
                provider_services.provider_delete(provider=provider)
                report.add("provider", name, "deleted", ("with its deployments",))


def _apply_api_keys(
    tenant: Tenant, specs: list[ApiKeySpec], report: ApplyReport, prune: bool, dry_run: bool
) -> None:
    live: dict[str, ApiKey] = {
        k.name: k
        for k in tenant_selectors.api_key_list(tenant=tenant).filter(revoked_at__isnull=True)
    }
    for spec in specs:
        label = f"{tenant.slug}/{spec.name}"
        current = live.get(spec.name)
        with _at(spec.path):
            if current is not None and (
                spec.plaintext is None or hash_key(spec.plaintext) == current.key_hash
            ):
                desired = {"allowed_models": spec.allowed_models, "expires_at": spec.expires_at}
                changed = _diff(current, desired)
                if changed:
                    tenant_services.api_key_update(api_key=current, **changed)
                    report.add("api key", label, "updated", tuple(sorted(changed)))
                else:
                    report.add("api key", label, "unchanged")
                continue
            if current is not None:
                # The file names a different key: the old one stops working now.
                tenant_services.api_key_revoke(api_key=current)
            _, plaintext = tenant_services.api_key_create(
                tenant=tenant,
                name=spec.name,
                allowed_models=spec.allowed_models,
                expires_at=spec.expires_at,
                plaintext=spec.plaintext,
            )
            # Only a key ATP made up is shown; a dry run's key is discarded with the rollback.
            secret = plaintext if spec.plaintext is None and not dry_run else None
            report.add("api key", label, "created" if current is None else "replaced", (), secret)
    if prune:
        wanted = {s.name for s in specs}
        for name, api_key in live.items():
            if name not in wanted:
                tenant_services.api_key_revoke(api_key=api_key)
                report.add("api key", f"{tenant.slug}/{name}", "revoked")


def _apply_tenants(
    specs: list[TenantSpec], report: ApplyReport, prune: bool, dry_run: bool
) -> None:
    existing = {t.slug: t for t in tenant_selectors.tenant_list()}
    for spec in specs:
        current = existing.get(spec.slug)
        with _at(spec.path, TENANT_PATHS):
            if current is None:
                current = tenant_services.tenant_create(slug=spec.slug, **spec.fields)
                report.add("tenant", spec.slug, "created")
            else:
                changed = _diff(current, spec.fields)
                if changed:
                    tenant_services.tenant_update(tenant=current, **changed)
                    report.add("tenant", spec.slug, "updated", tuple(sorted(changed)))
                else:
                    report.add("tenant", spec.slug, "unchanged")
        _apply_api_keys(current, spec.api_keys, report, prune, dry_run)
    if prune:
        wanted = {s.slug for s in specs}
        for slug, tenant in existing.items():
            if slug not in wanted:
                tenant_services.tenant_delete(tenant=tenant)
                report.add("tenant", slug, "deleted", ("with its API keys",))


def _apply_routes(specs: list[RouteSpec], report: ApplyReport, prune: bool) -> None:
    existing = {r.name: r for r in Route.objects.all()}
    for spec in specs:
        current = existing.get(spec.name)
        with _at(spec.path):
            if current is None:
                route_services.route_create(name=spec.name, **spec.fields)
                report.add("route", spec.name, "created")
                continue
            changed = _diff(current, spec.fields)
            if changed:
                route_services.route_update(route=current, **changed)
                report.add("route", spec.name, "updated", tuple(sorted(changed)))
            else:
                report.add("route", spec.name, "unchanged")
    if prune:
        wanted = {s.name for s in specs}
        for name, route in existing.items():
            if name not in wanted:
                route_services.route_delete(route=route)
                report.add("route", name, "deleted")


def _retention_tenant_id(spec: RetentionSpec) -> uuid.UUID | None:
    """The tenant a policy names by slug, or by id (a deleted tenant's policies stay)."""
    if not spec.tenant:
        return None
    tenant = tenant_selectors.tenant_list().filter(slug=spec.tenant).first()
    if tenant is not None:
        return tenant.pk
    try:
        return uuid.UUID(spec.tenant)
    except ValueError:
        raise ConfigError(
            _join(spec.path, "tenant"), f"no tenant with slug {spec.tenant!r}"
        ) from None


def _apply_retention(specs: list[RetentionSpec], report: ApplyReport, prune: bool) -> None:
    existing = {(p.tenant_id, p.classification): p for p in RetentionPolicy.objects.all()}
    wanted = set()
    for spec in specs:
        key = (_retention_tenant_id(spec), spec.classification)
        wanted.add(key)
        current = existing.get(key)
        with _at(spec.path):
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
    if prune:
        labels = _retention_labels()
        for key, policy in existing.items():
            if key not in wanted:
                label = f"{labels.get(key[0], key[0]) or '*'}/{key[1] or '*'}"
                retention_policy_delete(policy=policy)
                report.add("retention policy", label, "deleted")


def apply_config(
    data: Any,
    *,
    prune: bool = False,
    dry_run: bool = False,
    environ: Mapping[str, str] | None = None,
) -> ApplyReport:
    """Converge the database on `data` (a parsed document) in one transaction.

    Sections absent from the document are left alone, even with `prune`. A dry run does
    everything, then rolls back, so it reports exactly what applying would do.
    Raises ConfigError, with nothing applied, when the document is invalid.
    """
    spec = parse_config(data, environ=environ)
    report = ApplyReport(dry_run=dry_run)
    # Changes from a document with no one else named as acting are the config file's.
    actor = current_actor()
    if actor.source == "system":
        actor = AuditActor(actor="config", source="config")
    with acting_as(actor), transaction.atomic():
        if spec.providers is not None:
            _apply_providers(spec.providers, report, prune)
        if spec.tenants is not None:
            _apply_tenants(spec.tenants, report, prune, dry_run)
        if spec.routes is not None:
            _apply_routes(spec.routes, report, prune)
        if spec.retention is not None:
            _apply_retention(spec.retention, report, prune)
        if dry_run:
            transaction.set_rollback(True)
    return report


# --- export --------------------------------------------------------------------------------


def provider_key_env_name(provider_name: str) -> str:
    """The variable an exported file names for a key that is stored encrypted."""
    return f"ATP_PROVIDER_{re.sub(r'[^A-Za-z0-9]', '_', provider_name).upper()}_API_KEY"


def _number_out(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


def _export_deployment(d: ModelDeployment) -> dict[str, Any]:
    prices = {
        key: _number_out(getattr(d, fld))
        for key, fld in PRICE_KEYS.items()
        if getattr(d, fld) is not None
    }
    out: dict[str, Any] = {"name": d.public_name, "upstream": d.upstream_model}
    if d.aliases:
        out["aliases"] = list(d.aliases)
    out["prices"] = prices
    out["context_window"] = d.context_window
    if d.max_output_tokens is not None:
        out["max_output_tokens"] = d.max_output_tokens
    out["capabilities"] = list(d.capabilities)
    out["quality"] = d.quality_score
    if d.region:
        out["region"] = d.region
    out["weight"] = d.weight
    out["enabled"] = d.enabled
    if not d.listed:
        out["listed"] = False
    return out


def _export_provider(p: Provider, notes: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {"name": p.name, "kind": p.kind}
    if p.base_url:
        out["base_url"] = p.base_url
    if p.api_key_env:
        out["api_key"] = f"{ENV_PREFIX}{p.api_key_env}"
    elif p.has_stored_api_key:
        env = provider_key_env_name(p.name)
        out["api_key"] = f"{ENV_PREFIX}{env}"
        notes.append(
            f"provider {p.name}: its API key is stored encrypted and not exported; "
            f"set {env} before applying this file."
        )
    if p.region:
        out["region"] = p.region
    timeouts = {
        key: getattr(p, fld) for key, fld in TIMEOUT_KEYS.items() if getattr(p, fld) is not None
    }
    if timeouts:
        out["timeouts"] = timeouts
    if p.options:
        out["options"] = dict(p.options)
    out["enabled"] = p.enabled
    out["models"] = [_export_deployment(d) for d in p.deployments.all()]
    return out


def _export_api_key(k: ApiKey) -> dict[str, Any]:
    out: dict[str, Any] = {"name": k.name, "prefix": k.prefix}
    if k.allowed_models:
        out["allowed_models"] = list(k.allowed_models)
    if k.expires_at is not None:
        out["expires_at"] = k.expires_at
    return out


def _export_route(r: Route) -> dict[str, Any]:
    out: dict[str, Any] = {"name": r.name}
    if r.description:
        out["description"] = r.description
    out["enabled"] = r.enabled
    if r.strategy:
        out["strategy"] = r.strategy
    if r.tier:
        out["tier"] = r.tier
    out.update(
        {
            "candidates": list(r.candidates or []),
            "candidate_filter": dict(r.candidate_filter or {}),
            "fallbacks": list(r.fallbacks or []),
            "retry": dict(r.retry or {}),
            "timeouts": dict(r.timeouts or {}),
            "exploration": r.exploration,
            "exploration_rate": r.exploration_rate,
        }
    )
    if r.challenger:
        out["challenger"] = r.challenger
    out["challenger_share"] = r.challenger_share
    out["cache_ttl_seconds"] = r.cache_ttl_seconds
    out["semantic_cache"] = r.semantic_cache
    out["semantic_threshold"] = r.semantic_threshold
    return out


def _retention_labels() -> dict[Any, str]:
    """Tenant slugs by id, to name tenants in exported retention policies."""
    return dict(tenant_selectors.tenant_list().values_list("pk", "slug"))


def _export_retention(p: RetentionPolicy, slugs: dict[Any, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if p.tenant_id is not None:
        out["tenant"] = slugs.get(p.tenant_id, str(p.tenant_id))
    if p.classification:
        out["classification"] = p.classification
    out["days"] = p.days
    return out


def _export() -> tuple[dict[str, Any], list[str]]:
    notes: list[str] = []
    slugs = _retention_labels()
    providers = provider_selectors.provider_list().prefetch_related("deployments")
    tenants = tenant_selectors.tenant_list()
    live_keys: dict[Any, list[ApiKey]] = {}
    for key in tenant_selectors.api_key_list().filter(revoked_at__isnull=True).order_by("name"):
        live_keys.setdefault(key.tenant_id, []).append(key)
    data = {
        "version": VERSION,
        "providers": [_export_provider(p, notes) for p in providers],
        "tenants": [
            {
                "slug": t.slug,
                "name": t.name,
                "active": t.is_active,
                "store_bodies": t.store_bodies,
                "cost_mode": t.cost_mode,
                "preferred_regions": list(t.preferred_regions or []),
                "carbon_aware": t.carbon_aware,
                "api_keys": [_export_api_key(k) for k in live_keys.get(t.pk, [])],
            }
            for t in tenants
        ],
        "routes": [_export_route(r) for r in Route.objects.order_by("name")],
        "retention": [_export_retention(p, slugs) for p in RetentionPolicy.objects.all()],
    }
    return data, notes


def export_config() -> dict[str, Any]:
    """The current configuration as a document `apply_config` accepts; secrets as env refs.

    API keys are listed without their key (only its prefix), so applying the export to the
    same database changes nothing.
    """
    return _export()[0]


def export_config_yaml() -> str:
    """`export_config()` as YAML, with notes on the values that must be supplied."""
    data, notes = _export()
    header = ["# ATP configuration (docs/configuration.md)."]
    header += [f"# NOTE: {note}" for note in notes]
    body = yaml.safe_dump(data, sort_keys=False, default_flow_style=False, allow_unicode=True)
    return "\n".join(header) + "\n" + body
