"""From an ID token's claims to the roles and tenant memberships they grant (pure Python).

The mapping is read from the environment once (atp_site.settings) and checked there, so an
unknown role name stops the server at start-up rather than at someone's first sign-in.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ImproperlyConfigured

logger = logging.getLogger(__name__)

# The global roles (Django groups) and the roles one may hold on a tenant; the role
# services in apps.tenants.roles own their definitions.
GLOBAL_ROLES = frozenset(
    {"super-admin", "platform-admin", "security-admin", "cost-admin", "auditor", "read-only"}
)
TENANT_ROLES = ("tenant-admin", "tenant-member")  # strongest first


@dataclass(frozen=True)
class ClaimMapping:
    """How claims become roles: which claims to read and what their values mean."""

    roles_claim: str = "groups"
    # Value of the roles claim -> global role names.
    role_mapping: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    tenants_claim: str = "atp_tenants"
    # Value of the roles claim -> (tenant slug, tenant role) pairs.
    tenant_mapping: Mapping[str, tuple[tuple[str, str], ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class Grants:
    """What one sign-in grants: global role names and tenant slug -> tenant role."""

    roles: frozenset[str]
    tenants: Mapping[str, str]
    ignored: tuple[str, ...] = ()  # claim values that named nothing usable, for the log


def claim_values(claims: Mapping[str, Any], name: str) -> list[str]:
    """The values of claim `name` as a list of strings.

    `name` may be a dotted path into nested objects (Keycloak's `realm_access.roles`). A
    list gives its string items, a string gives itself; anything else gives nothing.
    """
    value: Any = claims
    for part in name.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return []
        value = value[part]
    if isinstance(value, str):
        return [value] if value else []
    if isinstance(value, list | tuple):
        return [item for item in value if isinstance(item, str) and item]
    return []


def parse_tenant_role(value: str) -> tuple[str, str] | None:
    """`"acme:tenant-admin"` -> ("acme", "tenant-admin"); None when it is not of that form."""
    slug, sep, role = value.strip().rpartition(":")
    if not sep or not slug or role not in TENANT_ROLES:
        return None
    return slug, role


def grants_for(claims: Mapping[str, Any], mapping: ClaimMapping) -> Grants:
    """The global roles and tenant memberships `claims` grant under `mapping`.

    Claim values the mapping does not know are ignored: a provider's groups are mostly
    about other applications. A tenant named twice keeps its strongest role.
    """
    roles: set[str] = set()
    tenants: dict[str, str] = {}
    ignored: list[str] = []

    def grant_tenant(slug: str, role: str) -> None:
        current = tenants.get(slug)
        if current is None or TENANT_ROLES.index(role) < TENANT_ROLES.index(current):
            tenants[slug] = role

    for value in claim_values(claims, mapping.roles_claim):
        roles.update(mapping.role_mapping.get(value, ()))
        for slug, role in mapping.tenant_mapping.get(value, ()):
            grant_tenant(slug, role)
    for value in claim_values(claims, mapping.tenants_claim):
        parsed = parse_tenant_role(value)
        if parsed is None:
            ignored.append(value)
            continue
        grant_tenant(*parsed)
    return Grants(roles=frozenset(roles), tenants=tenants, ignored=tuple(ignored))


# --- reading the mapping from the environment ------------------------------------------------


def _as_names(setting: str, key: str, value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return value
    raise ImproperlyConfigured(
        f"{setting}: the value for {key!r} must be a name or a list of names, not {value!r}."
    )


def _json_object(setting: str, raw: str) -> dict[str, Any]:
    if not raw.strip():
        return {}
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ImproperlyConfigured(f"{setting} is not valid JSON: {exc.msg}.") from None
    if not isinstance(value, dict):
        raise ImproperlyConfigured(f"{setting} must be a JSON object of claim value -> role.")
    return value


def parse_role_mapping(raw: str, setting: str = "ATP_OIDC_ROLE_MAPPING") -> dict[str, tuple]:
    """`{"atp-admins": "super-admin", "ops": ["platform-admin", "read-only"]}`, checked."""
    mapping: dict[str, tuple[str, ...]] = {}
    for key, value in _json_object(setting, raw).items():
        names = _as_names(setting, key, value)
        unknown = sorted(set(names) - GLOBAL_ROLES)
        if unknown:
            raise ImproperlyConfigured(
                f"{setting}: {key!r} maps to unknown role(s) {', '.join(unknown)}; the roles "
                f"are {', '.join(sorted(GLOBAL_ROLES))}."
            )
        mapping[key] = tuple(names)
    return mapping


def parse_tenant_mapping(
    raw: str, setting: str = "ATP_OIDC_TENANT_MAPPING"
) -> dict[str, tuple[tuple[str, str], ...]]:
    """`{"acme-admins": "acme:tenant-admin", "staff": ["acme:tenant-member", ...]}`, checked."""
    mapping: dict[str, tuple[tuple[str, str], ...]] = {}
    for key, value in _json_object(setting, raw).items():
        pairs = []
        for name in _as_names(setting, key, value):
            parsed = parse_tenant_role(name)
            if parsed is None:
                raise ImproperlyConfigured(
                    f"{setting}: {key!r} maps to {name!r}; give a tenant slug and a tenant "
                    f"role as slug:{' or slug:'.join(TENANT_ROLES)}."
                )
            pairs.append(parsed)
        mapping[key] = tuple(pairs)
    return mapping


def describe(values: Iterable[str]) -> str:
    return ", ".join(sorted(values)) or "none"
